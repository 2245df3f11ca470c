// How the page reads and holds up: the phone header while reconnecting (English and
// Chinese) with its "Retry now", people of one name told apart, joins and lefts folded,
// no doubled "joined" after the server is killed, grouping, day separators, and the list
// of rooms with people in them (GET /rooms).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { WAIT, eventually, launchBrowser, openVisitor, startServer } from './harness.mjs';
import { messageWith, say, signIn, waitOnline } from './steps.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
const ARGS = ['--rooms-list', '2'];

let dataDir;
let server;
let browser;
process.on('exit', () => server?.kill());

/** The presence lines a reader sees (folded ones are not), as their visible text. */
function visiblePresence(page) {
  return page.locator('#log > li.system.join, #log > li.system.left')
    .evaluateAll((items) => items.filter((li) => li.checkVisibility())
      .map((li) => (li.querySelector('.fold-summary') || li.querySelector('span')).textContent));
}

/** What sticks out of a 390 px screen, if anything. */
function overflow(page) {
  return page.evaluate(() => {
    const inside = (sel) => {
      const r = document.querySelector(sel).getBoundingClientRect();
      return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth;
    };
    const status = document.querySelector('#status');
    return {
      pageWidth: document.documentElement.scrollWidth,
      signout: inside('#signout'),
      retry: inside('#retry-now'),
      status: inside('#status'),
      statusCut: status.scrollWidth > status.clientWidth + 1,
    };
  });
}

