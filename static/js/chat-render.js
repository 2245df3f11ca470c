// The conversation log: lines for messages and presence, following the bottom, history
// filled in after a reconnect, older pages prepended when scrolling back, deleted lines.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;
  var t = C.t;
  var $log = C.$log;

  C.atBottom = function () {
    var el = $log[0];
    return el.scrollHeight - el.scrollTop - el.clientHeight < 48;
  };

  C.scrollToBottom = function () {
    $log.scrollTop($log[0].scrollHeight);
    $('#jump').prop('hidden', true);
    C.seen();
  };

  function trimLog() {
    var $items = $log.children();
    if ($items.length > 500) {
      $items.slice(0, $items.length - 500).remove();
      // What was trimmed can be paged back to again.
      S.olderMore = true;
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
  C.topMarker = topMarker;

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
    if (!S.olderMore || S.pageBefore !== null || !C.isOpen()) { return; }
    if ($log.scrollTop() > 40) { return; }
    var before = oldestShown();
    if (before === null || before <= 1) { return; }
    S.pageBefore = before;
    topMarker('loading');
    C.send({ type: 'history', before: before });
  }

  // ---- deleted messages --------------------------------------------------------------------

  // The ids a `delete` lists: always `data.ids` (`data.id` too when there is one).
  function deletedIds(ev) {
    var data = ev.data || {};
    if (Array.isArray(data.ids)) { return data.ids; }
    return typeof data.id === 'number' ? [data.id] : [];
  }

  C.forget = function (ev) {
    $.each(deletedIds(ev), function (_, id) {
      S.deleted[String(id)] = true;
      $log.children('[data-id="' + Number(id) + '"]').remove();
    });
    C.decorate();
  };

  // The lines of a `history` (or a page of one) that the log does not show yet.
  function unseenItems(ev) {
    var known = {};
    $log.children('[data-id]').each(function () { known[$(this).attr('data-id')] = true; });
    var items = [];
    var past = Array.isArray(ev.data) ? ev.data : [];
    $.each(past, function (_, e) { if (e && e.type === 'delete') { C.forget(e); } });
    $.each(past, function (_, past) {
      if (!past || known[String(past.id)] || S.deleted[String(past.id)]) { return; }
      var $item = pastItem(past);
      if ($item) { items.push($item); }
    });
    return items;
  }

  // A page of older events: prepended above what is shown, keeping the lines in view still.
  C.showPage = function (ev) {
    if (ev.before !== S.pageBefore) { return; }
    S.pageBefore = null;
    topMarker(null);
    var items = unseenItems(ev);
    S.olderMore = ev.more === true;
    var el = $log[0];
    var fromBottom = el.scrollHeight - el.scrollTop;
    $log.prepend(items);
    C.decorate();
    if (!S.olderMore) { topMarker('beginning'); }
    if (items.length) { $('#empty').prop('hidden', true); }
    el.scrollTop = el.scrollHeight - fromBottom;
    maybeLoadOlder();
  };

  $log.on('scroll', maybeLoadOlder);

  // Follows the conversation unless the reader scrolled up; then offers a jump instead.
  function append($item, follow) {
    var pinned = C.atBottom();
    $log.append($item);
    if (S.firstLive === null) { S.firstLive = $item; }
    $('#empty').prop('hidden', true);
    trimLog();
    C.decorate();
    if (pinned || follow) { C.scrollToBottom(); } else { $('#jump').prop('hidden', false); }
    C.counted($item, pinned || follow);
  }

  function systemItem(kind, text, ms, id, user) {
    var $li = $('<li>').addClass('system ' + kind).attr('data-time', typeof ms === 'number' ? ms : Date.now());
    if (typeof id === 'number') { $li.attr('data-id', id); }
    if (user) { $li.attr({ 'data-user': user.id, 'data-name': user.name }); }
    $('<span>').text(text).appendTo($li);
    C.timeOf(ms).appendTo($li);
    return $li;
  }

  C.systemLine = function (kind, text, ms, id, user) {
    append(systemItem(kind, text, ms, id, user), false);
  };

  function messageItem(ev) {
    var me = S.me;
    var mine = me !== null && ev.user.id === me.id;
    var $li = $('<li>').addClass('msg ' + (mine ? 'mine' : 'theirs'))
      .attr({ 'data-id': ev.id, 'data-user': ev.user.id, 'data-name': ev.user.name,
        'data-time': typeof ev.time === 'number' ? ev.time : Date.now() });
    C.avatar(ev.user, 36).appendTo($li);
    var $body = $('<div>').addClass('msg-body').appendTo($li);
    var $meta = $('<div>').addClass('meta').appendTo($body);
    $('<span>').addClass('name').text(ev.user.name).appendTo($meta);
    if (ev.type === 'private' && ev.to) {
      $li.addClass('private');
      $('<span>').addClass('private-tag')
        .text(mine ? C.fill(t['private-to'], { name: ev.to.name }) : t['private-from'])
        .appendTo($meta);
    }
    C.timeOf(ev.time).appendTo($meta);
    var follow = mine || C.atBottom();
    if (ev.type === 'image' && C.IMAGE_URL.test(ev.data)) {
      var $bubble = $('<p>').addClass('bubble image').appendTo($body);
      var $link = $('<a>').addClass('thumb-link')
        .attr({ href: ev.data, target: '_blank', rel: 'noopener', 'aria-label': C.fill(t['image-from'], { name: ev.user.name }) })
        .appendTo($bubble);
      $('<img>').addClass('thumb').attr({ src: ev.data, alt: '' })
        // The picture arrives after the line: stay at the bottom if we were there.
        .on('load', function () { if (follow) { C.scrollToBottom(); } })
        .appendTo($link);
    } else {
      var bubble = $('<p>').addClass('bubble').appendTo($body)[0];
      C.richText(bubble, ev.data);
      if (!mine && (ev.type === 'private' || C.mentionsMe(ev.data))) { $li.addClass('for-me'); }
    }
    return $li;
  }

  C.message = function (ev) {
    append(messageItem(ev), S.me !== null && ev.user.id === S.me.id);
  };

  // A past event as a log line; presence in the past does not touch the online list.
  function pastItem(ev) {
    switch (ev.type) {
      case 'chat': case 'image': case 'private': return messageItem(ev);
      case 'join': return systemItem('join', C.fill(t.joined, { name: ev.user.name }), ev.time, ev.id, ev.user);
      case 'left': return systemItem('left', C.fill(t.left, { name: ev.user.name }), ev.time, ev.id, ev.user);
      default: return null;
    }
  }

  // `history` comes right after `list`: the events before this socket's live ones. With
  // `truncated` (or on a first connection) the view is rebuilt from it; otherwise it fills
  // the gap between what we had and what this socket added live.
  C.showHistory = function (ev, rebuild) {
    var pinned = C.atBottom();
    if (rebuild) {
      if (S.firstLive !== null) { S.firstLive.prevAll().remove(); } else { $log.empty(); }
      S.olderMore = ev.more === true;
      S.pageBefore = null;
      topMarker(S.olderMore || !Array.isArray(ev.data) || !ev.data.length ? null : 'beginning');
    }
    var items = unseenItems(ev);
    if (items.length === 0) { return; }
    if (S.firstLive !== null) { S.firstLive.before(items); } else { $log.append(items); }
    C.decorate();
    $('#empty').prop('hidden', true);
    trimLog();
    if (pinned) { C.scrollToBottom(); }
    // A short history leaves nothing to scroll: fetch older lines until it fills the view.
    maybeLoadOlder();
  };

  $log.on('scroll', function () {
    if (C.atBottom()) { $('#jump').prop('hidden', true); C.seen(); }
  });
  $('#jump').on('click', C.scrollToBottom);
})();
