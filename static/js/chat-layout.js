// How the log reads, recomputed after each change to it: a separator where the day
// changes, one person's consecutive messages grouped, runs of joins and lefts folded into
// one summary line, an `#id` after names that two people share; and the unread count in
// the tab title and on the "new messages" button.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var t = C.t;
  var $log = C.$log;

  // Messages closer than this from one person share one name and avatar.
  var GROUP_MS = 5 * 60 * 1000;
  // A summary names this many people, then counts the rest.
  var NAMED = 3;

  function dayOf(ms) {
    var when = new Date(ms);
    return when.getFullYear() + '-' + when.getMonth() + '-' + when.getDate();
  }

  function dayLabel(ms) {
    return new Date(ms).toLocaleDateString(C.lang, { year: 'numeric', month: 'long', day: 'numeric', weekday: 'short' });
  }

  function names(list) {
    var shown = list.slice(0, NAMED).join(', ');
    return list.length > NAMED ? shown + ' +' + (list.length - NAMED) : shown;
  }

  // One run of presence lines: each person once, by their last line; a line that only
  // repeats what is known (a second `join` after a restart lost the `left`) is hidden.
  function foldRun(run) {
    var last = {};
    var order = [];
    $.each(run, function (_, li) {
      var id = li.getAttribute('data-user');
      if (!Object.prototype.hasOwnProperty.call(last, id)) { order.push(id); }
      last[id] = li;
    });
    var joined = [];
    var left = [];
    $.each(order, function (_, id) {
      var li = last[id];
      (li.classList.contains('join') ? joined : left).push(li.getAttribute('data-name'));
    });
    var $summary = $(run[run.length - 1]);
    $.each(run, function (i, li) { if (i < run.length - 1) { li.classList.add('folded'); } });
    if (run.length < 2) { return; }
    var parts = [];
    if (joined.length) { parts.push(C.fill(t.joined, { name: names(joined) })); }
    if (left.length) { parts.push(C.fill(t.left, { name: names(left) })); }
    $summary.addClass('summary');
    $('<span>').addClass('fold-summary').text(parts.join(' · ')).insertAfter($summary.children('span').first());
  }

  C.decorate = function () {
    var items = $log.children('li').get();
    var prev = null;
    var day = null;
    var run = [];
    var state = {}; // user id -> 'join' or 'left', as the lines above say
    var people = {}; // name -> {user id: true}, to find names two people share
    $log.find('.fold-summary, .uid').remove();
    $.each(items, function (_, li) {
      li.classList.remove('grouped', 'folded', 'summary', 'day-start');
      var name = li.getAttribute('data-name');
      if (name !== null) {
        (people[name] = people[name] || {})[li.getAttribute('data-user')] = true;
      }
    });
    $.each(S.online, function (_, u) { (people[u.name] = people[u.name] || {})[String(u.id)] = true; });
    $.each(items, function (_, li) {
      var ms = Number(li.getAttribute('data-time'));
      if (ms && dayOf(ms) !== day) {
        day = dayOf(ms);
        prev = null;
      }
      var presence = li.classList.contains('join') || li.classList.contains('left');
      if (presence) {
        var id = li.getAttribute('data-user');
        var kind = li.classList.contains('join') ? 'join' : 'left';
        if (state[id] === kind && kind === 'join') {
          li.classList.add('folded');
        } else {
          run.push(li);
        }
        state[id] = kind;
      } else if (run.length) {
        foldRun(run);
        run = [];
      }
      if (li.classList.contains('msg')) {
        if (prev && prev.getAttribute('data-user') === li.getAttribute('data-user')
            && !li.classList.contains('private') && !prev.classList.contains('private')
            && ms - Number(prev.getAttribute('data-time')) < GROUP_MS) {
          li.classList.add('grouped');
        }
        prev = li;
        var shared = people[li.getAttribute('data-name')];
        if (shared && Object.keys(shared).length > 1) {
          $('<span>').addClass('uid').text('#' + li.getAttribute('data-user'))
            .insertAfter($(li).find('.meta .name'));
        }
      } else if (!presence || !li.classList.contains('folded')) {
        prev = null;
      }
    });
    if (run.length) { foldRun(run); }
    // The date goes on the first line of each day that is shown (not on a folded one).
    day = null;
    $.each(items, function (_, li) {
      var ms = Number(li.getAttribute('data-time'));
      if (!ms || li.classList.contains('folded') || dayOf(ms) === day) { return; }
      day = dayOf(ms);
      li.classList.add('day-start');
      li.setAttribute('data-day', dayLabel(ms));
    });
  };

  C.sharedName = function (user) {
    var n = 0;
    $.each(S.online, function (_, u) { if (u.name === user.name) { n += 1; } });
    return n > 1;
  };

  // ---- unread -----------------------------------------------------------------------------

  var baseTitle = document.title;
  var unread = 0;

  function showUnread() {
    document.title = unread ? '(' + unread + ') ' + baseTitle : baseTitle;
    $('#unread').text(unread ? String(unread) : '');
  }

  // A live line just added: someone else's message counts while the reader does not see
  // it (another tab in front, or scrolled up).
  C.counted = function ($item, inView) {
    if (!$item.hasClass('msg') || $item.hasClass('mine')) { return; }
    if (inView && document.visibilityState === 'visible') { return; }
    unread += 1;
    showUnread();
  };

  C.seen = function () {
    if (document.visibilityState !== 'visible' || !C.atBottom()) { return; }
    unread = 0;
    showUnread();
  };

  $(document).on('visibilitychange', function () { C.seen(); });
})();
