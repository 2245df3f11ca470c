// The rooms with people in them (GET /rooms, busiest first), each a link to its page.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  // Often enough to show rooms coming and going, rarely enough to cost nothing.
  var REFRESH_MS = 30000;
  var timer = null;

  function render(rooms) {
    var $ul = $('#rooms').empty();
    $.each(Array.isArray(rooms) ? rooms : [], function (_, room) {
      if (!room || typeof room.name !== 'string' || !C.ROOM_NAME.test(room.name)) { return; }
      var $li = $('<li>').appendTo($ul);
      var $a = $('<a>').attr('href', '/ws?room=' + encodeURIComponent(room.name)).appendTo($li);
      $('<span>').addClass('room-name').text(room.name).appendTo($a);
      $('<span>').addClass('count').text(Number(room.online) || 0).appendTo($a);
      if (room.name === S.room) { $a.attr('aria-current', 'page'); }
    });
    var empty = $ul.children().length === 0;
    $('#rooms, #rooms-title').prop('hidden', empty);
  }

  C.loadRooms = function () {
    clearTimeout(timer);
    $.ajax({ url: '/rooms', method: 'get', dataType: 'json', timeout: 5000 })
      .done(render)
      .always(function () {
        if (S.wanted) { timer = setTimeout(C.loadRooms, REFRESH_MS); }
      });
  };
})();
