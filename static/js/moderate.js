// Moderation on the chat page. For everyone: why a moderator kicked, banned or muted them,
// read from the server's words (`kicked: …`, `banned until …`, `you are muted until …`) and
// said again in the page's language. For a moderator (the page learned so from
// GET /admin/session): a delete button on each message and kick, mute and ban on each user
// online, each asking for a reason first, calling /admin/api/ with the moderator cookie.
(function () {
  'use strict';

  var TIME = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ';
  var KICKED = /^kicked(?:: ([\s\S]*)| by a moderator)$/;
  var BANNED = new RegExp('^banned until (lifted|' + TIME + ')(?:: ([\\s\\S]*))?$');
  var MUTED = new RegExp('^you are muted until (' + TIME + ')(?:: ([\\s\\S]*))?$');

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function localTime(rfc3339, lang) {
    var when = new Date(rfc3339);
    return isNaN(when.getTime()) ? rfc3339 : when.toLocaleString(lang);
  }

  function because(text, reason, t) {
    return reason ? text + ' ' + fill(t.because, { reason: reason }) : text;
  }

  // `{kind, text}` for a kick, ban or mute the server described, in the page's language
  // (`t` holds its strings); null for anything else.
  function explain(raw, t, lang) {
    var m = KICKED.exec(raw);
    if (m) { return { kind: 'kicked', text: because(t.kicked, m[1], t) }; }
    m = BANNED.exec(raw);
    if (m) {
      var banned = m[1] === 'lifted' ? t['banned-forever'] : fill(t.banned, { until: localTime(m[1], lang) });
      return { kind: 'banned', text: because(banned, m[2], t) };
    }
    m = MUTED.exec(raw);
    if (m) { return { kind: 'muted', text: because(fill(t.muted, { until: localTime(m[1], lang) }), m[2], t) }; }
    return null;
  }

  window.passerbyModeration = { explain: explain };

  $(function () {
    var $app = $('#app');
    if (!$app.length) { return; }
    var t = {};
    $.each(['delete', 'kick', 'mute', 'ban', 'reason', 'minutes', 'hint', 'confirm', 'cancel',
      'failed', 'badge'], function (_, key) {
      t[key] = $app.attr('data-t-mod-' + key) || key;
    });

    function failed(xhr) {
      var reason = (xhr.responseJSON && xhr.responseJSON.data) || xhr.statusText || String(xhr.status);
      $('#mod-panel-error').text(fill(t.failed, { reason: reason })).prop('hidden', false);
    }

    function call(method, url, body) {
      var options = { url: url, method: method, dataType: 'json' };
      if (body !== undefined) {
        options.contentType = 'application/json';
        options.data = JSON.stringify(body);
      }
      return $.ajax(options);
    }

    // ---- the buttons, added to each line and each user as they appear --------------------

    function decorateLine(li) {
      var $li = $(li);
      if (!$li.is('.msg[data-id]') || $li.children('.mod-actions').length) { return; }
      $('<div>').addClass('mod-actions').append(
        $('<button>').attr({ type: 'button', 'data-action': 'delete' }).addClass('mod-button').text(t.delete)
      ).appendTo($li);
    }

    function decorateUser(li) {
      var $li = $(li);
      if ($li.hasClass('me') || $li.children('.mod-actions').length) { return; }
      var $actions = $('<span>').addClass('mod-actions').appendTo($li);
      $.each(['kick', 'mute', 'ban'], function (_, action) {
        $('<button>').attr({ type: 'button', 'data-action': action }).addClass('mod-button')
          .text(t[action]).appendTo($actions);
      });
    }

    function watch(el, decorate) {
      $(el).children().each(function () { decorate(this); });
      new MutationObserver(function (changes) {
        $.each(changes, function (_, change) {
          $.each(change.addedNodes, function (_, node) { if (node.nodeType === 1) { decorate(node); } });
        });
      }).observe(el, { childList: true });
    }

    // ---- the reason prompt: a small form, not window.prompt, so it can be typed in ---------

    var pending = null; // {action, user, name}

    function panel() {
      var $panel = $('#mod-panel');
      if ($panel.length) { return $panel; }
      $panel = $('<form>').attr({ id: 'mod-panel', novalidate: true }).addClass('mod-panel card').prop('hidden', true);
      $('<p>').attr('id', 'mod-panel-title').addClass('mod-panel-title').appendTo($panel);
      $('<label>').text(t.reason).append($('<input>').attr({ type: 'text', id: 'mod-reason', maxlength: 200, autocomplete: 'off' })).appendTo($panel);
      $('<label>').attr('id', 'mod-minutes-label').text(t.minutes)
        .append($('<input>').attr({ type: 'number', id: 'mod-minutes', min: 1, step: 1 })).appendTo($panel);
      var $row = $('<div>').addClass('field-row').appendTo($panel);
      $('<button>').attr({ type: 'submit', id: 'mod-confirm' }).addClass('btn btn-primary').text(t.confirm).appendTo($row);
      $('<button>').attr({ type: 'button', id: 'mod-cancel' }).addClass('btn btn-ghost').text(t.cancel).appendTo($row);
      $('<p>').attr({ id: 'mod-panel-error', role: 'alert' }).addClass('notice error').prop('hidden', true).appendTo($panel);
      $panel.insertBefore('#compose');
      $panel.on('submit', function (e) { e.preventDefault(); confirm(); });
      $('#mod-cancel').on('click', closePanel);
      return $panel;
    }

    function openPanel(action, user, name) {
      pending = { action: action, user: user };
      var $panel = panel();
      $('#mod-panel-title').text(t[action] + ' ' + name + ' (#' + user + ')');
      $('#mod-reason').val('');
      // A mute needs an end; a ban without one lasts until lifted.
      $('#mod-minutes').val(action === 'mute' ? '60' : '').attr('placeholder', action === 'ban' ? t.hint : '');
      $('#mod-minutes-label').prop('hidden', action === 'kick');
      $('#mod-panel-error').prop('hidden', true).text('');
      $panel.prop('hidden', false);
      $('#mod-reason').trigger('focus');
    }

    function closePanel() {
      pending = null;
      $('#mod-panel').prop('hidden', true);
    }

    function confirm() {
      if (!pending) { return; }
      var reason = String($('#mod-reason').val()).trim() || undefined;
      var raw = String($('#mod-minutes').val()).trim();
      var minutes = raw && Number(raw) > 0 ? Number(raw) : undefined;
      var user = pending.user;
      var request;
      if (pending.action === 'kick') {
        request = call('post', '/admin/api/users/' + user + '/kick', { reason: reason });
      } else if (pending.action === 'mute') {
        request = call('post', '/admin/api/users/' + user + '/mute', { reason: reason, minutes: minutes || 60 });
      } else {
        request = call('post', '/admin/api/bans', { user: user, reason: reason, minutes: minutes });
      }
      request.done(closePanel).fail(failed);
    }

    // ---- clicks -------------------------------------------------------------------------------

    $('#log').on('click', '.mod-button[data-action="delete"]', function (e) {
      e.stopPropagation();
      var id = Number($(this).closest('li').attr('data-id'));
      var room = $app.attr('data-room') || 'lobby';
      call('delete', '/admin/api/rooms/' + encodeURIComponent(room) + '/messages/' + id)
        .fail(function (xhr) { panel().prop('hidden', false); failed(xhr); });
    });

    // Before the whisper handler on the same list: a moderator's button is not a whisper.
    $('#online').on('click keydown', '.mod-button', function (e) {
      if (e.type === 'keydown' && e.key !== 'Enter' && e.key !== ' ') { return; }
      e.stopPropagation();
      e.preventDefault();
      var $li = $(this).closest('li');
      openPanel($(this).attr('data-action'), Number($li.attr('data-id')), $li.find('.name').first().text());
    });

    function becomeModerator(name) {
      if ($app.hasClass('moderating')) { return; }
      $app.addClass('moderating');
      $('<span>').addClass('mod-badge').text(t.badge).attr('title', name).insertAfter('#me');
      watch($('#log')[0], decorateLine);
      watch($('#online')[0], decorateUser);
    }

    $app.on('passerby:moderator', function (_, name) { becomeModerator(name); });
    if ($app.attr('data-moderator')) { becomeModerator($app.attr('data-moderator')); }
  });
})();
