// The chat page: sign in with $.ajax, then talk over a WebSocket on the page's own host.
// Everything a user typed is inserted with .text(), never as HTML.
$(function () {
  'use strict';
  var $app = $('#app');
  var ws = null;
  var me = null;

  function socketUrl() {
    var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + location.host + '/ws' + location.search;
  }

  function line(cls, who, text) {
    var $li = $('<li>').addClass(cls);
    if (who) { $('<b>').text(who + '：').appendTo($li); }
    $('<span>').text(text).appendTo($li);
    $('#log').append($li);
    $li[0].scrollIntoView({ block: 'end' });
  }

  function showOnline(users) {
    var $ul = $('#online').empty();
    $.each(users, function (_, u) { $('<li>').text(u.name).appendTo($ul); });
    $('#count').text(users.length);
  }

  var online = [];
  function onEvent(ev) {
    switch (ev.type) {
      case 'list': me = ev.user; online = ev.data; showOnline(online); break;
      case 'join':
        online = online.filter(function (u) { return u.id !== ev.user.id; }).concat([ev.user]);
        showOnline(online); line('system', null, ev.data); break;
      case 'left':
        online = online.filter(function (u) { return u.id !== ev.user.id; });
        showOnline(online); line('system', null, ev.data); break;
      case 'chat': line(me && ev.user.id === me.id ? 'mine' : 'theirs', ev.user.name, ev.data); break;
      case 'error': line('error', null, ev.data); break;
    }
  }

  function connect() {
    ws = new WebSocket(socketUrl());
    ws.onmessage = function (m) { onEvent(JSON.parse(m.data)); };
    ws.onclose = function (e) {
      ws = null;
      if (e.code === 4001) { signedOut(); }
      else { $('#status').text('连接已断开 (' + e.code + ')'); }
    };
  }

  function signedIn(name) {
    $('#me').text(name);
    $('#signed-out').prop('hidden', true);
    $('#signed-in').prop('hidden', false);
    connect();
  }

  function signedOut() {
    if (ws) { ws.close(); ws = null; }
    $('#signed-in').prop('hidden', true);
    $('#signed-out').prop('hidden', false);
  }

  $('#signin').on('click', function () {
    $.ajax({ url: '/wsin', method: 'post', dataType: 'json', data: { name: $('#name').val() } })
      .done(function (r) { if (r.code === 0) { me = r.user; signedIn(r.user.name); } })
      .fail(function (x) { $('#status').text((x.responseJSON && x.responseJSON.data) || '登入失败'); });
  });

  $('#signout').on('click', function () {
    $.ajax({ url: '/wsout', method: 'get' }).done(signedOut);
  });

  $('#compose').on('submit', function (e) {
    e.preventDefault();
    var text = $.trim($('#mes').val());
    if (ws && ws.readyState === WebSocket.OPEN && text) { ws.send(text); $('#mes').val(''); }
  });

  $('#mes').attr('maxlength', $app.data('max-chars'));
  var signedInAs = $app.attr('data-signed-in');
  if (signedInAs) { signedIn(signedInAs); }
});
