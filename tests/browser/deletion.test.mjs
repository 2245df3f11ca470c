// A moderator deletes messages: another user's page loses the lines, one it saw live and one
// it loaded by scrolling back alike.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BINARY, eventually, launchBrowser, openVisitor, startServer } from './harness.mjs';
import { signIn } from './steps.mjs';

let dataDir;
let server;
let browser;
let token;
process.on('exit', () => server?.kill());

async function send(page, text) {
  await page.fill('#mes', text);
  await page.press('#mes', 'Enter');
  await page.locator('#log .msg.mine .bubble', { hasText: text }).waitFor();
}

/** The id of the line showing `text` on `page`. */
async function idOf(page, text) {
  const line = page.locator('#log > li.msg', { has: page.locator('.bubble', { hasText: text }) });
  return Number(await line.getAttribute('data-id'));
}

function shown(page, text) {
  return page.locator('#log .msg .bubble', { hasText: text }).count();
}

async function deleteMessage(id) {
  const response = await fetch(`${server.url}/admin/api/rooms/lobby/messages/${id}`, {
    method: 'DELETE',
    headers: { Authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200, await response.text());
}

describe('a moderator deletes messages', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-delete-'));
    token = execFileSync(BINARY, ['--data-dir', dataDir, 'moderator', 'add', 'mod'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    server = await startServer({
      dataDir,
      args: ['--history-on-join', '3', '--history-page', '50', '--rate-limit', '100', '--rate-burst', '100'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('removes the lines from another user\'s page, live and scrolled back to', async () => {
    const { page: writer } = await openVisitor(browser);
    await signIn(writer, server.url, '写手');
    await send(writer, 'old doomed');
    for (let i = 0; i < 6; i += 1) { await send(writer, `line ${i}`); }

    const { page: reader, seen } = await openVisitor(browser);
    await signIn(reader, server.url, '读者');
    await reader.locator('#log .msg .bubble', { hasText: 'line 5' }).waitFor();
    // Its first history held the newest lines only: the old one comes by scrolling back.
    await eventually('the old line, scrolled back to', async () => {
      await reader.locator('#log').evaluate((el) => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); });
      return shown(reader, 'old doomed');
    }, (n) => n === 1);
    await send(writer, 'new doomed');
    await reader.locator('#log .msg .bubble', { hasText: 'new doomed' }).waitFor();

    await deleteMessage(await idOf(writer, 'old doomed'));
    await deleteMessage(await idOf(writer, 'new doomed'));
    for (const page of [reader, writer]) {
      await eventually('the deleted lines gone', async () => (await shown(page, 'old doomed')) + (await shown(page, 'new doomed')), (n) => n === 0);
    }
    assert.equal(await shown(reader, 'line 0'), 1, 'the rest stays');

    // A newcomer never sees them.
    const { page: late } = await openVisitor(browser);
    await signIn(late, server.url, '迟到');
    await late.locator('#log .msg .bubble', { hasText: 'line 5' }).waitFor();
    assert.equal(await shown(late, 'new doomed'), 0);
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.consoleErrors, []);
  });
});
