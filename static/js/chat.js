// The chat page: sign in with $.ajax, then talk over a WebSocket on the page's own host and
// port. Everything a user supplied (names, messages, server errors) is inserted with .text(),
// never as HTML. The server passes its data in data- attributes on #app: the CSP allows no
// inline script.
$(function () {
  'use strict';

  var $app = $('#app');
  var $log = $('#log');
  // .attr, not .data: jQuery's .data would turn a name like "123" or "true" into a number.
  var maxChars = parseInt($app.attr('data-max-chars'), 10) || 2000;
  var lang = document.documentElement.lang || 'zh-CN';
  var t = {};
  $.each(['connecting', 'connected', 'reconnecting', 'signed-out', 'refused', 'joined', 'left',
    'you', 'sign-in-failed', 'not-connected'], function (_, key) {
    t[key] = $app.attr('data-t-' + key) || key;
  });

  var ws = null;        // the current socket, or null
  var wanted = false;   // whether we should be connected (signed in and not refused)
  var me = null;        // our user, from the sign-in answer or the `list` event
  var online = [];      // users in the room, in the order they came
  var attempt = 0;      // reconnect attempts since the last good connection
  var retryTimer = null;
  var countdown = null;
  // The last event id this page saw. A reconnect asks for everything after it (?since=), so a
  // dropped socket or a server restart loses nothing on screen.
  var lastId = null;
  var firstLive = null; // the first log line this socket added live, where history goes before

  // `{name}` placeholders filled in; the result is only ever used as text.
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  // Same host and port as the page, so it works behind nginx and TLS; ?room= passes through.
  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var query = new URLSearchParams(location.search);
    if (lastId !== null) { query.set('since', String(lastId)); }
    var search = query.toString();
    return scheme + '//' + location.host + '/ws' + (search ? '?' + search : '');
  }

  function avatarUrl(image) {
    var n = Math.floor(Number(image));
    return '/static/img/avatars/' + (n >= 0 && n <= 9 ? n : 0) + '.svg';
  }

  function avatar(user, size) {
    return $('<img>').addClass('avatar')
      .attr({ src: avatarUrl(user.image), alt: '', width: size, height: size });
  }

  function timeOf(ms) {
    var when = new Date(typeof ms === 'number' ? ms : Date.now());
    return $('<time>')
      .attr({ datetime: when.toISOString(), title: when.toLocaleString(lang) })
      .text(when.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' }));
  }

  function setStatus(state, text) {
    $('#status').attr('data-state', state || '').text(text || '');
  }

  // ---- the conversation -------------------------------------------------------------------

  function atBottom() {
    var el = $log[0];
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  }

  function scrollToBottom() {
    $log.scrollTop($log[0].scrollHeight);
    $('#jump').prop('hidden', true);
  }

  function trimLog() {
    var $items = $log.children();
    if ($items.length > 500) { $items.slice(0, $items.length - 500).remove(); }
  }

  // Follows the conversation unless the reader scrolled up; then offers a jump instead.
  function append($item, follow) {
    var pinned = atBottom();
    $log.append($item);
    if (firstLive === null) { firstLive = $item; }
    $('#empty').prop('hidden', true);
    trimLog();
    if (pinned || follow) { scrollToBottom(); } else { $('#jump').prop('hidden', false); }
  }

  function systemItem(kind, text, ms, id) {
    var $li = $('<li>').addClass('system ' + kind);
    if (typeof id === 'number') { $li.attr('data-id', id); }
    $('<span>').text(text).appendTo($li);
    timeOf(ms).appendTo($li);
    return $li;
  }

  function systemLine(kind, text, ms, id) {
    append(systemItem(kind, text, ms, id), false);
  }

  function messageItem(ev) {
    var mine = me !== null && ev.user.id === me.id;
    var $li = $('<li>').addClass('msg ' + (mine ? 'mine' : 'theirs')).attr('data-id', ev.id);
    avatar(ev.user, 36).appendTo($li);
    var $body = $('<div>').addClass('msg-body').appendTo($li);
    var $meta = $('<div>').addClass('meta').appendTo($body);
    $('<span>').addClass('name').text(ev.user.name).appendTo($meta);
    timeOf(ev.time).appendTo($meta);
    $('<p>').addClass('bubble').text(ev.data).appendTo($body);
    return $li;
  }

  function message(ev) {
    append(messageItem(ev), me !== null && ev.user.id === me.id);
  }

  // A past event as a log line; presence in the past does not touch the online list.
  function pastItem(ev) {
    switch (ev.type) {
      case 'chat': return messageItem(ev);
      case 'join': return systemItem('join', fill(t.joined, { name: ev.user.name }), ev.time, ev.id);
      case 'left': return systemItem('left', fill(t.left, { name: ev.user.name }), ev.time, ev.id);
      default: return null;
    }
  }

  // `history` comes right after `list`: the events before this socket's live ones. With
  // `truncated` (or on a first connection) the view is rebuilt from it; otherwise it fills
  // the gap between what we had and what this socket added live.
  function showHistory(ev, rebuild) {
    var pinned = atBottom();
    if (rebuild) {
      if (firstLive !== null) { firstLive.prevAll().remove(); } else { $log.empty(); }
    }
    var known = {};
    $log.children('[data-id]').each(function () { known[$(this).attr('data-id')] = true; });
    var items = [];
    $.each(Array.isArray(ev.data) ? ev.data : [], function (_, past) {
      if (!past || known[String(past.id)]) { return; }
      var $item = pastItem(past);
      if ($item) { items.push($item); }
    });
    if (items.length === 0) { return; }
    if (firstLive !== null) { firstLive.before(items); } else { $log.append(items); }
    $('#empty').prop('hidden', true);
    trimLog();
    if (pinned) { scrollToBottom(); }
  }

  function renderOnline(count) {
    var $ul = $('#online').empty();
    $.each(online, function (_, u) {
      var $li = $('<li>').attr('data-id', u.id).appendTo($ul);
      avatar(u, 28).appendTo($li);
      $('<span>').addClass('name').text(u.name).appendTo($li);
      if (me !== null && u.id === me.id) {
        $li.addClass('me');
        $('<span>').addClass('you').text(t.you).appendTo($li);
      }
    });
    $('#count').text(typeof count === 'number' ? count : online.length);
  }

  function knowMe(user) {
    me = user;
    $('#me').text(user.name);
    $('#me-avatar').attr('src', avatarUrl(user.image)).prop('hidden', false);
  }

  function onEvent(ev) {
    switch (ev.type) {
      case 'list':
        // Sent once the server has accepted us: the connection is good.
        attempt = 0;
        knowMe(ev.user);
        online = Array.isArray(ev.data) ? ev.data.slice() : [];
        renderOnline(ev.count);
        setStatus('online', t.connected);
        break;
      case 'join':
        online = $.grep(online, function (u) { return u.id !== ev.user.id; });
        online.push(ev.user);
        renderOnline(ev.count);
        systemLine('join', fill(t.joined, { name: ev.user.name }), ev.time, ev.id);
        break;
      case 'left':
        online = $.grep(online, function (u) { return u.id !== ev.user.id; });
        renderOnline(ev.count);
        systemLine('left', fill(t.left, { name: ev.user.name }), ev.time, ev.id);
        break;
      case 'chat':
        message(ev);
        break;
      case 'error':
        systemLine('error', ev.data, ev.time);
        break;
    }
  }

  // ---- the socket -------------------------------------------------------------------------

  function stopRetrying() {
    clearTimeout(retryTimer);
    clearInterval(countdown);
    retryTimer = null;
    countdown = null;
  }

  function connect() {
    stopRetrying();
    wanted = true;
    setStatus(attempt > 0 ? 'reconnecting' : 'connecting', t.connecting);
    var socket = new WebSocket(socketUrl());
    var resumed = lastId !== null;
    ws = socket;
    firstLive = null;
    socket.onmessage = function (m) {
      if (ws !== socket) { return; }
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.type === 'history') {
        showHistory(ev, !resumed || ev.truncated === true);
      } else {
        onEvent(ev);
      }
      // Ids only grow on one socket, but a server that lost its data starts lower again.
      if (typeof ev.id === 'number') { lastId = ev.id; }
    };
    socket.onclose = function (e) {
      if (ws !== socket) { return; } // one we let go of on purpose
      ws = null;
      if (!wanted) { return; }
      if (e.code === 4001) {
        // The cookie is gone or no longer valid (signed out elsewhere, or a new server key).
        leaveRoom(t['signed-out']);
      } else if (e.code >= 4000) {
        // Refused for a reason a retry will not fix, such as a bad room name.
        wanted = false;
        setStatus('error', fill(t.refused, { reason: e.reason || e.code }));
      } else {
        scheduleReconnect();
      }
    };
  }

  function scheduleReconnect() {
    var delay = window.passerbyBackoff.reconnectDelay(attempt, Math.random());
    attempt += 1;
    var due = Date.now() + delay;
    function tick() {
      var seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      setStatus('reconnecting', fill(t.reconnecting, { seconds: seconds }));
    }
    tick();
    countdown = setInterval(tick, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  // Back online after a network loss: no need to wait out the backoff.
  $(window).on('online', function () {
    if (wanted && ws === null) { connect(); }
  });

  // ---- signing in and out -----------------------------------------------------------------

  function enterRoom(name) {
    $('#me').text(name);
    $('#name').val(name);
    $('#notice').prop('hidden', true).text('');
    $('#signed-out').prop('hidden', true);
    $('#signed-in, #whoami').prop('hidden', false);
    $('#mes').trigger('focus');
    connect();
  }

  function leaveRoom(notice) {
    wanted = false;
    stopRetrying();
    attempt = 0;
    if (ws) {
      var socket = ws;
      ws = null;
      socket.close(1000);
    }
    me = null;
    online = [];
    lastId = null;
    firstLive = null;
    $log.empty();
    $('#online').empty();
    $('#count').text('0');
    $('#empty').prop('hidden', false);
    $('#jump').prop('hidden', true);
    $('#me-avatar').prop('hidden', true);
    setStatus('', '');
    $('#signed-in, #whoami').prop('hidden', true);
    $('#signed-out').prop('hidden', false);
    $('#notice').removeClass('error').text(notice || '').prop('hidden', !notice);
    $('#name').trigger('focus');
  }

  function failNotice(text) {
    $('#notice').addClass('error').text(text).prop('hidden', false);
  }

  $('#signin-form').on('submit', function (e) {
    e.preventDefault();
    var $button = $('#signin').prop('disabled', true);
    $.ajax({ url: '/wsin', method: 'post', dataType: 'json', data: { name: String($('#name').val()).trim() } })
      .done(function (reply) {
        if (reply && reply.code === 0 && reply.user) {
          knowMe(reply.user);
          enterRoom(reply.user.name);
        } else {
          failNotice((reply && reply.data) || t['sign-in-failed']);
        }
      })
      .fail(function (xhr) {
        failNotice((xhr.responseJSON && xhr.responseJSON.data) || t['sign-in-failed']);
      })
      .always(function () { $button.prop('disabled', false); });
  });

  $('#signout').on('click', function () {
    $.ajax({ url: '/wsout', method: 'get', dataType: 'json' })
      .done(function () { leaveRoom(); })
      .fail(function () { setStatus('error', t['sign-in-failed']); });
  });

  // ---- composing --------------------------------------------------------------------------

  // Enter in #mes submits the form, as does #go.
  $('#compose').on('submit', function (e) {
    e.preventDefault();
    var $mes = $('#mes');
    var text = String($mes.val()).trim();
    if (!text) { return; }
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      systemLine('error', t['not-connected']);
      return;
    }
    // Always the command form: a message that happens to look like a JSON command is still
    // sent as what the person typed.
    ws.send(JSON.stringify({ type: 'chat', data: text }));
    $mes.val('').trigger('focus');
  });

  $log.on('scroll', function () {
    if (atBottom()) { $('#jump').prop('hidden', true); }
  });
  $('#jump').on('click', scrollToBottom);

  // maxlength counts UTF-16 units, the server counts characters: never more than the server's.
  $('#mes').attr('maxlength', maxChars);

  var signedInAs = $app.attr('data-signed-in');
  if (signedInAs) {
    enterRoom(signedInAs);
  } else {
    $('#name').trigger('focus');
  }
});
