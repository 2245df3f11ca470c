// Writing on the page: no text is ever lost (acknowledged sends, refusals that give the
// text back, a counter instead of a silent cut), Shift+Enter, links, @mentions, unread
// counts, desktop notifications, and images pasted or dropped.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { WAIT, eventually, launchBrowser, logLines, openVisitor, startServer } from './harness.mjs';
import { makePng, messageWith, say, screenshot, signIn, waitOnline } from './steps.mjs';

const MAX_CHARS = 50;

let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

// Records the notifications the page makes, as a granted permission would show them, and
// says the page is not in front (a notification is for a reader looking elsewhere).
function recordNotifications() {
  window.shown = [];
  window.Notification = class {
    constructor(title, options) { window.shown.push({ title, body: options.body }); }
    close() {}
    static get permission() { return 'granted'; }
    static requestPermission() { return Promise.resolve('granted'); }
  };
  document.hasFocus = () => false;
}

describe('writing on the page', () => {
  let alice;
  let bob;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-compose-'));
    server = await startServer({ dataDir, args: ['--max-message-chars', String(MAX_CHARS)] });
    browser = await launchBrowser();
    alice = await openVisitor(browser, { locale: 'en-US' });
    await alice.context.addInitScript(recordNotifications);
    bob = await openVisitor(browser, { locale: 'en-US' });
    alice.user = await signIn(alice.page, server.url, 'Alice');
    bob.user = await signIn(bob.page, server.url, 'Bob');
    await waitOnline(alice.page, 2);
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('sends 14 quick messages and every one arrives once, the over-the-limit ones after a wait', async () => {
    const texts = Array.from({ length: 14 }, (_, i) => `quick ${i + 1} of 14`);
    // Typed and sent within one task: faster than any hand, past the rate limit's burst.
    await alice.page.evaluate((all) => {
      const box = document.querySelector('#mes');
      for (const text of all) {
        box.value = text;
        box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      }
    }, texts);
    const seen = await eventually('all 14 at Bob', async () => (await logLines(bob.page)).map((l) => l.text),
      (lines) => texts.every((t) => lines.includes(t)), 4 * WAIT);
    for (const text of texts) {
      assert.equal(seen.filter((t) => t === text).length, 1, `"${text}" once`);
    }
    assert.deepEqual(seen.filter((t) => t.startsWith('quick ')), texts, 'in the order typed');
    assert.equal(await alice.page.inputValue('#mes'), '');
  });

  it('counts near the limit and refuses past it, keeping the whole text', async () => {
    const { page } = alice;
    await page.fill('#mes', 'x'.repeat(30));
    assert.ok(await page.locator('#counter').isHidden(), 'no counter far from the limit');
    await page.fill('#mes', 'y'.repeat(46));
    await page.locator('#counter').waitFor();
    assert.equal(await page.textContent('#counter'), `46 / ${MAX_CHARS}`);
    const long = '长'.repeat(MAX_CHARS + 7); // a paste, 7 characters over
    await page.fill('#mes', long);
    await page.press('#mes', 'Enter');
    assert.equal(await page.inputValue('#mes'), long, 'nothing cut, nothing sent');
    assert.match(await page.getAttribute('#counter', 'class'), /\bover\b/);
    assert.match(await page.textContent('#counter'), /Too long by 7 characters/);
    assert.equal(await messageWith(bob.page, '长长长').count(), 0);
    await page.fill('#mes', '');
  });

  it('gives the text of a whisper back when its recipient has left', async () => {
    const carol = await openVisitor(browser, { locale: 'en-US' });
    await signIn(carol.page, server.url, 'Carol');
    const { page } = alice;
    await waitOnline(page, 3);
    await page.locator('#online li', { hasText: 'Carol' }).locator('button.pick').click();
    await page.locator('#whisper').waitFor();
    await carol.context.close();
    await waitOnline(page, 2);
    const secret = 'are you still there, Carol?';
    await page.fill('#mes', secret);
    await page.press('#mes', 'Enter');
    await eventually('the text back in the box', () => page.inputValue('#mes'), (v) => v === secret);
    assert.match(await page.textContent('#whisper-to'), /Carol/, 'still whispering to Carol');
    await page.locator('#log .system.error').last().waitFor();
    await page.click('#whisper-cancel');
    await page.fill('#mes', '');
  });

  it('sends Shift+Enter as a new line, and Enter as the message', async () => {
    const { page } = alice;
    await page.fill('#mes', 'line one');
    await page.press('#mes', 'Shift+Enter');
    await page.type('#mes', 'line two');
    assert.equal(await page.inputValue('#mes'), 'line one\nline two', 'Shift+Enter did not send');
    await page.press('#mes', 'Enter');
    const got = messageWith(bob.page, 'line two');
    await got.waitFor();
    assert.equal(await got.locator('.bubble').evaluate((el) => el.innerText), 'line one\nline two');
  });

  it('makes http and https addresses links, and nothing else', async () => {
    const links = async (text) => messageWith(alice.page, text).locator('.bubble a').evaluateAll((as) => as.map((a) => ({
      href: a.getAttribute('href'), rel: a.getAttribute('rel'), target: a.getAttribute('target'), text: a.textContent,
    })));
    const first = 'go https://a.example/x?b=1. javascript:alert(1)';
    await say(bob.page, first);
    await messageWith(alice.page, first).waitFor();
    assert.deepEqual(await links(first), [
      { href: 'https://a.example/x?b=1', rel: 'noopener noreferrer nofollow', target: '_blank', text: 'https://a.example/x?b=1' },
    ], 'the full stop is the sentence\'s; javascript: stays text');
    assert.equal(await messageWith(alice.page, first).locator('.bubble').textContent(), first);
    await say(bob.page, 'or http://b.example');
    await messageWith(alice.page, 'or http://b.example').waitFor();
    assert.deepEqual(await links('or http://b.example'), [
      { href: 'http://b.example/', rel: 'noopener noreferrer nofollow', target: '_blank', text: 'http://b.example' },
    ]);
  });

  it('marks @mentions, and notifies of mentions and whispers once asked to', async () => {
    await alice.page.check('#notify');
    await say(bob.page, 'hey @Alice, look');
    const line = messageWith(alice.page, 'look');
    await line.waitFor();
    assert.equal(await line.locator('.mention-me').textContent(), '@Alice');
    assert.match(await line.getAttribute('class'), /\bfor-me\b/);
    await say(bob.page, 'talking to @Dana, not to you');
    await messageWith(alice.page, 'not to you').waitFor();
    assert.equal(await messageWith(alice.page, 'not to you').locator('.mention-me').count(), 0);
    // Bob whispers.
    await bob.page.locator('#online li', { hasText: 'Alice' }).locator('button.pick').click();
    await say(bob.page, 'just between us');
    await bob.page.click('#whisper-cancel');
    await messageWith(alice.page, 'just between us').waitFor();
    const shown = await alice.page.evaluate(() => window.shown);
    assert.deepEqual(shown, [
      { title: 'Bob', body: 'hey @Alice, look' },
      { title: 'Bob', body: 'just between us' },
    ]);
    await screenshot(alice.page, 'english.png');
  });

  it('counts unread messages in the tab title and on the new-messages button', async () => {
    const { page } = alice;
    const title = await page.title();
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await say(bob.page, 'unread one');
    await say(bob.page, 'unread two');
    await eventually('the title to count 2', () => page.title(), (t) => t === `(2) ${title}`);
    await page.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await eventually('the count to clear', () => page.title(), (t) => t === title);
    // Scrolled up, the button says how many came since.
    await page.locator('#log').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
    await say(bob.page, 'while you read back');
    await page.locator('#jump').waitFor();
    assert.equal(await page.textContent('#unread'), '1');
    await page.click('#jump');
    await eventually('the title clear again', () => page.title(), (t) => t === title);
  });

  it('sends an image pasted into the box or dropped on the conversation', async () => {
    const { page } = alice;
    const png = [...makePng(6, 4, [200, 40, 40])];
    const before = await bob.page.locator('#log .thumb').count();
    await page.evaluate((bytes) => {
      const file = new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' });
      const data = new DataTransfer();
      data.items.add(file);
      document.querySelector('#mes').dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
    }, png);
    await eventually('the pasted image at Bob', () => bob.page.locator('#log .thumb').count(), (n) => n === before + 1);
    await page.evaluate((bytes) => {
      const file = new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' });
      const data = new DataTransfer();
      data.items.add(file);
      const target = document.querySelector('.conversation');
      target.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
      target.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, png);
    await eventually('the dropped image at Bob', () => bob.page.locator('#log .thumb').count(), (n) => n === before + 2);
    assert.equal(await page.inputValue('#mes'), '', 'no file name typed into the box');
  });

  it('raised no page errors', async () => {
    for (const { seen } of [alice, bob]) {
      assert.deepEqual(seen.errors, []);
    }
  });
});
