// Accessibility, checked by axe-core inside the page, in light and dark mode: the
// signed-out page, the signed-in page with every kind of line, and the open image viewer.
// Also what axe cannot see: the log scrolls from the keyboard, the viewer keeps focus
// while open and gives it back after Escape.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { eventually, launchBrowser, openVisitor, startServer } from './harness.mjs';
import { assertAccessible, makePng, messageWith, say, screenshot, signIn, waitOnline } from './steps.mjs';

let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

for (const colorScheme of ['light', 'dark']) {
  describe(`accessibility in ${colorScheme} mode`, () => {
    let alice;
    let bob;

    before(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-a11y-'));
      server = await startServer({ dataDir });
      browser = await launchBrowser();
      alice = await openVisitor(browser, { colorScheme });
      bob = await openVisitor(browser, { colorScheme, locale: 'en-US' });
    });

    after(async () => {
      await browser?.close();
      server?.kill();
      if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
    });

    it('the signed-out page has no violations and a visible h1', async () => {
      const { page } = alice;
      await page.goto(`${server.url}/ws`);
      await page.locator('#name').waitFor();
      assert.ok(await page.locator('h1').first().isVisible(), 'a visible h1');
      const dark = await page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches);
      assert.equal(dark, colorScheme === 'dark');
      const bg = await page.evaluate(() => getComputedStyle(document.querySelector('.card')).backgroundColor);
      const [r, g, b] = bg.match(/\d+/g).map(Number);
      assert.equal(r + g + b < 200, colorScheme === 'dark', `the card is ${bg}`);
      await assertAccessible(page, `the signed-out page (${colorScheme})`);
    });

    it('the signed-in page, with messages, whispers, links, mentions, images and errors, has none', async () => {
      await signIn(alice.page, server.url, '小王');
      await signIn(bob.page, server.url, 'Bob');
      await waitOnline(alice.page, 2);
      await say(bob.page, 'hello @小王, see https://example.com');
      await say(alice.page, '你好');
      await say(alice.page, '第二条');
      await bob.page.locator('#online li', { hasText: '小王' }).locator('button.pick').click();
      await say(bob.page, 'a whisper');
      await bob.page.click('#whisper-cancel');
      const file = path.join(dataDir, 'pic.png');
      await writeFile(file, makePng(40, 30, [30, 120, 200]));
      await bob.page.setInputFiles('#image-file', file);
      await alice.page.locator('#log .thumb').waitFor();
      // An error line: a command the server refuses.
      await alice.page.evaluate(() => window.passerbyChat.send({ type: 'nonsense' }));
      await alice.page.locator('#log .system.error').waitFor();
      await messageWith(alice.page, 'a whisper').waitFor();
      const { page } = alice;
      assert.ok(await page.locator('h1').first().isVisible(), 'a visible h1');
      assert.equal(await page.locator('[role="log"]').getAttribute('aria-live'), 'polite');
      assert.equal(await page.locator('#online [role="button"]').count(), 0, 'real buttons, no role=button');
      assert.ok(await page.locator('#online li button.pick').count() >= 1);
      assert.match(await page.locator('#log a.thumb-link').getAttribute('aria-label'), /Bob/);
      await assertAccessible(page, `the signed-in page (${colorScheme})`);
      if (colorScheme === 'dark') { await screenshot(page, 'dark.png'); }
    });

    it('the log scrolls from the keyboard', async () => {
      const { page } = alice;
      for (let i = 0; i < 25; i += 1) { await say(bob.page, `line ${i} to fill the log`, false); }
      await messageWith(page, 'line 24 to fill').waitFor();
      await page.locator('#log').focus();
      const top = () => page.locator('#log').evaluate((el) => el.scrollTop);
      const start = await top();
      assert.ok(start > 0, 'the log is scrolled to the bottom');
      await page.keyboard.press('PageUp');
      await eventually('the log to scroll up', top, (now) => now < start);
    });

    it('the open image viewer has none, keeps focus, and gives it back after Escape', async () => {
      const { page } = alice;
      const thumb = page.locator('#log a.thumb-link').first();
      await thumb.click();
      await page.locator('#viewer').waitFor();
      assert.ok(await page.locator('#viewer-close').evaluate((el) => el === document.activeElement));
      assert.ok(await page.locator('#viewer').getAttribute('aria-label'));
      await assertAccessible(page, `the open image viewer (${colorScheme})`);
      for (const key of ['Tab', 'Shift+Tab', 'Tab']) {
        await page.keyboard.press(key);
        assert.ok(await page.evaluate(() => document.querySelector('#viewer').contains(document.activeElement)),
          `focus stays in the viewer after ${key}`);
      }
      await page.keyboard.press('Escape');
      await page.locator('#viewer').waitFor({ state: 'hidden' });
      assert.ok(await thumb.evaluate((el) => el === document.activeElement), 'focus back on the thumbnail');
    });
  });
}