describe('how the page reads and holds up', () => {
  let en;
  let zh;

  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-layout-'));
    server = await startServer({ dataDir, args: ARGS });
    browser = await launchBrowser();
    en = await openVisitor(browser, { ...PHONE, locale: 'en-US' });
    zh = await openVisitor(browser, { ...PHONE, locale: 'zh-CN' });
    en.user = await signIn(en.page, server.url, 'Alice');
    zh.user = await signIn(zh.page, server.url, '小明');
    await waitOnline(en.page, 2);
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('keeps the phone header inside 390 px while reconnecting, with a Retry now that retries', async () => {
    const host = server.host;
    await server.stop();
    for (const { page } of [en, zh]) {
      await page.locator('#status[data-state="reconnecting"]').waitFor();
      await page.locator('#retry-now').waitFor();
      assert.deepEqual(await overflow(page),
        { pageWidth: 390, signout: true, retry: true, status: true, statusCut: false },
        `the header of the ${await page.getAttribute('html', 'lang')} page`);
    }
    assert.equal((await en.page.textContent('#retry-now')).trim(), 'Retry now');
    assert.equal((await zh.page.textContent('#retry-now')).trim(), '立即重连');
    const tries = en.seen.sockets.length;
    await en.page.click('#retry-now');
    await eventually('a socket opened at once', () => en.seen.sockets.length, (n) => n > tries);
    server = await startServer({ dataDir, bind: host, args: ARGS });
    for (const { page } of [en, zh]) {
      // The backoff may have grown past WAIT: the button does not wait for it.
      if (await page.locator('#retry-now').isVisible()) { await page.click('#retry-now'); }
      await page.locator('#status[data-state="online"]').waitFor();
      assert.ok(await page.locator('#retry-now').isHidden());
    }
  });

  it('shows no second "joined" after the server was killed and lost the "left"', async () => {
    await say(en.page, 'before the crash');
    const host = server.host;
    server.kill();
    await new Promise((resolve) => {
      if (server.child.exitCode !== null || server.child.signalCode !== null) { resolve(); }
      server.child.once('exit', resolve);
    });
    server = await startServer({ dataDir, bind: host, args: ARGS });
    for (const { page } of [en, zh]) {
      await page.locator('#status[data-state="online"]').waitFor({ timeout: 3 * WAIT });
    }
    // The server never stored 小明's "left": coming back is a second "join" in Alice's log.
    const joins = en.page.locator('#log > li.system.join[data-name="小明"]');
    await eventually('the second join of 小明', () => joins.count(), (n) => n >= 2, 3 * WAIT);
    const lines = await visiblePresence(en.page);
    assert.equal(lines.filter((l) => l.includes('小明')).length, 1, `小明 joined once: ${JSON.stringify(lines)}`);
  });

  it('folds joins and lefts in a row into one line', async () => {
    await say(en.page, 'who is coming?');
    const guests = [];
    for (const name of ['Dan', 'Eve', 'Fay']) {
      const v = await openVisitor(browser, { locale: 'en-US' });
      await signIn(v.page, server.url, name);
      guests.push(v);
    }
    const want = 'Dan, Eve, Fay joined';
    const after = async () => (await visiblePresence(en.page)).slice(-1);
    await eventually('one summary line', after, (lines) => lines[0] === want);
    const before = (await visiblePresence(en.page)).length;
    await guests[0].context.close();
    await eventually('the summary to take the left in', after, (lines) => lines[0] === 'Eve, Fay joined · Dan left');
    assert.equal((await visiblePresence(en.page)).length, before, 'still one line for the run');
    // A message ends the run.
    await say(guests[1].page, 'hello all');
    await say(guests[1].page, 'and again');
    await say(guests[2].page, 'me too');
    await messageWith(en.page, 'me too').waitFor();
    assert.match(await messageWith(en.page, 'and again').getAttribute('class'), /\bgrouped\b/, 'Eve twice: grouped');
    assert.doesNotMatch(await messageWith(en.page, 'hello all').getAttribute('class'), /\bgrouped\b/);
    assert.doesNotMatch(await messageWith(en.page, 'me too').getAttribute('class'), /\bgrouped\b/);
    // One day so far: one separator, at the top, naming the day.
    const days = await en.page.locator('#log > li.day-start').evaluateAll((items) => items.map((li) => li.dataset.day));
    assert.equal(days.length, 1);
    assert.match(days[0], new RegExp(String(new Date().getFullYear())));
    for (const g of guests.slice(1)) { await g.context.close(); }
  });

  it('tells apart two people of one name by their ids', async () => {
    const sams = [];
    for (let i = 0; i < 2; i += 1) {
      const v = await openVisitor(browser, { locale: 'en-US' });
      v.user = await signIn(v.page, server.url, 'Sam');
      sams.push(v);
    }
    await waitOnline(en.page, 4);
    const tags = () => en.page.locator('#online li').evaluateAll((items) => items.map((li) => [
      li.querySelector('.name').textContent, li.querySelector('.uid')?.textContent ?? null,
    ]));
    const seen = await eventually('the two Sams tagged', tags, (list) => list.filter(([, uid]) => uid).length === 2);
    assert.deepEqual(seen.filter(([, uid]) => uid).sort(),
      sams.map((s) => ['Sam', `#${s.user.id}`]).sort());
    assert.equal(seen.find(([name]) => name === 'Alice')[1], null, 'a name of one person has no tag');
    await say(sams[1].page, 'the second Sam here');
    assert.equal(await messageWith(en.page, 'the second Sam here').locator('.uid').textContent(), `#${sams[1].user.id}`);
    for (const s of sams) { await s.context.close(); }
  });

  it('lists the busiest rooms (GET /rooms, --rooms-list) as links', async () => {
    const side = [];
    for (const [name, room] of [['Gil', 'side'], ['Hal', 'side'], ['Ivy', 'quiet']]) {
      const v = await openVisitor(browser, { locale: 'en-US' });
      await signIn(v.page, server.url, name, `/ws?room=${room}`);
      side.push(v);
    }
    const response = await en.page.request.get(`${server.url}/rooms`);
    assert.equal(response.headers()['cache-control'], 'no-store');
    assert.deepEqual(await response.json(), [{ name: 'lobby', online: 2 }, { name: 'side', online: 2 }],
      'the two busiest (--rooms-list 2), then by name');
    await en.page.reload();
    await en.page.locator('#status[data-state="online"]').waitFor();
    // The hidden sign-in card's ten pictures have no src, so they are not fetched.
    assert.equal(await en.page.locator('.avatar-parade img[src]').count(), 0);
    assert.equal(await en.page.locator('.avatar-parade img[data-src]').count(), 10);
    const links = await en.page.locator('#rooms a').evaluateAll((as) => as.map((a) => [a.getAttribute('href'), a.textContent, a.getAttribute('aria-current')]));
    assert.deepEqual(links, [['/ws?room=lobby', 'lobby2', 'page'], ['/ws?room=side', 'side2', null]]);
    for (const v of side) { await v.context.close(); }
  });

  it('raised no page errors', async () => {
    for (const { seen } of [en, zh]) { assert.deepEqual(seen.errors, []); }
  });
});
