// A big room in the page: above --big-room users the online list shows the count and a
// first page, loads the rest when asked, and follows `presence` events; a small room's
// `join` and `left` still work as before, and everyone keeps chatting.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { launchBrowser, openVisitor, startServer } from './harness.mjs';

let dataDir;
let server;
let browser;

async function enter(name) {
  const visitor = await openVisitor(browser);
  const { page } = visitor;
  await page.goto(`${server.url}/ws?room=crowd`);
  await page.fill('#name', name);
  await page.click('#signin');
  await page.locator('#status[data-state="online"]').waitFor();
  return visitor;
}

async function shown(page) {
  return page.locator('#online li .name').allTextContents();
}

describe('a big room in the page', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-big-'));
    server = await startServer({
      dataDir,
      args: ['--big-room', '2', '--list-page', '2', '--presence-interval-ms', '100'],
    });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('shows the count and a first page, loads more, and follows presence', async () => {
    const a = await enter('甲');
    const b = await enter('乙');
    // Small: the seed's join, as a line in the log and in the list.
    await a.page.locator('#log .system.join', { hasText: '乙' }).waitFor();
    const c = await enter('丙');
    // Big from here: `presence` adds 丙 to a list that is whole, with no line in the log.
    await a.page.locator('#online li', { hasText: '丙' }).waitFor();
    assert.equal(await a.page.textContent('#count'), '3');
    assert.equal(await a.page.locator('#log .system.join', { hasText: '丙' }).count(), 0);

    const d = await enter('丁');
    assert.equal(await d.page.textContent('#count'), '4');
    assert.deepEqual(await shown(d.page), ['甲', '乙'], 'the first page');
    const more = d.page.locator('#more-users');
    assert.equal(await more.textContent(), '还有 2 人…');
    await more.click();
    await d.page.locator('#online li', { hasText: '丁' }).waitFor();
    assert.deepEqual(await shown(d.page), ['甲', '乙', '丙', '丁']);
    assert.equal(await more.isHidden(), true, 'everyone is loaded');

    await c.context.close();
    await a.page.locator('#online li', { hasText: '丙' }).waitFor({ state: 'detached' });
    await d.page.locator('#online li', { hasText: '丙' }).waitFor({ state: 'detached' });
    assert.equal(await a.page.textContent('#count'), '3');

    await a.page.fill('#mes', '大家好');
    await a.page.press('#mes', 'Enter');
    await d.page.locator('#log .msg .bubble', { hasText: '大家好' }).waitFor();
    await b.page.locator('#log .msg .bubble', { hasText: '大家好' }).waitFor();
    for (const visitor of [a, b, d]) {
      assert.deepEqual(visitor.seen.errors, []);
      assert.deepEqual(visitor.seen.consoleErrors, []);
    }
  });
});
