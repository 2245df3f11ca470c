// When to try the socket again: 1 s, doubling up to 30 s, with jitter so that the pages of a
// restarted server do not all knock at the same instant. The page and the unit test load it.
(function (root) {
  'use strict';
  var FIRST_MS = 1000;
  var MAX_MS = 30000;
  var JITTER = 0.2; // each delay is its base ±20 %

  // attempt: 0 for the first retry after a drop; rand: a number in [0, 1), Math.random().
  function reconnectDelay(attempt, rand) {
    var base = Math.min(MAX_MS, FIRST_MS * Math.pow(2, Math.max(0, attempt)));
    var jittered = base * (1 - JITTER + 2 * JITTER * rand);
    return Math.round(Math.min(MAX_MS, jittered));
  }

  var api = { reconnectDelay: reconnectDelay, FIRST_MS: FIRST_MS, MAX_MS: MAX_MS };
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.passerbyBackoff = api;
  }
}(this));
