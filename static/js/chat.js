// The chat page's entry: sign in with $.ajax, then talk over a WebSocket on the page's own
// host and port (chat-socket.js); signing out; and the start, once moderate.js is loaded.
// The page's parts live in chat-*.js and share window.passerbyChat (chat-core.js).
$(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C || !C.active) { return; }
  var S = C.state;
  var t = C.t;
  var $app = C.$app;

  function enterRoom(name) {
    $('#me').text(name);
    $('#name').val(name);
    $('#notice').prop('hidden', true).text('');
    $('#signed-out').prop('hidden', true);
    $('#signed-in, #whoami').prop('hidden', false);
    $('#mes').trigger('focus');
    C.connect();
  }

  C.leaveRoom = function (notice) {
    S.wanted = false;
    C.stopRetrying();
    S.attempt = 0;
    if (S.ws) {
      var socket = S.ws;
      S.ws = null;
      socket.close(1000);
    }
    C.dropOutbox();
    S.me = null;
    S.online = [];
    S.onlineCount = 0;
    S.usersNext = null;
    S.usersAsked = null;
    C.hideModeration();
    C.setWhisper(null);
    S.lastId = null;
    S.firstLive = null;
    S.olderMore = false;
    S.pageBefore = null;
    C.$log.empty();
    $('#online').empty();
    $('#count').text('0');
    $('#more-users').prop('hidden', true);
    $('#empty').prop('hidden', false);
    $('#jump').prop('hidden', true);
    $('#me-avatar').prop('hidden', true);
    C.setStatus('', '');
    $('#signed-in, #whoami').prop('hidden', true);
    $('#signed-out').prop('hidden', false);
    $('.avatar-parade img[data-src]').each(function () {
      $(this).attr('src', $(this).attr('data-src')).removeAttr('data-src');
    });
    $('#notice').removeClass('error').text(notice || '').prop('hidden', !notice);
    $('#name').trigger('focus');
  };

  // A refused sign-in: a ban in the page's words, else the server's error as errorText says it.
  function failNotice(reply, fallback) {
    var text = String((reply && reply.data) || fallback);
    var explained = window.passerbyModeration.explain(text, t, C.lang);
    if (!explained && reply && reply.data) { text = C.errorText($.extend({}, reply, { message: text })); }
    $('#notice').addClass('error').text(explained ? explained.text : text).prop('hidden', false);
  }

  $('#signin-form').on('submit', function (e) {
    e.preventDefault();
    var $button = $('#signin').prop('disabled', true);
    $.ajax({ url: '/wsin', method: 'post', dataType: 'json', data: { name: String($('#name').val()).trim() } })
      .done(function (reply) {
        if (reply && reply.code === 0 && reply.user) {
          C.knowMe(reply.user);
          enterRoom(reply.user.name);
        } else {
          failNotice(reply, t['sign-in-failed']);
        }
      })
      .fail(function (xhr) {
        failNotice(xhr.responseJSON, t['sign-in-failed']);
      })
      .always(function () { $button.prop('disabled', false); });
  });

  $('#signout').on('click', function () {
    $.ajax({ url: '/wsout', method: 'get', dataType: 'json' })
      .done(function () { C.leaveRoom(); })
      .fail(function () { C.setStatus('error', t['sign-in-failed']); });
  });

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
        S.moderator = reply.moderator;
        $app.attr('data-moderator', S.moderator).trigger('passerby:moderator', [S.moderator]);
      }
    })
    .always(start);
});
