// What the server refuses, said in the page's language: the server sends a stable code and
// its params with each `error` (and each refused request), and the page words it itself.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { eventually, launchBrowser, onlineNames, openVisitor, startServer } from './harness.mjs';
import { signIn } from './steps.mjs';

let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

/** The text of the log's error lines. */
function errorLines(page) {
  return page.locator('#log > li.system.error span').allTextContents();
}

describe('server errors in the page\'s language', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-errors-'));
    // Two messages in a burst, then one every two seconds: the third of three is refused.
    server = await startServer({ dataDir, args: ['--rate-burst', '2', '--rate-limit', '0.5'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('shows the rate limit in Chinese on the Chinese page', async () => {
    const { page, seen } = await openVisitor(browser);
    await signIn(page, server.url, '小明');
    await page.evaluate(() => {
      const form = document.getElementById('compose');
      for (const text of ['一', '二', '三']) {
        document.getElementById('mes').value = text;
        form.requestSubmit();
      }
    });
    const lines = await eventually('the refusal', () => errorLines(page), (l) => l.length > 0);
    assert.match(lines[0], /发送太快了/);
    assert.match(lines[0], /2000 毫秒/);
    assert.doesNotMatch(lines.join('\n'), /too many messages/);
    assert.deepEqual(seen.errors, []);
  });

  it('names, in English, the user a whisper could not reach', async () => {
    const { page: ada } = await openVisitor(browser, { locale: 'en-US' });
    const { page: bea, context: beaContext } = await openVisitor(browser, { locale: 'en-US' });
    await signIn(ada, server.url, 'ada');
    await signIn(bea, server.url, 'Beatrice');
    await eventually('Beatrice online', () => onlineNames(ada), (n) => n.includes('Beatrice'));
    await ada.locator('#online li', { hasText: 'Beatrice' }).click();
    await ada.locator('#whisper').waitFor();
    await beaContext.close();
    await eventually('Beatrice gone', () => onlineNames(ada), (n) => !n.includes('Beatrice'));
    await ada.fill('#mes', 'still there?');
    await ada.press('#mes', 'Enter');
    const lines = await eventually('the refusal', () => errorLines(ada), (l) => l.length > 0);
    assert.equal(lines.at(-1), 'Beatrice is not online: the whisper was not sent');
  });

  it('shows a refused sign-in in Chinese', async () => {
    const { page } = await openVisitor(browser);
    await page.goto(`${server.url}/ws`);
    await page.fill('#name', 'a\u200bb');
    await page.click('#signin');
    await page.locator('#notice:not([hidden])').waitFor();
    assert.equal(await page.textContent('#notice'), '名字不能包含不可见的格式字符（U+200B）');
  });
});
