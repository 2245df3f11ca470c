// The reconnect schedule, static/js/backoff.js, as the page loads it.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const { reconnectDelay, FIRST_MS, MAX_MS } = createRequire(import.meta.url)('../../static/js/backoff.js');

const MIDDLE = 0.5; // a random draw that lands on the base delay

test('starts at 1 s and doubles up to 30 s', () => {
  assert.equal(FIRST_MS, 1000);
  assert.equal(MAX_MS, 30000);
  const delays = [0, 1, 2, 3, 4, 5, 6, 20, 1000].map((attempt) => reconnectDelay(attempt, MIDDLE));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
});

test('jitters each delay by up to a fifth either way, never past 30 s', () => {
  assert.equal(reconnectDelay(0, 0), 800);
  assert.equal(reconnectDelay(0, 0.999999), 1200);
  assert.equal(reconnectDelay(3, 0), 6400);
  assert.equal(reconnectDelay(10, 0), 24000);
  assert.equal(reconnectDelay(10, 0.999999), 30000);
  for (let i = 0; i < 200; i += 1) {
    const delay = reconnectDelay(2, Math.random());
    assert.ok(delay >= 3200 && delay <= 4800, String(delay));
  }
});

test('a negative attempt counts as the first', () => {
  assert.equal(reconnectDelay(-3, MIDDLE), 1000);
});
