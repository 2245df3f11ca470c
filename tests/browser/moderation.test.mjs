// The moderators' page and a moderator on the chat page: signing in on /admin with a token,
// deleting a message (another user's page loses the line), a read-only room that takes the
// moderator's message only, and what a muted, kicked or banned user is shown, in their
// language. Then the lists on /admin, lifting the ban, and signing out.

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
}

function shown(page, text) {
  return page.locator('#log .msg .bubble', { hasText: text }).count();
}

/** The moderator's online list entry for `name`, once its buttons are there. */
function userEntry(page, name) {
  return page.locator('#online li', { has: page.locator('.name', { hasText: name }) });
}

/** Opens the reason prompt for `action` on `name`, types `reason`, confirms. */
async function act(page, action, name, reason) {
  await userEntry(page, name).locator(`.mod-button[data-action="${action}"]`).click();
  await page.locator('#mod-panel').waitFor();
  await page.fill('#mod-reason', reason);
  await page.click('#mod-confirm');
  await page.locator('#mod-panel').waitFor({ state: 'hidden' });
}

describe('moderating from the pages', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-moderate-'));
    token = execFileSync(BINARY, ['--data-dir', dataDir, 'moderator', 'add', 'warden'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    server = await startServer({ dataDir, args: ['--rate-limit', '100', '--rate-burst', '100'] });
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('signs in on /admin, deletes, mutes, kicks and bans from the chat page, and each user is told why', async () => {
    const moderator = await openVisitor(browser, { locale: 'en-US' });
    const mod = moderator.page;
    await mod.goto(`${server.url}/admin`);
    assert.equal(await mod.locator('html').getAttribute('lang'), 'en');
    await mod.fill('#token', token);
    await mod.click('#token-signin');
    await mod.locator('#signed-in').waitFor();
    assert.equal(await mod.locator('#me').textContent(), 'warden');

    // A read-only room, set from the page's form.
    await mod.fill('#settings-room', 'news');
    await mod.check('#settings-read-only');
    await mod.click('#settings-save');
    await mod.locator('#act-notice', { hasText: 'news' }).waitFor();

    const spammer = await openVisitor(browser);
    await signIn(spammer.page, server.url, '刷屏者', '/ws?room=lobby');
    await send(spammer.page, 'buy cheap stuff');
    const reader = await openVisitor(browser, { locale: 'en-US' });
    await signIn(reader.page, server.url, 'Reader', '/ws?room=lobby');
    await reader.page.locator('#log .msg .bubble', { hasText: 'buy cheap stuff' }).waitFor();

    // The moderator on the chat page: its socket is a moderator's, and the buttons show.
    await signIn(mod, server.url, 'Warden', '/ws?room=lobby');
    await mod.locator('#app.moderating').waitFor();
    assert.ok(moderator.seen.sockets.some((url) => url.includes('/admin/ws')), JSON.stringify(moderator.seen.sockets));
    const line = mod.locator('#log > li.msg', { has: mod.locator('.bubble', { hasText: 'buy cheap stuff' }) });
    await line.locator('.mod-button[data-action="delete"]').click();
    for (const page of [reader.page, spammer.page, mod]) {
      await eventually('the deleted line gone', () => shown(page, 'buy cheap stuff'), (n) => n === 0);
    }
    assert.equal(await reader.page.locator('.mod-button').count(), 0, 'no buttons for a user');

    // Mute: the reader (English) is told, as a notice and not an error line.
    await act(mod, 'mute', 'Reader', 'calm down');
    await send(reader.page, 'still here?');
    const muted = reader.page.locator('#mod-notice[data-kind="muted"]');
    await muted.waitFor();
    const mutedText = await muted.textContent();
    assert.match(mutedText, /^You are muted until .+: you can read, but not send\. Reason: calm down$/);
    assert.equal(await reader.page.locator('#log li.system.error').count(), 0);
    assert.equal(await shown(mod, 'still here?'), 0);

    // Kick: the reader is removed, and told so in English.
    await act(mod, 'kick', 'Reader', 'take a break');
    const kicked = reader.page.locator('#mod-notice[data-kind="kicked"]');
    await kicked.waitFor();
    assert.equal(await kicked.textContent(), 'A moderator removed you from the chat. Reload this page to come back. Reason: take a break');
    await reader.page.locator('#status[data-state="error"]').waitFor();

    // Ban: the spammer (Chinese) is told why, and does not reconnect.
    await act(mod, 'ban', '刷屏者', '广告');
    const banned = spammer.page.locator('#mod-notice[data-kind="banned"]');
    await banned.waitFor();
    assert.equal(await banned.textContent(), '你已被封禁，直到管理员解除。 原因：广告');
    await spammer.page.locator('#status[data-state="error"]').waitFor();
    await eventually('the spammer gone from the list', () => userEntry(mod, '刷屏者').count(), (n) => n === 0);

    // A read-only room takes the moderator's message and refuses a user's.
    const listener = await openVisitor(browser, { locale: 'en-US' });
    await signIn(listener.page, server.url, 'Listener', '/ws?room=news');
    await send(listener.page, 'may I?');
    await listener.page.locator('#log li.system.error', { hasText: 'read-only' }).waitFor();
    await mod.goto(`${server.url}/ws?room=news`);
    await mod.locator('#status[data-state="online"]').waitFor();
    await send(mod, 'announcement');
    await listener.page.locator('#log .msg .bubble', { hasText: 'announcement' }).waitFor();

    // Back on /admin: the ban, the mute and the audit log are listed; who is online too.
    await mod.goto(`${server.url}/admin`);
    await mod.locator('#bans tr', { hasText: '广告' }).waitFor();
    await mod.locator('#mutes tr', { hasText: 'calm down' }).waitFor();
    for (const action of ['ban', 'mute', 'kick', 'delete', 'room']) {
      await mod.locator('#audit tr', { has: mod.locator('td', { hasText: new RegExp(`^${action}$`) }) }).first().waitFor();
    }
    await mod.locator('#rooms .room-entry[data-room="news"] .room-users li', { hasText: 'Listener' }).waitFor();
    await mod.locator('#bans button.lift').click();
    await mod.locator('#bans tr.nothing').waitFor();

    // The page's own forms: a user picked from the rooms list and kicked with Enter, and an
    // address range banned.
    await mod.locator('#rooms .room-users li', { hasText: 'Listener' }).locator('button.pick[data-action="kick"]').click();
    await mod.fill('#act-reason', 'from the page');
    await mod.press('#act-reason', 'Enter');
    await listener.page.locator('#mod-notice[data-kind="kicked"]', { hasText: 'Reason: from the page' }).waitFor();
    await mod.fill('#ban-address', '203.0.113.0/24');
    await mod.fill('#address-reason', 'a bad network');
    await mod.click('#ban-address-go');
    await mod.locator('#bans tr', { hasText: '203.0.113.0/24' }).waitFor();
    await spammer.page.reload();
    await spammer.page.locator('#status[data-state="online"]').waitFor();

    // The word filter, set on the page: a full-width word masks the plain one in a message.
    await mod.fill('#filter-words', 'ＳＰＡＭ');
    await mod.selectOption('#filter-mode', 'mask');
    await mod.click('#filter-save');
    await mod.locator('#audit tr', { has: mod.locator('td', { hasText: /^word_filter$/ }) }).first().waitFor();
    await send(spammer.page, 'buy spam now');
    await spammer.page.locator('#log .msg .bubble', { hasText: 'buy **** now' }).waitFor();
    // The page shows the filter in force when it loads.
    await mod.reload();
    await eventually('the filter shown again', () => mod.inputValue('#filter-words'), (v) => v === 'ＳＰＡＭ');

    await mod.click('#signout');
    await mod.locator('#signed-out').waitFor();
    const who = await mod.evaluate(() => fetch('/admin/session').then((r) => r.json()));
    assert.deepEqual(who, { moderator: null });

    for (const visitor of [moderator, spammer, reader, listener]) {
      assert.deepEqual(visitor.seen.errors, []);
      assert.deepEqual(visitor.seen.dialogs, []);
    }
  });
});
