// A page people come back to: Back after signing in and switching rooms shows the signed-in
// view (the page is never kept in the disk cache, and one restored from the back/forward
// cache is loaded again), a sign-in form shown again keeps the identity the browser holds,
// and the signed-in page does not load the sign-in card's avatars.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, openVisitor, startServer } from './harness.mjs';

let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

async function signIn(page, name) {
  await page.fill('#name', name);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/wsin')),
    page.click('#signin'),
  ]);
  await page.locator('#status[data-state="online"]').waitFor();
  return response.json();
}

async function assertSignedIn(page, name) {
  await page.locator('#signed-in').waitFor();
  assert.equal(await page.locator('#signed-out').isHidden(), true, 'the sign-in form is hidden');
  assert.equal(await page.textContent('#me'), name);
  await page.locator('#status[data-state="online"]').waitFor();
}

describe('coming back to the page', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-caching-'));
    server = await startServer({ dataDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('shows the signed-in view after Back, not the sign-in form', async () => {
    const { page, seen } = await openVisitor(browser);
    await page.goto(`${server.url}/ws`);
    await signIn(page, '小红');
    await page.fill('#room-name', 'kitchen');
    await Promise.all([page.waitForURL(/room=kitchen/), page.click('#room-go')]);
    await assertSignedIn(page, '小红');
    // Back to the page first seen signed out: it must come back signed in.
    await page.goBack();
    assert.match(page.url(), /\/ws$/);
    await assertSignedIn(page, '小红');
    assert.equal(await page.textContent('#room'), 'lobby');
    await page.goForward();
    await assertSignedIn(page, '小红');
    assert.deepEqual(seen.errors, []);
  });

  it('keeps the identity when a form shown earlier is used to sign in again', async () => {
    const { context, page: first } = await openVisitor(browser);
    await first.goto(`${server.url}/ws`);
    const second = await context.newPage();
    await second.goto(`${server.url}/ws`);
    const signedIn = await signIn(second, '阿明');
    assert.equal(signedIn.kept, undefined);
    // The first tab still shows the form it loaded before; signing in there keeps 阿明.
    const again = await signIn(first, '别人');
    assert.equal(again.kept, true);
    assert.deepEqual(again.user, signedIn.user);
    await assertSignedIn(first, '阿明');
  });

  it('loads the sign-in card\'s avatars only when the card is shown', async () => {
    const { page } = await openVisitor(browser);
    await page.goto(`${server.url}/ws`);
    await page.locator('.avatar-parade img[src]').nth(9).waitFor({ state: 'attached' });
    assert.equal(await page.locator('.avatar-parade img[data-src]').count(), 0);
    await signIn(page, '小刚');
    await page.reload();
    await assertSignedIn(page, '小刚');
    await page.waitForLoadState('networkidle');
    assert.equal(await page.locator('.avatar-parade img[src]').count(), 0,
      'the signed-in page leaves the hidden avatars unloaded');
    // Signing out shows the card, and its avatars then.
    await page.click('#signout');
    await page.locator('.avatar-parade img[src]').nth(9).waitFor({ state: 'attached' });
  });
});
