// The chat page: sign in with $.ajax, then talk over a WebSocket on the page's own host and
// port. Everything a user supplied (names, messages, server errors) is inserted with .text(),
// never as HTML. The server passes its data in data- attributes on #app: the CSP allows no
// inline script.
$(function () {
  'use strict';

  var $app = $('#app');
  // The bad-room page loads this script too, and has nothing for it to do.
  if (!$app.length) { return; }
  var $log = $('#log');
  // .attr, not .data: jQuery's .data would turn a name like "123" or "true" into a number.
  var maxChars = parseInt($app.attr('data-max-chars'), 10) || 2000;
  var lang = document.documentElement.lang || 'zh-CN';
  var t = {};
  $.each(['connecting', 'connected', 'reconnecting', 'signed-out', 'refused', 'too-many-tabs',
    'too-many-rooms',
    'joined', 'left',
    'you', 'sign-in-failed', 'not-connected', 'whisper-to', 'private-to', 'private-from',
    'bad-room', 'upload-failed', 'click-to-whisper', 'loading-older', 'beginning',
    'kicked', 'banned', 'banned-forever', 'muted', 'because', 'more-users'], function (_, key) {
    t[key] = $app.attr('data-t-' + key) || key;
  });

  // Why a moderator removed or muted us, in the page's language (moderate.js).
  var moderation = window.passerbyModeration;
  var moderator = null; // our moderator name if the browser holds a good moderator cookie
  var ws = null;        // the current socket, or null
  var wanted = false;   // whether we should be connected (signed in and not refused)
  var me = null;        // our user, from the sign-in answer or the `list` event
  var online = [];      // users in the room, in the order they came (a big room: those loaded)
  // A big room's list comes a page at a time: how many are in the room, the cursor of the
  // next page (null once all are loaded), and the cursor of the page we asked for, or null.
  var onlineCount = 0;
  var usersNext = null;
  var usersAsked = null;
  var attempt = 0;      // reconnect attempts since the last good connection
  var retryTimer = null;
  var countdown = null;
  var room = $app.attr('data-room') || 'lobby';
  var whisperTo = null; // the user our messages go to privately, or null
  // The server's rule (RoomName::parse): 1–32 letters of any script, digits, - and _.
  // Rust's char::is_alphanumeric is Alphabetic or Numeric, as here.
  var ROOM_NAME = /^[\p{Alphabetic}\p{N}_-]{1,32}$/u;
  // Only what POST /upload hands out is shown as an image.
  var IMAGE_URL = /^\/uploads\/[0-9a-f]{64}\.(png|jpg|gif|webp)$/;
  // The last event id this page saw. A reconnect asks for everything after it (?since=), so a
  // dropped socket or a server restart loses nothing on screen.
  var lastId = null;
  var firstLive = null; // the first log line this socket added live, where history goes before
  // Scrolling back: whether older events remain before the oldest line shown (the server's
  // `more`), and the `before` of the page we asked for and wait on, or null.
  var olderMore = false;
  var pageBefore = null;

  // `{name}` placeholders filled in; the result is only ever used as text.
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  }

  // Same host and port as the page, so it works behind nginx and TLS, in the page's room.
  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    var query = new URLSearchParams({ room: room });
    if (lastId !== null) { query.set('since', String(lastId)); }
    // The moderator cookie is sent to /admin paths only: a moderator's socket opens there.
    var path = moderator ? '/admin/ws?' : '/ws?';
    return scheme + '//' + location.host + path + query.toString();
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
    if ($items.length > 500) {
      $items.slice(0, $items.length - 500).remove();
      // What was trimmed can be paged back to again.
      olderMore = true;
      topMarker(null);
    }
  }

  // ---- scrolling back ---------------------------------------------------------------------

  // The line at the top of the conversation: 'loading', 'beginning', or none.
  function topMarker(kind) {
    $('#log-top').remove();
    if (!kind) { return; }
    $('<li>').attr('id', 'log-top').addClass('system top ' + kind)
      .append($('<span>').text(kind === 'loading' ? t['loading-older'] : t.beginning))
      .prependTo($log);
  }

  function oldestShown() {
    var id = null;
    $log.children('[data-id]').each(function () {
      var n = parseInt($(this).attr('data-id'), 10);
      if (!isNaN(n) && (id === null || n < id)) { id = n; }
    });
    return id;
  }

  // At the top (or with nothing to scroll) and older events remain: ask for the page before
  // the oldest line shown. One request at a time; the server counts each like a message.
  function maybeLoadOlder() {
    if (!olderMore || pageBefore !== null || !ws || ws.readyState !== WebSocket.OPEN) { return; }
    if ($log.scrollTop() > 40) { return; }
    var before = oldestShown();
    if (before === null || before <= 1) { return; }
    pageBefore = before;
    topMarker('loading');
    ws.send(JSON.stringify({ type: 'history', before: before }));
  }

  // ---- deleted messages --------------------------------------------------------------------

  // Ids a moderator deleted in this room. A page of history read just before a deletion may
  // still hold the line and arrive after its `delete`: it is left out then too.
  var deleted = {};

  // The ids a `delete` lists: always `data.ids` (`data.id` too when there is one).
  function deletedIds(ev) {
    var data = ev.data || {};
    if (Array.isArray(data.ids)) { return data.ids; }
    return typeof data.id === 'number' ? [data.id] : [];
  }

  function forget(ev) {
    $.each(deletedIds(ev), function (_, id) {
      deleted[String(id)] = true;
      $log.children('[data-id="' + Number(id) + '"]').remove();
    });
  }

  // The lines of a `history` (or a page of one) that the log does not show yet.
  function unseenItems(ev) {
    var known = {};
    $log.children('[data-id]').each(function () { known[$(this).attr('data-id')] = true; });
    var items = [];
    var past = Array.isArray(ev.data) ? ev.data : [];
    $.each(past, function (_, e) { if (e && e.type === 'delete') { forget(e); } });
    $.each(past, function (_, past) {
      if (!past || known[String(past.id)] || deleted[String(past.id)]) { return; }
      var $item = pastItem(past);
      if ($item) { items.push($item); }
    });
    return items;
  }

  // A page of older events: prepended above what is shown, keeping the lines in view still.
  function showPage(ev) {
    if (ev.before !== pageBefore) { return; }
    pageBefore = null;
    topMarker(null);
    var items = unseenItems(ev);
    olderMore = ev.more === true;
    var el = $log[0];
    var fromBottom = el.scrollHeight - el.scrollTop;
    $log.prepend(items);
    if (!olderMore) { topMarker('beginning'); }
    if (items.length) { $('#empty').prop('hidden', true); }
    el.scrollTop = el.scrollHeight - fromBottom;
    maybeLoadOlder();
  }

  $log.on('scroll', maybeLoadOlder);

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
    if (ev.type === 'private' && ev.to) {
      $li.addClass('private');
      $('<span>').addClass('private-tag')
        .text(mine ? fill(t['private-to'], { name: ev.to.name }) : t['private-from'])
        .appendTo($meta);
    }
    timeOf(ev.time).appendTo($meta);
    var follow = mine || atBottom();
    if (ev.type === 'image' && IMAGE_URL.test(ev.data)) {
      var $bubble = $('<p>').addClass('bubble image').appendTo($body);
      var $link = $('<a>').addClass('thumb-link').attr({ href: ev.data, target: '_blank', rel: 'noopener' })
        .appendTo($bubble);
      $('<img>').addClass('thumb').attr({ src: ev.data, alt: '' })
        // The picture arrives after the line: stay at the bottom if we were there.
        .on('load', function () { if (follow) { scrollToBottom(); } })
        .appendTo($link);
    } else {
      $('<p>').addClass('bubble').text(ev.data).appendTo($body);
    }
    return $li;
  }

  function message(ev) {
    append(messageItem(ev), me !== null && ev.user.id === me.id);
  }

  // A past event as a log line; presence in the past does not touch the online list.
  function pastItem(ev) {
    switch (ev.type) {
      case 'chat': case 'image': case 'private': return messageItem(ev);
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
      olderMore = ev.more === true;
      pageBefore = null;
      topMarker(olderMore || !Array.isArray(ev.data) || !ev.data.length ? null : 'beginning');
    }
    var items = unseenItems(ev);
    if (items.length === 0) { return; }
    if (firstLive !== null) { firstLive.before(items); } else { $log.append(items); }
    $('#empty').prop('hidden', true);
    trimLog();
    if (pinned) { scrollToBottom(); }
    // A short history leaves nothing to scroll: fetch older lines until it fills the view.
    maybeLoadOlder();
  }

  function renderOnline() {
    var $ul = $('#online').empty();
    $.each(online, function (_, u) {
      var $li = $('<li>').attr('data-id', u.id).appendTo($ul);
      avatar(u, 28).appendTo($li);
      $('<span>').addClass('name').text(u.name).appendTo($li);
      if (me !== null && u.id === me.id) {
        $li.addClass('me');
        $('<span>').addClass('you').text(t.you).appendTo($li);
      } else {
        // Others can be whispered to: a click, or Enter once focused.
        $li.attr({ tabindex: 0, role: 'button', title: fill(t['click-to-whisper'], { name: u.name }) })
          .toggleClass('whispering', whisperTo !== null && whisperTo.id === u.id);
      }
    });
    $('#count').text(onlineCount);
    // A big room: the rest of the list is a page away (scrolling down, or this button).
    var rest = Math.max(0, onlineCount - online.length);
    $('#more-users').prop('hidden', usersNext === null)
      .text(fill(t['more-users'], { n: rest }));
  }

  // The next page of a big room's users, one request at a time; the server counts each like
  // a message.
  function loadMoreUsers() {
    if (usersNext === null || usersAsked !== null || !ws || ws.readyState !== WebSocket.OPEN) { return; }
    usersAsked = usersNext;
    ws.send(JSON.stringify({ type: 'users', after: usersNext }));
  }

  function knownUser(id) {
    return $.grep(online, function (u) { return u.id === id; }).length > 0;
  }

  // A page we asked for: its users after those shown (a page from 0 starts the list again).
  function showUsers(ev) {
    if (ev.after !== usersAsked) { return; }
    usersAsked = null;
    var page = Array.isArray(ev.data) ? ev.data : [];
    if (ev.after === 0) { online = []; }
    $.each(page, function (_, u) { if (!knownUser(u.id)) { online.push(u); } });
    usersNext = typeof ev.next === 'number' ? ev.next : null;
    onlineCount = typeof ev.count === 'number' ? ev.count : online.length;
    renderOnline();
  }

  // A big room's joins and lefts of the last interval. Who joined comes after everyone, so
  // they are shown only once the whole list is (else the next pages bring them); a list
  // missing some of them (`more`) is asked for again.
  function applyPresence(ev) {
    var data = ev.data || {};
    var left = {};
    $.each(Array.isArray(data.left) ? data.left : [], function (_, u) { left[u.id] = true; });
    online = $.grep(online, function (u) { return !left[u.id]; });
    if (usersNext === null) {
      $.each(Array.isArray(data.joined) ? data.joined : [], function (_, u) {
        if (!knownUser(u.id)) { online.push(u); }
      });
    }
    if (typeof data.count === 'number') { onlineCount = data.count; }
    if (data.more === true && usersNext === null && usersAsked === null) {
      usersNext = 0;
      loadMoreUsers();
    }
    renderOnline();
  }

  $('#more-users').on('click', loadMoreUsers);
  $('#online').closest('.people').add('#online').on('scroll', function () {
    var el = this;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 48) { loadMoreUsers(); }
  });

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
        onlineCount = typeof ev.count === 'number' ? ev.count : online.length;
        usersNext = typeof ev.next === 'number' ? ev.next : null;
        usersAsked = null;
        renderOnline();
        setStatus('online', t.connected);
        break;
      case 'join':
        online = $.grep(online, function (u) { return u.id !== ev.user.id; });
        if (usersNext === null) { online.push(ev.user); }
        if (typeof ev.count === 'number') { onlineCount = ev.count; }
        renderOnline();
        systemLine('join', fill(t.joined, { name: ev.user.name }), ev.time, ev.id);
        break;
      case 'left':
        online = $.grep(online, function (u) { return u.id !== ev.user.id; });
        if (typeof ev.count === 'number') { onlineCount = ev.count; }
        renderOnline();
        systemLine('left', fill(t.left, { name: ev.user.name }), ev.time, ev.id);
        break;
      case 'chat':
      case 'private':
      case 'image':
        // One of ours got through: a mute we were shown is over.
        if (me !== null && ev.user && ev.user.id === me.id) { hideModeration('muted'); }
        message(ev);
        break;
      case 'delete':
        forget(ev);
        break;
      case 'presence':
        applyPresence(ev);
        break;
      case 'users':
        showUsers(ev);
        break;
      case 'error':
        if (showModeration(ev.data)) { break; }
        // A refused page (over the rate limit, busy) may be asked for again by scrolling.
        if (pageBefore !== null) { pageBefore = null; topMarker(null); }
        usersAsked = null;
        systemLine('error', window.passerbyErrorText(ev), ev.time);
        break;
    }
  }

  // ---- being moderated ----------------------------------------------------------------------

  // A kick, ban or mute as a notice of its own above the compose box; false for anything
  // else, which the caller shows as it always did.
  function showModeration(text, removed) {
    var explained = moderation.explain(String(text), t, lang);
    if (!explained) {
      if (!removed) { return false; }
      explained = { kind: 'removed', text: fill(t.refused, { reason: text }) };
    }
    $('#mod-notice').attr('data-kind', explained.kind).text(explained.text).prop('hidden', false);
    return true;
  }

  function hideModeration(kind) {
    var $notice = $('#mod-notice');
    if (!kind || $notice.attr('data-kind') === kind) { $notice.prop('hidden', true).text(''); }
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
    pageBefore = null;
    usersAsked = null;
    socket.onmessage = function (m) {
      if (ws !== socket) { return; }
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (ev.type === 'truncated') {
        // Events this socket should have had will never come: rebuild from a fresh join
        // (the socket let go of on purpose, its close is ignored).
        lastId = null;
        ws = null;
        socket.close();
        connect();
        return;
      }
      if (ev.type === 'history' && typeof ev.before === 'number') {
        // A page we asked for: its id is not a place in the live stream to resume from.
        showPage(ev);
        return;
      }
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
      } else if (e.code === 4004) {
        // This user's other tabs hold every socket allowed: a retry would be refused too.
        wanted = false;
        setStatus('error', t['too-many-tabs']);
      } else if (e.code === 4005) {
        // Too many new rooms (this user's, or the server's): retrying at once would be
        // refused again, so the page waits for the reader.
        wanted = false;
        setStatus('error', t['too-many-rooms']);
      } else if (e.code === 4003) {
        // Kicked or banned by a moderator: say why, in our language, and stay out.
        wanted = false;
        showModeration(e.reason || '', true);
        setStatus('error', $('#mod-notice').text());
      } else if (e.code >= 4000) {
        // Refused for a reason a retry will not fix, such as a bad room name.
        wanted = false;
        setStatus('error', fill(t.refused, { reason: e.reason || e.code }));
      } else {
        // Anything else, 1013 included (the server is busy or cannot store right now), is
        // worth another try after the backoff. An upgrade refused with 429 (sockets opened
        // too fast) reaches us as 1006 and backs off the same way.
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
    onlineCount = 0;
    usersNext = null;
    usersAsked = null;
    hideModeration();
    setWhisper(null);
    lastId = null;
    firstLive = null;
    olderMore = false;
    pageBefore = null;
    $log.empty();
    $('#online').empty();
    $('#count').text('0');
    $('#more-users').prop('hidden', true);
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
    var explained = moderation.explain(String(text), t, lang);
    $('#notice').addClass('error').text(explained ? explained.text : text).prop('hidden', false);
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
        failNotice((xhr.responseJSON && window.passerbyErrorText(xhr.responseJSON)) || t['sign-in-failed']);
      })
      .always(function () { $button.prop('disabled', false); });
  });

  $('#signout').on('click', function () {
    $.ajax({ url: '/wsout', method: 'get', dataType: 'json' })
      .done(function () { leaveRoom(); })
      .fail(function () { setStatus('error', t['sign-in-failed']); });
  });

  // ---- rooms ------------------------------------------------------------------------------

  // Another room is another page: its own address, history entry and socket.
  $('#room-form').on('submit', function (e) {
    e.preventDefault();
    var name = String($('#room-name').val()).trim();
    if (!ROOM_NAME.test(name)) {
      $('#room-notice').text(t['bad-room']).prop('hidden', false);
      $('#room-name').trigger('focus');
      return;
    }
    $('#room-notice').prop('hidden', true);
    location.assign('/ws?room=' + encodeURIComponent(name));
  });
  $('#room-name').on('input', function () { $('#room-notice').prop('hidden', true); });

  // ---- whispering -------------------------------------------------------------------------

  function setWhisper(user) {
    whisperTo = user;
    $('#whisper').prop('hidden', user === null);
    $('#whisper-to').text(user ? fill(t['whisper-to'], { name: user.name }) : '');
    $('#online li').each(function () {
      $(this).toggleClass('whispering', user !== null && Number($(this).attr('data-id')) === user.id);
    });
    $('#mes').trigger('focus');
  }

  function pickFromOnline(li) {
    var id = Number($(li).attr('data-id'));
    if (me !== null && id === me.id) { return; }
    var user = $.grep(online, function (u) { return u.id === id; })[0];
    if (user) { setWhisper(whisperTo !== null && whisperTo.id === id ? null : user); }
  }

  $('#online').on('click', 'li', function () { pickFromOnline(this); });
  $('#online').on('keydown', 'li', function (e) {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); pickFromOnline(this); }
  });
  $('#whisper-cancel').on('click', function () { setWhisper(null); });
  $('#mes').on('keydown', function (e) {
    if (e.key === 'Escape' && whisperTo !== null) { setWhisper(null); }
  });

  // ---- images -----------------------------------------------------------------------------

  function connected() {
    if (ws && ws.readyState === WebSocket.OPEN) { return true; }
    systemLine('error', t['not-connected']);
    return false;
  }

  $('#image-button').on('click', function () { $('#image-file').trigger('click'); });

  // Upload first, then name the stored file in an `image` message.
  $('#image-file').on('change', function () {
    var file = this.files && this.files[0];
    $(this).val('');
    if (!file || !connected()) { return; }
    var form = new FormData();
    form.append('file', file);
    var $button = $('#image-button').prop('disabled', true);
    $.ajax({ url: '/upload', method: 'post', data: form, processData: false, contentType: false, dataType: 'json' })
      .done(function (reply) {
        if (reply && reply.code === 0 && connected()) {
          ws.send(JSON.stringify({ type: 'image', data: reply.data }));
        }
      })
      .fail(function (xhr) {
        var reason = (xhr.responseJSON && window.passerbyErrorText(xhr.responseJSON)) || xhr.statusText || xhr.status;
        systemLine('error', fill(t['upload-failed'], { reason: reason }));
      })
      .always(function () { $button.prop('disabled', false); });
  });

  function closeViewer() {
    $('#viewer').prop('hidden', true);
    $('#viewer-image').attr('src', '');
  }

  // A click on a thumbnail shows the whole picture; a modified click still opens a tab.
  $log.on('click', 'a.thumb-link', function (e) {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) { return; }
    e.preventDefault();
    $('#viewer-image').attr('src', $(this).attr('href'));
    $('#viewer').prop('hidden', false);
    $('#viewer-close').trigger('focus');
  });
  $('#viewer').on('click', closeViewer);
  $(document).on('keydown', function (e) {
    if (e.key === 'Escape' && !$('#viewer').prop('hidden')) { closeViewer(); }
  });

  // ---- composing --------------------------------------------------------------------------

  // Enter in #mes submits the form, as does #go.
  $('#compose').on('submit', function (e) {
    e.preventDefault();
    var $mes = $('#mes');
    var text = String($mes.val()).trim();
    if (!text) { return; }
    if (!connected()) { return; }
    // Always the command form: a message that happens to look like a JSON command is still
    // sent as what the person typed.
    if (whisperTo !== null) {
      ws.send(JSON.stringify({ type: 'private', to: whisperTo.id, data: text }));
    } else {
      ws.send(JSON.stringify({ type: 'chat', data: text }));
    }
    $mes.val('').trigger('focus');
  });

  $log.on('scroll', function () {
    if (atBottom()) { $('#jump').prop('hidden', true); }
  });
  $('#jump').on('click', scrollToBottom);

  // maxlength counts UTF-16 units, the server counts characters: never more than the server's.
  $('#mes').attr('maxlength', maxChars);

  // A moderator's page shows their buttons (moderate.js) and writes where only they may.
  // Asked before the first socket opens, so that socket is already the moderator's; the
  // answer is 200 for everyone, so no error shows in the console for the rest.
  function start() {
    var signedInAs = $app.attr('data-signed-in');
    if (signedInAs) {
      enterRoom(signedInAs);
    } else {
      $('#name').trigger('focus');
    }
  }
  $.ajax({ url: '/admin/session', method: 'get', dataType: 'json', timeout: 3000 })
    .done(function (reply) {
      if (reply && typeof reply.moderator === 'string' && reply.moderator) {
        moderator = reply.moderator;
        $app.attr('data-moderator', moderator).trigger('passerby:moderator', [moderator]);
      }
    })
    .always(start);
});
