// Writing: the compose box and its send, and the form that goes to another room.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var t = C.t;

  C.connected = function () {
    if (C.isOpen()) { return true; }
    C.systemLine('error', t['not-connected']);
    return false;
  };

  // The server counts characters (code points), not UTF-16 units.
  function length(text) {
    return Array.from(text).length;
  }

  // Near the limit a counter shows; past it the message is refused here, whole, instead
  // of being cut where a maxlength would have cut it.
  function count() {
    var n = length(String($('#mes').val()).trim());
    var $counter = $('#counter');
    var over = n - C.maxChars;
    $counter.prop('hidden', n < C.maxChars * 0.9)
      .toggleClass('over', over > 0)
      .text(over > 0 ? n + ' / ' + C.maxChars + ' · ' + C.fill(t['too-long'], { n: over }) : n + ' / ' + C.maxChars);
    return over;
  }
  $('#mes').on('input', count);

  // Enter sends; Shift+Enter starts a new line (and an input method's Enter is its own).
  $('#mes').on('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      $('#compose').trigger('submit');
    }
  });

  $('#compose').on('submit', function (e) {
    e.preventDefault();
    var $mes = $('#mes');
    var text = String($mes.val()).trim();
    if (!text) { return; }
    if (count() > 0) {
      $('#counter').prop('hidden', false);
      $mes.trigger('focus');
      return;
    }
    if (!C.connected()) { return; }
    // Always the command form: a message that happens to look like a JSON command is still
    // sent as what the person typed.
    if (S.whisperTo !== null) {
      C.outboxSend({ type: 'private', to: S.whisperTo.id, data: text }, text);
    } else {
      C.outboxSend({ type: 'chat', data: text }, text);
    }
    $mes.val('').trigger('focus');
    count();
  });

  // ---- rooms ------------------------------------------------------------------------------

  // Another room is another page: its own address, history entry and socket.
  $('#room-form').on('submit', function (e) {
    e.preventDefault();
    var name = String($('#room-name').val()).trim();
    if (!C.ROOM_NAME.test(name)) {
      $('#room-notice').text(t['bad-room']).prop('hidden', false);
      $('#room-name').trigger('focus');
      return;
    }
    $('#room-notice').prop('hidden', true);
    location.assign('/ws?room=' + encodeURIComponent(name));
  });
  $('#room-name').on('input', function () { $('#room-notice').prop('hidden', true); });
})();
