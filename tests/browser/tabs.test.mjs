// One tab too many: the page shows why (close code 4004) and stops reconnecting, while the
// user's first tab keeps chatting.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, openVisitor, startServer } from './harness.mjs';

let dataDir;
let server;
let browser;

describe('a user over --max-sockets-per-user', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-tabs-'));
    server = await startServer({ dataDir, args: ['--max-sockets-per-user', '1'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('sees why the extra tab cannot connect, and it does not retry', async () => {
    const { context, page: first } = await openVisitor(browser);
    await first.goto(`${server.url}/ws`);
    await first.fill('#name', '小明');
    await first.click('#signin');
    await first.locator('#status[data-state="online"]').waitFor();

    // A second tab of the same browser: same cookie, so it is signed in and connects at once.
    const second = await context.newPage();
    const sockets = [];
    second.on('websocket', (socket) => sockets.push(socket.url()));
    await second.goto(`${server.url}/ws`);
    const status = second.locator('#status[data-state="error"]');
    await status.waitFor();
    assert.equal(await status.textContent(), '你打开的聊天页面太多了：请关掉一个，再刷新本页。');
    const attempts = sockets.length;
    // A retry would come within 1.2 s (the first backoff step with its jitter).
    await second.waitForTimeout(1500);
    assert.equal(sockets.length, attempts, 'no reconnect after 4004');

    // The first tab still chats.
    await first.fill('#mes', '还在');
    await first.press('#mes', 'Enter');
    await first.locator('#log .msg.mine .bubble', { hasText: '还在' }).waitFor();
    assert.equal(await first.getAttribute('#status', 'data-state'), 'online');
  });
});
