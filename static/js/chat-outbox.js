// Messages on their way: each is sent with a `cid` and kept, text and all, until its
// `ack`. A refusal that waiting will not fix puts the text back in the box; one that
// waiting fixes (the rate limit, a busy server, a dropped socket) sends it again with the
// same `cid`, which the server stores at most once.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }
  var S = C.state;

  // Codes after which the same message may succeed later (docs/PROTOCOL.md).
  var RETRY = { rate_limited: true, busy: true, not_sent: true };
  // A message neither acknowledged nor refused by then is sent again: the server drops a
  // flood past its limit with one `error` for it all.
  var ACK_WAIT_MS = 3000;
  // The same refused message sent again within a second is refused silently: wait longer.
  var RETRY_MS = 1200;

  var pending = []; // {cid, command, text, whisperTo, sentAt}
  var seq = 0;
  var prefix = 'p' + Math.random().toString(36).slice(2, 10) + '-';
  var timer = null;

  function sendOne(item) {
    item.sentAt = Date.now();
    C.send(item.command);
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = null;
    if (!pending.length) { return; }
    timer = setTimeout(resend, ms);
  }

  // Everything not yet acknowledged, again and in order.
  function resend() {
    timer = null;
    if (!pending.length) { return; }
    if (C.isOpen()) {
      var now = Date.now();
      $.each(pending, function (_, item) { if (now - item.sentAt >= RETRY_MS) { sendOne(item); } });
    }
    schedule(ACK_WAIT_MS);
  }

  C.outboxSend = function (command, text) {
    seq += 1;
    command.cid = prefix + seq;
    var item = { cid: command.cid, command: command, text: text, whisperTo: S.whisperTo, sentAt: 0 };
    pending.push(item);
    sendOne(item);
    if (timer === null) { schedule(ACK_WAIT_MS); }
  };

  function take(cid) {
    for (var i = 0; i < pending.length; i += 1) {
      if (pending[i].cid === cid) { return pending.splice(i, 1)[0]; }
    }
    return null;
  }

  // The text of a message that will not be stored goes back where it was typed, before
  // anything typed since, and a whisper's recipient with it.
  function giveBack(item) {
    var $mes = $('#mes');
    var now = String($mes.val());
    $mes.val(now.trim() ? item.text + '\n' + now : item.text).trigger('input');
    if (item.whisperTo && S.whisperTo === null) { C.setWhisper(item.whisperTo); }
  }

  C.acked = function (ev) {
    var data = ev.data || {};
    if (typeof data.cid === 'string') { take(data.cid); }
    if (!pending.length) { schedule(0); }
  };

  // An `error`: about one of ours if it names its `cid`, or, without one, about the oldest
  // one not yet answered (the server answers a socket's messages in order).
  C.refused = function (ev) {
    var item = null;
    if (typeof ev.cid === 'string') {
      item = $.grep(pending, function (p) { return p.cid === ev.cid; })[0] || null;
    } else if (typeof ev.code === 'string' && pending.length && !RETRY[ev.code]) {
      item = pending[0];
    }
    if (RETRY[ev.code]) {
      schedule(RETRY_MS);
      return;
    }
    if (item) {
      take(item.cid);
      giveBack(item);
    }
  };

  // A new socket: what the last one left unanswered goes out again.
  C.reconnected = function () {
    $.each(pending, function (_, item) { sendOne(item); });
    schedule(ACK_WAIT_MS);
  };

  // Signed out: nothing more will be sent; the texts go back in the box.
  C.dropOutbox = function () {
    var items = pending;
    pending = [];
    schedule(0);
    $.each(items, function (_, item) { giveBack(item); });
  };
})();
