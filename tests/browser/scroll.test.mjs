// Scrolling back: a newcomer gets the newest lines with `more`; scrolling to the top asks for
// the page before the oldest line shown, prepends it where the reader was, and ends at the
// beginning of the conversation, with no line missing or twice.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { eventually, launchBrowser, openVisitor, startServer } from './harness.mjs';
import { signIn } from './steps.mjs';

const SENT = 40;
let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

/** The texts of the chat bubbles shown, top to bottom. */
function bubbles(page) {
  return page.locator('#log .msg .bubble').allTextContents();
}

describe('scrolling back through a long conversation', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-scroll-'));
    server = await startServer({
      dataDir,
      args: ['--history-on-join', '5', '--history-page', '6', '--rate-limit', '100', '--rate-burst', '100'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('pages back to the beginning as the reader scrolls up, keeping the view still', async () => {
    const { page: writer } = await openVisitor(browser);
    await signIn(writer, server.url, '写手');
    const sent = [];
    for (let i = 0; i < SENT; i += 1) {
      const text = `line ${String(i).padStart(2, '0')}`;
      sent.push(text);
      await writer.fill('#mes', text);
      await writer.press('#mes', 'Enter');
      await writer.locator('#log .msg.mine .bubble', { hasText: text }).waitFor();
    }

    const { page, seen } = await openVisitor(browser);
    const pages = [];
    page.on('websocket', (socket) => socket.on('framesent', (frame) => {
      if (String(frame.payload).includes('"history"')) { pages.push(JSON.parse(frame.payload).before); }
    }));
    await signIn(page, server.url, '读者');
    // Chromium anchors the scroll by itself; Safari did not until 2024. Off, so that the page's
    // own keeping of the position is what the test sees.
    await page.locator('#log').evaluate((el) => { el.style.overflowAnchor = 'none'; });
    await page.locator('#log .msg .bubble', { hasText: sent[SENT - 1] }).waitFor();
    const first = await bubbles(page);
    assert.ok(first.length < SENT, `only the newest lines at first: ${first.length}`);

    // Scroll to the top until the beginning shows; each page keeps the old top line in view.
    for (let round = 0; round < SENT; round += 1) {
      if (await page.locator('#log-top.beginning').count()) { break; }
      const oldest = await page.locator('#log > li[data-id]').first().getAttribute('data-id');
      const asked = pages.length;
      await page.locator('#log').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
      await eventually('a page of older lines', () => page.locator('#log > li[data-id]').first().getAttribute('data-id'),
        (id) => id !== oldest || pages.length > asked);
      await eventually('the page shown', () => page.locator('#log-top.loading').count(), (n) => n === 0);
      const offset = await page.locator(`#log > li[data-id="${oldest}"]`).evaluate((li) => {
        const log = li.parentElement.getBoundingClientRect();
        return li.getBoundingClientRect().top - log.top;
      });
      const beginning = await page.locator('#log-top.beginning').count();
      if (!beginning) {
        assert.ok(offset > 0 && offset < 400, `the line that was on top stays in view (${offset}px)`);
      }
    }
    const marker = page.locator('#log-top.beginning');
    await marker.waitFor();
    assert.equal(await marker.textContent(), '对话从这里开始');
    assert.deepEqual(await bubbles(page), sent, 'every line once, in order');
    assert.ok(pages.length >= 2, `it paged: ${JSON.stringify(pages)}`);
    const ids = await page.locator('#log > li[data-id]').evaluateAll((items) => items.map((li) => Number(li.dataset.id)));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'oldest first');

    // Still live: a new line lands at the bottom.
    await writer.fill('#mes', 'after all that');
    await writer.press('#mes', 'Enter');
    await page.locator('#log .msg .bubble', { hasText: 'after all that' }).waitFor();
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.consoleErrors, []);
  });
});
