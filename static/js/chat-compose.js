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

  // Enter in #mes submits the form, as does #go.
  $('#compose').on('submit', function (e) {
    e.preventDefault();
    var $mes = $('#mes');
    var text = String($mes.val()).trim();
    if (!text) { return; }
    if (!C.connected()) { return; }
    // Always the command form: a message that happens to look like a JSON command is still
    // sent as what the person typed.
    if (S.whisperTo !== null) {
      C.send({ type: 'private', to: S.whisperTo.id, data: text });
    } else {
      C.send({ type: 'chat', data: text });
    }
    $mes.val('').trigger('focus');
  });

  // maxlength counts UTF-16 units, the server counts characters: never more than the server's.
  $('#mes').attr('maxlength', C.maxChars);

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
