// The chat page's shared ground: the namespace every chat-*.js file adds to
// (window.passerbyChat), the page's strings, the state they share, and small helpers.
// Everything a user supplied (names, messages, server errors) is inserted with .text(),
// never as HTML. The server passes its data in data- attributes on #app: the CSP allows no
// inline script.
(function () {
  'use strict';

  var C = window.passerbyChat = {};
  var $app = $('#app');
  // The bad-room page loads these scripts too, and has nothing for them to do.
  C.active = $app.length > 0;
  if (!C.active) { return; }
  C.$app = $app;
  C.$log = $('#log');
  // .attr, not .data: jQuery's .data would turn a name like "123" or "true" into a number.
  C.maxChars = parseInt($app.attr('data-max-chars'), 10) || 2000;
  C.lang = document.documentElement.lang || 'zh-CN';
  var t = C.t = {};
  $.each(['connecting', 'connected', 'reconnecting', 'signed-out', 'refused', 'too-many-tabs',
    'too-many-rooms',
    'joined', 'left',
    'you', 'sign-in-failed', 'not-connected', 'whisper-to', 'private-to', 'private-from',
    'bad-room', 'upload-failed', 'click-to-whisper', 'loading-older', 'beginning',
    'kicked', 'banned', 'banned-forever', 'muted', 'because', 'more-users', 'image-from', 'too-long'], function (_, key) {
    t[key] = $app.attr('data-t-' + key) || key;
  });

  // What the files share and change. One object, so each file sees the others' changes.
  C.state = {
    moderator: null, // our moderator name if the browser holds a good moderator cookie
    ws: null,        // the current socket, or null
    wanted: false,   // whether we should be connected (signed in and not refused)
    me: null,        // our user, from the sign-in answer or the `list` event
    online: [],      // users in the room, in the order they came (a big room: those loaded)
    // A big room's list comes a page at a time: how many are in the room, the cursor of the
    // next page (null once all are loaded), and the cursor of the page we asked for, or null.
    onlineCount: 0,
    usersNext: null,
    usersAsked: null,
    attempt: 0,      // reconnect attempts since the last good connection
    retryTimer: null,
    countdown: null,
    room: $app.attr('data-room') || 'lobby',
    whisperTo: null, // the user our messages go to privately, or null
    // The last event id this page saw. A reconnect asks for everything after it (?since=),
    // so a dropped socket or a server restart loses nothing on screen.
    lastId: null,
    firstLive: null, // the first log line this socket added live, where history goes before
    // Scrolling back: whether older events remain before the oldest line shown (the
    // server's `more`), and the `before` of the page we asked for and wait on, or null.
    olderMore: false,
    pageBefore: null,
    // Ids a moderator deleted in this room. A page of history read just before a deletion
    // may still hold the line and arrive after its `delete`: it is left out then too.
    deleted: {}
  };

  // The server's rule (RoomName::parse): 1–32 letters of any script, digits, - and _.
  // Rust's char::is_alphanumeric is Alphabetic or Numeric, as here.
  C.ROOM_NAME = /^[\p{Alphabetic}\p{N}_-]{1,32}$/u;
  // Only what POST /upload hands out is shown as an image.
  C.IMAGE_URL = /^\/uploads\/[0-9a-f]{64}\.(png|jpg|gif|webp)$/;

  // `{name}` placeholders filled in; the result is only ever used as text.
  C.fill = function (template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : whole;
    });
  };

  // The one place an `error` event becomes words: in the page's language where the server
  // sent a code the page knows (errors.js), else the server's own text.
  C.errorText = function (ev) {
    return window.passerbyErrorText ? window.passerbyErrorText(ev) : ev.message;
  };

  C.avatarUrl = function (image) {
    var n = Math.floor(Number(image));
    return '/static/img/avatars/' + (n >= 0 && n <= 9 ? n : 0) + '.svg';
  };

  C.avatar = function (user, size) {
    return $('<img>').addClass('avatar')
      .attr({ src: C.avatarUrl(user.image), alt: '', width: size, height: size });
  };

  C.timeOf = function (ms) {
    var when = new Date(typeof ms === 'number' ? ms : Date.now());
    return $('<time>')
      .attr({ datetime: when.toISOString(), title: when.toLocaleString(C.lang) })
      .text(when.toLocaleTimeString(C.lang, { hour: '2-digit', minute: '2-digit' }));
  };

  C.setStatus = function (state, text) {
    $('#status').attr('data-state', state || '').text(text || '');
  };

  C.isOpen = function () {
    var ws = C.state.ws;
    return ws !== null && ws.readyState === WebSocket.OPEN;
  };

  C.send = function (command) {
    C.state.ws.send(JSON.stringify(command));
  };
})();
