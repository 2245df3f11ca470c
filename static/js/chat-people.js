// Who is in the room: the online list (a page at a time in a big room), who we are, and
// picking someone from the list to whisper to.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var t = C.t;

  C.renderOnline = function () {
    var $ul = $('#online').empty();
    $.each(S.online, function (_, u) {
      var $li = $('<li>').attr('data-id', u.id).appendTo($ul);
      if (S.me !== null && u.id === S.me.id) {
        $li.addClass('me');
        C.avatar(u, 28).appendTo($li);
        $('<span>').addClass('name').text(u.name).appendTo($li);
        $('<span>').addClass('you').text(t.you).appendTo($li);
      } else {
        // Others can be whispered to: a real button, so a click, Enter and Space all work.
        var whispering = S.whisperTo !== null && S.whisperTo.id === u.id;
        var $pick = $('<button>').addClass('pick').appendTo($li)
          .attr({ type: 'button', title: C.fill(t['click-to-whisper'], { name: u.name }), 'aria-pressed': whispering });
        C.avatar(u, 28).appendTo($pick);
        $('<span>').addClass('name').text(u.name).appendTo($pick);
        $li.toggleClass('whispering', whispering);
      }
      // Two people of one name: their ids tell them apart.
      if (C.sharedName(u)) { $('<span>').addClass('uid').text('#' + u.id).insertAfter($li.find('.name')); }
    });
    $('#count').text(S.onlineCount);
    // A big room: the rest of the list is a page away (scrolling down, or this button).
    var rest = Math.max(0, S.onlineCount - S.online.length);
    $('#more-users').prop('hidden', S.usersNext === null)
      .text(C.fill(t['more-users'], { n: rest }));
  };

  // The next page of a big room's users, one request at a time; the server counts each like
  // a message.
  function loadMoreUsers() {
    if (S.usersNext === null || S.usersAsked !== null || !C.isOpen()) { return; }
    S.usersAsked = S.usersNext;
    C.send({ type: 'users', after: S.usersNext });
  }
  C.loadMoreUsers = loadMoreUsers;

  function knownUser(id) {
    return $.grep(S.online, function (u) { return u.id === id; }).length > 0;
  }

  // A page we asked for: its users after those shown (a page from 0 starts the list again).
  C.showUsers = function (ev) {
    if (ev.after !== S.usersAsked) { return; }
    S.usersAsked = null;
    var page = Array.isArray(ev.data) ? ev.data : [];
    if (ev.after === 0) { S.online = []; }
    $.each(page, function (_, u) { if (!knownUser(u.id)) { S.online.push(u); } });
    S.usersNext = typeof ev.next === 'number' ? ev.next : null;
    S.onlineCount = typeof ev.count === 'number' ? ev.count : S.online.length;
    C.renderOnline();
  };

  // A big room's joins and lefts of the last interval. Who joined comes after everyone, so
  // they are shown only once the whole list is (else the next pages bring them); a list
  // missing some of them (`more`) is asked for again.
  C.applyPresence = function (ev) {
    var data = ev.data || {};
    var left = {};
    $.each(Array.isArray(data.left) ? data.left : [], function (_, u) { left[u.id] = true; });
    S.online = $.grep(S.online, function (u) { return !left[u.id]; });
    if (S.usersNext === null) {
      $.each(Array.isArray(data.joined) ? data.joined : [], function (_, u) {
        if (!knownUser(u.id)) { S.online.push(u); }
      });
    }
    if (typeof data.count === 'number') { S.onlineCount = data.count; }
    if (data.more === true && S.usersNext === null && S.usersAsked === null) {
      S.usersNext = 0;
      loadMoreUsers();
    }
    C.renderOnline();
  };

  $('#more-users').on('click', loadMoreUsers);
  $('#online').closest('.people').add('#online').on('scroll', function () {
    var el = this;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 48) { loadMoreUsers(); }
  });

  C.knowMe = function (user) {
    S.me = user;
    $('#me').text(user.name);
    $('#me-avatar').attr('src', C.avatarUrl(user.image)).prop('hidden', false);
  };

  // ---- whispering -------------------------------------------------------------------------

  C.setWhisper = function (user) {
    S.whisperTo = user;
    $('#whisper').prop('hidden', user === null);
    $('#whisper-to').text(user ? C.fill(t['whisper-to'], { name: user.name }) : '');
    $('#online li').each(function () {
      var on = user !== null && Number($(this).attr('data-id')) === user.id;
      $(this).toggleClass('whispering', on).children('button.pick').attr('aria-pressed', on);
    });
    $('#mes').trigger('focus');
  };

  function pickFromOnline(li) {
    var id = Number($(li).attr('data-id'));
    if (S.me !== null && id === S.me.id) { return; }
    var user = $.grep(S.online, function (u) { return u.id === id; })[0];
    if (user) { C.setWhisper(S.whisperTo !== null && S.whisperTo.id === id ? null : user); }
  }

  $('#online').on('click', 'button.pick', function () { pickFromOnline($(this).closest('li')); });
  $('#whisper-cancel').on('click', function () { C.setWhisper(null); });
  $('#mes').on('keydown', function (e) {
    if (e.key === 'Escape' && S.whisperTo !== null) { C.setWhisper(null); }
  });
})();
