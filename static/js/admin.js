// The moderators' page: sign in with a token (POST /admin/session sets an HttpOnly cookie),
// then read and act through /admin/api/ with that cookie. Everything the server or a user
// supplied is inserted with .text(), never as HTML. Strings come in data- attributes on
// #admin: the CSP allows no inline script.
$(function () {
  'use strict';

  var $admin = $('#admin');
  if (!$admin.length) { return; }
  var lang = document.documentElement.lang || 'zh-CN';
  var t = {};
  $.each(['lift', 'unmute', 'forever', 'nothing', 'done', 'failed', 'online-count', 'read-only',
    'slow', 'bad-token', 'kick', 'mute', 'ban', 'word-filter'], function (_, key) {
    t[key] = $admin.attr('data-t-' + key) || key;
  });

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  function when(ms) {
    return typeof ms === 'number' ? new Date(ms).toLocaleString(lang) : t.forever;
  }

  function reasonOf(xhr) {
    return (xhr.responseJSON && xhr.responseJSON.data) || xhr.statusText || String(xhr.status);
  }

  function api(method, url, body) {
    var options = { url: url, method: method, dataType: 'json' };
    if (body !== undefined) {
      options.contentType = 'application/json';
      options.data = JSON.stringify(body);
    }
    return $.ajax(options).fail(function (xhr) {
      // The cookie ran out or its moderator was removed: back to the token form.
      if (xhr.status === 401) { signedOut(t['bad-token']); }
    });
  }

  function say(text, failed) {
    $('#act-notice').toggleClass('error', !!failed).text(text).prop('hidden', false);
  }

  function failed(xhr) { say(fill(t.failed, { reason: reasonOf(xhr) }), true); }

  // ---- lists, each a page at a time with a "more" button ----------------------------------

  // `list(name, url, key, row, more)`: fetches `url` (the next page if `more`), appends a row
  // per item of `reply[key]`, and offers the next page while the server names one.
  var cursors = {};

  function list(name, url, key, row, more) {
    var $body = $('#' + name);
    var query = cursors[name] && more ? { before: cursors[name] } : {};
    if (!more) { $body.empty(); }
    return api('get', url + (query.before !== undefined ? '?before=' + encodeURIComponent(query.before) : ''))
      .done(function (reply) {
        var items = (reply && reply[key]) || [];
        $.each(items, function (_, item) { $body.append(row(item)); });
        if (!$body.children().length) {
          $('<tr>').addClass('nothing').append($('<td>').attr('colspan', 5).text(t.nothing)).appendTo($body);
        }
        cursors[name] = reply && reply.next;
        $('#' + name + '-more').prop('hidden', reply == null || reply.next == null);
      });
  }

  function cells(values) {
    var $tr = $('<tr>');
    $.each(values, function (_, v) { $('<td>').text(v == null ? '' : String(v)).appendTo($tr); });
    return $tr;
  }

  function banRow(ban) {
    var target = ban.user != null ? '#' + ban.user : ban.address;
    var $tr = cells([target, ban.reason, when(ban.until), ban.moderator]).attr('data-ban', ban.id);
    $('<td>').append($('<button>').attr('type', 'button').addClass('btn btn-ghost lift')
      .attr('data-ban', ban.id).text(t.lift)).appendTo($tr);
    return $tr;
  }

  function muteRow(mute) {
    var $tr = cells(['#' + mute.user, mute.reason, when(mute.until), mute.moderator]).attr('data-user', mute.user);
    $('<td>').append($('<button>').attr('type', 'button').addClass('btn btn-ghost unmute')
      .attr('data-user', mute.user).text(t.unmute)).appendTo($tr);
    return $tr;
  }

  function auditRow(entry) {
    return cells([when(entry.time), entry.moderator, entry.action, entry.target, entry.reason]);
  }

  function loadBans(more) { return list('bans', '/admin/api/bans', 'bans', banRow, more); }
  function loadMutes(more) { return list('mutes', '/admin/api/mutes', 'mutes', muteRow, more); }
  function loadAudit(more) { return list('audit', '/admin/api/audit', 'entries', auditRow, more); }

  // Rooms are paged by name: `next` is the `after` of the next page.
  var roomsAfter = null;

  function roomItem(room) {
    var $li = $('<li>').addClass('room-entry').attr('data-room', room.room);
    var $head = $('<div>').addClass('room-head').appendTo($li);
    $('<a>').attr('href', '/ws?room=' + encodeURIComponent(room.room)).addClass('room-link').text(room.room).appendTo($head);
    $('<span>').addClass('count').text(fill(t['online-count'], { n: room.online })).appendTo($head);
    if (room.read_only) { $('<span>').addClass('tag').text(t['read-only']).appendTo($head); }
    if (room.slow_mode_secs) { $('<span>').addClass('tag').text(fill(t.slow, { n: room.slow_mode_secs })).appendTo($head); }
    var $users = $('<ul>').addClass('room-users').appendTo($li);
    $.each(room.users || [], function (_, u) {
      var $u = $('<li>').attr('data-user', u.id).appendTo($users);
      $('<span>').addClass('name').text(u.name).appendTo($u);
      $('<span>').addClass('user-id').text('#' + u.id).appendTo($u);
      $.each(['kick', 'mute', 'ban'], function (_, action) {
        $('<button>').attr({ type: 'button', 'data-action': action, 'data-user': u.id })
          .addClass('btn btn-ghost pick').text(t[action]).appendTo($u);
      });
    });
    return $li;
  }

  function loadRooms(more) {
    if (!more) { roomsAfter = null; $('#rooms').empty(); }
    var url = '/admin/api/rooms' + (roomsAfter ? '?after=' + encodeURIComponent(roomsAfter) : '');
    return api('get', url).done(function (reply) {
      $.each((reply && reply.rooms) || [], function (_, room) { $('#rooms').append(roomItem(room)); });
      if (!$('#rooms').children().length) { $('<li>').addClass('nothing').text(t.nothing).appendTo('#rooms'); }
      roomsAfter = reply && reply.next;
      $('#rooms-more').prop('hidden', !roomsAfter);
    });
  }

  // The filter in force, one word per line, as the server normalized it.
  function loadFilter() {
    return api('get', '/admin/api/word-filter').done(function (spec) {
      $('#filter-words').val(((spec && spec.words) || []).join('\n'));
      $('#filter-mode').val((spec && spec.mode) || 'mask');
    });
  }

  function loadAll() {
    loadFilter();
    loadRooms(false);
    loadBans(false);
    loadMutes(false);
    loadAudit(false);
  }

  $('#refresh').on('click', loadAll);
  $('#rooms-more').on('click', function () { loadRooms(true); });
  $('#bans-more').on('click', function () { loadBans(true); });
  $('#mutes-more').on('click', function () { loadMutes(true); });
  $('#audit-more').on('click', function () { loadAudit(true); });

  // ---- acting ------------------------------------------------------------------------------

  function minutesOf($input) {
    var raw = String($input.val()).trim();
    var n = Number(raw);
    return raw && n > 0 ? n : undefined;
  }

  function reasonFrom($input) {
    var raw = String($input.val()).trim();
    return raw || undefined;
  }

  // A user in the rooms list fills in the form; the moderator adds a reason and confirms.
  $('#rooms').on('click', 'button.pick', function () {
    $('#act-user').val($(this).attr('data-user'));
    $('#user-form button[data-action]').removeClass('btn-primary').addClass('btn-ghost');
    $('#user-form button[data-action="' + $(this).attr('data-action') + '"]').removeClass('btn-ghost').addClass('btn-primary');
    $('#act-reason').trigger('focus');
  });

  // Each button acts; Enter in the form does what the highlighted button (the last picked,
  // kick at first) does, never something harsher behind the moderator's back.
  function highlighted() {
    return $('#user-form button[data-action].btn-primary').attr('data-action') || 'kick';
  }

  function actOnUser(action) {
    var user = Number($('#act-user').val());
    if (!(user > 0)) { $('#act-user').trigger('focus'); return; }
    var reason = reasonFrom($('#act-reason'));
    var minutes = minutesOf($('#act-minutes'));
    var call;
    if (action === 'kick') {
      call = api('post', '/admin/api/users/' + user + '/kick', { reason: reason });
    } else if (action === 'mute') {
      // A mute needs an end: an hour unless the moderator says otherwise.
      call = api('post', '/admin/api/users/' + user + '/mute', { reason: reason, minutes: minutes || 60 });
    } else {
      call = api('post', '/admin/api/bans', { user: user, reason: reason, minutes: minutes });
    }
    call.done(function () {
      say(fill(t.done, { name: t[action] + ' #' + user }));
      loadAll();
    }).fail(failed);
  }

  $('#user-form').on('click', 'button[data-action]', function () { actOnUser($(this).attr('data-action')); });
  // Its buttons are not submit buttons, so Enter is caught here, not by the form.
  $('#user-form').on('keydown', 'input', function (e) {
    if (e.key === 'Enter') { e.preventDefault(); actOnUser(highlighted()); }
  });
  $('#user-form').on('submit', function (e) { e.preventDefault(); });

  $('#address-form').on('submit', function (e) {
    e.preventDefault();
    var address = String($('#ban-address').val()).trim();
    if (!address) { $('#ban-address').trigger('focus'); return; }
    api('post', '/admin/api/bans', {
      address: address, reason: reasonFrom($('#address-reason')), minutes: minutesOf($('#address-minutes')),
    }).done(function () {
      say(fill(t.done, { name: t.ban + ' ' + address }));
      $('#ban-address').val('');
      loadBans(false);
      loadAudit(false);
    }).fail(failed);
  });

  $('#room-form').on('submit', function (e) {
    e.preventDefault();
    var room = String($('#settings-room').val()).trim();
    if (!room) { $('#settings-room').trigger('focus'); return; }
    api('put', '/admin/api/rooms/' + encodeURIComponent(room), {
      slow_mode_secs: Math.max(0, Math.floor(Number($('#settings-slow').val()) || 0)),
      read_only: $('#settings-read-only').prop('checked'),
    }).done(function () {
      say(fill(t.done, { name: room }));
      loadRooms(false);
      loadAudit(false);
    }).fail(failed);
  });

  $('#filter-form').on('submit', function (e) {
    e.preventDefault();
    var words = $.grep(String($('#filter-words').val()).split('\n'), function (w) { return w.trim() !== ''; });
    api('put', '/admin/api/word-filter', { words: words, mode: $('#filter-mode').val() })
      .done(function (spec) {
        say(fill(t.done, { name: t['word-filter'] }));
        $('#filter-words').val(spec.words.join('\n'));
        loadAudit(false);
      }).fail(failed);
  });

  $('#bans').on('click', 'button.lift', function () {
    var id = $(this).attr('data-ban');
    api('delete', '/admin/api/bans/' + encodeURIComponent(id))
      .done(function () { loadBans(false); loadAudit(false); }).fail(failed);
  });

  $('#mutes').on('click', 'button.unmute', function () {
    var user = $(this).attr('data-user');
    api('delete', '/admin/api/users/' + encodeURIComponent(user) + '/mute')
      .done(function () { loadMutes(false); loadAudit(false); }).fail(failed);
  });

  // ---- signing in and out ------------------------------------------------------------------

  function signedIn(name) {
    $('#me').text(name);
    $('#signout').prop('hidden', false);
    $('#signed-out').prop('hidden', true);
    $('#signed-in').prop('hidden', false);
    $('#notice').prop('hidden', true).text('');
    loadAll();
  }

  function signedOut(notice) {
    $('#me').text('');
    $('#signout').prop('hidden', true);
    $('#signed-in').prop('hidden', true);
    $('#signed-out').prop('hidden', false);
    $('#rooms, #bans, #mutes, #audit').empty();
    $('#notice').text(notice || '').prop('hidden', !notice);
    $('#token').val('').trigger('focus');
  }

  $('#token-form').on('submit', function (e) {
    e.preventDefault();
    var token = String($('#token').val()).trim();
    if (!token) { $('#token').trigger('focus'); return; }
    var $button = $('#token-signin').prop('disabled', true);
    $.ajax({ url: '/admin/session', method: 'post', dataType: 'json', contentType: 'application/json', data: JSON.stringify({ token: token }) })
      .done(function (reply) { $('#token').val(''); signedIn(reply.moderator); })
      .fail(function (xhr) { signedOut(xhr.status === 401 ? t['bad-token'] : reasonOf(xhr)); })
      .always(function () { $button.prop('disabled', false); });
  });

  $('#signout').on('click', function () {
    $.ajax({ url: '/admin/session', method: 'delete' }).always(function () { signedOut(); });
  });

  var already = $admin.attr('data-moderator');
  if (already) { signedIn(already); } else { $('#token').trigger('focus'); }
});
