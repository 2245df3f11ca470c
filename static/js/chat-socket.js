// The socket: connecting, what each server event does to the page, being moderated, and
// reconnecting with backoff after a drop.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var t = C.t;

  // Same host and port as the page, so it works behind nginx and TLS, in the page's room.
  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var query = new URLSearchParams({ room: S.room });
    if (S.lastId !== null) { query.set('since', String(S.lastId)); }
    // The moderator cookie is sent to /admin paths only: a moderator's socket opens there.
    var path = S.moderator ? '/admin/ws?' : '/ws?';
    return scheme + '//' + location.host + path + query.toString();
  }

  function onEvent(ev) {
    switch (ev.type) {
      case 'list':
        // Sent once the server has accepted us: the connection is good.
        S.attempt = 0;
        C.knowMe(ev.user);
        S.online = Array.isArray(ev.data) ? ev.data.slice() : [];
        S.onlineCount = typeof ev.count === 'number' ? ev.count : S.online.length;
        S.usersNext = typeof ev.next === 'number' ? ev.next : null;
        S.usersAsked = null;
        C.renderOnline();
        C.setStatus('online', t.connected);
        C.reconnected();
        C.loadRooms();
        break;
      case 'join':
        S.online = $.grep(S.online, function (u) { return u.id !== ev.user.id; });
        if (S.usersNext === null) { S.online.push(ev.user); }
        if (typeof ev.count === 'number') { S.onlineCount = ev.count; }
        C.renderOnline();
        C.systemLine('join', C.fill(t.joined, { name: ev.user.name }), ev.time, ev.id, ev.user);
        break;
      case 'left':
        S.online = $.grep(S.online, function (u) { return u.id !== ev.user.id; });
        if (typeof ev.count === 'number') { S.onlineCount = ev.count; }
        C.renderOnline();
        C.systemLine('left', C.fill(t.left, { name: ev.user.name }), ev.time, ev.id, ev.user);
        break;
      case 'chat':
      case 'private':
      case 'image':
        // One of ours got through: a mute we were shown is over.
        if (S.me !== null && ev.user && ev.user.id === S.me.id) { hideModeration('muted'); }
        C.message(ev);
        C.notify(ev);
        break;
      case 'delete':
        C.forget(ev);
        break;
      case 'ack':
        C.acked(ev);
        break;
      case 'presence':
        C.applyPresence(ev);
        break;
      case 'users':
        C.showUsers(ev);
        break;
      case 'error':
        C.refused(ev);
        if (showModeration(ev.data)) { break; }
        // A refused page (over the rate limit, busy) may be asked for again by scrolling.
        if (S.pageBefore !== null) { S.pageBefore = null; C.topMarker(null); }
        S.usersAsked = null;
        C.systemLine('error', C.errorText($.extend({}, ev, { message: String(ev.data) })), ev.time);
        break;
    }
  }

  // ---- being moderated ----------------------------------------------------------------------

  // A kick, ban or mute as a notice of its own above the compose box; false for anything
  // else, which the caller shows as it always did.
  function showModeration(text, removed) {
    var explained = window.passerbyModeration.explain(String(text), t, C.lang);
    if (!explained) {
      if (!removed) { return false; }
      explained = { kind: 'removed', text: C.fill(t.refused, { reason: text }) };
    }
    $('#mod-notice').attr('data-kind', explained.kind).text(explained.text).prop('hidden', false);
    return true;
  }

  function hideModeration(kind) {
    var $notice = $('#mod-notice');
    if (!kind || $notice.attr('data-kind') === kind) { $notice.prop('hidden', true).text(''); }
  }
  C.hideModeration = hideModeration;

  // ---- the socket -------------------------------------------------------------------------

  function stopRetrying() {
    $('#retry-now').prop('hidden', true);
    clearTimeout(S.retryTimer);
    clearInterval(S.countdown);
    S.retryTimer = null;
    S.countdown = null;
  }
  C.stopRetrying = stopRetrying;

  function connect() {
    stopRetrying();
    S.wanted = true;
    C.setStatus(S.attempt > 0 ? 'reconnecting' : 'connecting', t.connecting);
    var socket = new WebSocket(socketUrl());
    var resumed = S.lastId !== null;
    S.ws = socket;
    S.firstLive = null;
    S.pageBefore = null;
    S.usersAsked = null;
    socket.onmessage = function (m) {
      if (S.ws !== socket) { return; }
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.type === 'truncated') {
        // Events this socket should have had will never come: rebuild from a fresh join
        // (the socket let go of on purpose, its close is ignored).
        S.lastId = null;
        S.ws = null;
        socket.close();
        connect();
        return;
      }
      if (ev.type === 'history' && typeof ev.before === 'number') {
        // A page we asked for: its id is not a place in the live stream to resume from.
        C.showPage(ev);
        return;
      }
      if (ev.type === 'history') {
        C.showHistory(ev, !resumed || ev.truncated === true);
      } else {
        onEvent(ev);
      }
      // Ids only grow on one socket, but a server that lost its data starts lower again.
      if (typeof ev.id === 'number') { S.lastId = ev.id; }
    };
    socket.onclose = function (e) {
      if (S.ws !== socket) { return; } // one we let go of on purpose
      S.ws = null;
      if (!S.wanted) { return; }
      if (e.code === 4001) {
        // The cookie is gone or no longer valid (signed out elsewhere, or a new server key).
        C.leaveRoom(t['signed-out']);
      } else if (e.code === 4004) {
        // This user's other tabs hold every socket allowed: a retry would be refused too.
        S.wanted = false;
        C.setStatus('error', t['too-many-tabs']);
      } else if (e.code === 4005) {
        // Too many new rooms (this user's, or the server's): retrying at once would be
        // refused again, so the page waits for the reader.
        S.wanted = false;
        C.setStatus('error', t['too-many-rooms']);
      } else if (e.code === 4003) {
        // Kicked or banned by a moderator: say why, in our language, and stay out.
        S.wanted = false;
        showModeration(e.reason || '', true);
        C.setStatus('error', $('#mod-notice').text());
      } else if (e.code >= 4000) {
        // Refused for a reason a retry will not fix, such as a bad room name.
        S.wanted = false;
        C.setStatus('error', C.fill(t.refused, { reason: e.reason || e.code }));
      } else {
        // Anything else, 1013 included (the server is busy or cannot store right now), is
        // worth another try after the backoff. An upgrade refused with 429 (sockets opened
        // too fast) reaches us as 1006 and backs off the same way.
        scheduleReconnect();
      }
    };
  }
  C.connect = connect;

  function scheduleReconnect() {
    var delay = window.passerbyBackoff.reconnectDelay(S.attempt, Math.random());
    S.attempt += 1;
    var due = Date.now() + delay;
    function tick() {
      var seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
      C.setStatus('reconnecting', C.fill(t.reconnecting, { seconds: seconds }));
    }
    tick();
    S.countdown = setInterval(tick, 1000);
    S.retryTimer = setTimeout(connect, delay);
    $('#retry-now').prop('hidden', false);
  }

  // The countdown's "Retry now": no need to wait it out.
  $('#retry-now').on('click', function () {
    if (S.wanted && S.ws === null) { connect(); }
  });

  // Back online after a network loss: no need to wait out the backoff.
  $(window).on('online', function () {
    if (S.wanted && S.ws === null) { connect(); }
  });
})();
