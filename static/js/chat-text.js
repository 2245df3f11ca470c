// A message's text as nodes: http and https addresses as links, @mentions marked. Built
// from text nodes and elements only, never HTML, so nothing a sender types can run.
(function () {
  'use strict';

  var C = window.passerbyChat;
  if (!C.active) { return; }

  // An address runs to the next space; trailing punctuation belongs to the sentence.
  var LINK = /\bhttps?:\/\/[^\s<>"'`]+/gi;
  var TRAILING = /[.,;:!?)\]}'"，。；：！？）】」]+$/;
  var MENTION = /@[\p{L}\p{N}_-]+/gu;

  // Only a well-formed http or https address becomes a link; anything else stays text.
  function safeHref(raw) {
    try {
      var url = new URL(raw);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  C.mentionsMe = function (text) {
    var me = C.state.me;
    if (me === null) { return false; }
    var mine = '@' + me.name.toLowerCase();
    return (String(text).toLowerCase().match(MENTION) || []).some(function (m) {
      return m === mine || mine.indexOf(m) === 0 && /[\s_-]/.test(mine.charAt(m.length));
    });
  };

  function mentions(text, into) {
    var at = 0;
    String(text).replace(MENTION, function (match, offset) {
      if (offset > at) { into.appendChild(document.createTextNode(text.slice(at, offset))); }
      var mark = document.createElement('span');
      mark.className = 'mention' + (C.mentionsMe(match) ? ' mention-me' : '');
      mark.textContent = match;
      into.appendChild(mark);
      at = offset + match.length;
      return match;
    });
    if (at < text.length) { into.appendChild(document.createTextNode(text.slice(at))); }
  }

  // Fills `el` with `text`: links and mentions as elements, the rest as text nodes.
  C.richText = function (el, text) {
    text = String(text);
    var at = 0;
    var match;
    LINK.lastIndex = 0;
    while ((match = LINK.exec(text)) !== null) {
      var raw = match[0].replace(TRAILING, '');
      var href = safeHref(raw);
      if (!href || !raw) { continue; }
      mentions(text.slice(at, match.index), el);
      var a = document.createElement('a');
      a.href = href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      a.className = 'link';
      a.textContent = raw;
      el.appendChild(a);
      at = match.index + raw.length;
      LINK.lastIndex = at;
    }
    mentions(text.slice(at), el);
  };
})();
