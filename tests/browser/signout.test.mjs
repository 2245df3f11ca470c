// Signing out is the server's business too: the other tabs of the same browser lose their
// socket (close code 4001) and show the sign-in view, while another visitor chats on.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { WAIT, launchBrowser, openVisitor, startServer } from './harness.mjs';
import { signIn } from './steps.mjs';

let dataDir;
let server;
let browser;

describe('signing out in one tab', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-signout-'));
    server = await startServer({ dataDir });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('signs the other tabs of that browser out, and nobody else', async () => {
    const { context, page: first } = await openVisitor(browser);
    await signIn(first, server.url, '小明');
    const second = await context.newPage();
    await second.goto(`${server.url}/ws`);
    await second.locator('#status[data-state="online"]').waitFor();
    const { page: other } = await openVisitor(browser);
    await signIn(other, server.url, '小红');

    await first.click('#signout');
    await first.locator('#signed-out').waitFor();
    // The second tab's socket was closed by the server: the sign-in view, with the reason.
    await second.locator('#signed-out').waitFor({ timeout: WAIT });
    assert.equal(await second.textContent('#notice'), '你已退出，请重新登入。');
    // Reloaded, it stays signed out.
    await second.reload();
    assert.ok(await second.locator('#signed-out').isVisible());
    assert.equal(await second.getAttribute('#app', 'data-signed-in'), '');

    await other.fill('#mes', '我还在');
    await other.press('#mes', 'Enter');
    await other.locator('#log .msg.mine .bubble', { hasText: '我还在' }).waitFor();
    assert.equal(await other.getAttribute('#status', 'data-state'), 'online');
  });
});
