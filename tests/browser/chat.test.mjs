// The chat page end to end: the real server binary and Debian's headless Chromium.
// The steps run in order and share one conversation, as people would have it.
// Screenshots go to a temporary folder; with UPDATE_SCREENSHOTS=1 they replace the README's
// in docs/screenshots/ (they show message times, so every run differs).

import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  ROOT, WAIT, eventually, launchBrowser, logLines, onlineNames, openVisitor, startServer,
} from './harness.mjs';
import { makePng } from './steps.mjs';

const SHOTS = process.env.UPDATE_SCREENSHOTS === '1'
  ? path.join(ROOT, 'docs', 'screenshots')
  : path.join(os.tmpdir(), `passerby-screenshots-${process.pid}`);
// Not the default, so the test proves the page takes its limit from the server.
const MAX_CHARS = 280;
const XSS_MESSAGE = '<img src=x onerror=alert(1)>';
const XSS_NAME = '<img src=x onerror=1>'; // names are at most 24 characters

let dataDir;
let server;
let browser;
const visitors = [];
// Should the test process die mid-way, the server must not outlive it.
process.on('exit', () => server?.kill());

// Alice on a laptop, Bob on a phone, Eve tries her luck.
let alice;
let bob;
let eve;

async function visitor(options) {
  const v = await openVisitor(browser, options);
  visitors.push(v);
  return v;
}

/** Signs in through the page and returns the user the server created. */
async function signIn({ page }, name) {
  if (name !== undefined) { await page.fill('#name', name); }
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/wsin')),
    page.click('#signin'),
  ]);
  const reply = await response.json();
  assert.equal(reply.code, 0, `sign-in refused: ${JSON.stringify(reply)}`);
  await page.locator('#signed-in').waitFor();
  await page.locator('#status[data-state="online"]').waitFor();
  return reply.user;
}

async function say({ page }, text, how = 'enter') {
  await page.fill('#mes', text);
  if (how === 'enter') { await page.press('#mes', 'Enter'); } else { await page.click('#go'); }
  await page.locator('#log .msg.mine .bubble').filter({ hasText: text }).last().waitFor();
  assert.equal(await page.inputValue('#mes'), '', 'the input is cleared after sending');
}

/** The last message in `page`'s log whose bubble contains `text`. */
function messageWith(page, text) {
  return page.locator('#log .msg').filter({ has: page.locator('.bubble', { hasText: text }) }).last();
}

async function waitOnline(page, names) {
  const want = [...names].sort();
  await eventually(`online list ${want}`, () => onlineNames(page),
    (seen) => JSON.stringify([...seen].sort()) === JSON.stringify(want));
  await eventually(`online count ${want.length}`, () => page.textContent('#count'),
    (count) => count === String(want.length));
}

/** Hours and minutes of `iso` in `timeZone`, as the page should show them. */
function clock(iso, timeZone) {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(iso));
  const get = (type) => Number(parts.find((p) => p.type === type).value);
  return [get('hour'), get('minute')];
}

describe('the chat page in headless Chromium', () => {
  before(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-browser-'));
    await mkdir(SHOTS, { recursive: true });
    server = await startServer({ dataDir, args: ['--max-message-chars', String(MAX_CHARS)] });
    browser = await launchBrowser();
    alice = await visitor();
    bob = await visitor({
      viewport: { width: 390, height: 780 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
      timezoneId: 'Europe/London',
    });
  });

  after(async () => {
    await browser?.close();
    server?.kill();
    if (dataDir) { await rm(dataDir, { recursive: true, force: true }); }
  });

  it('offers a guest name on a Chinese sign-in page with the seed controls', async () => {
    const { page } = alice;
    const response = await page.goto(`${server.url}/ws`);
    assert.equal(response.status(), 200);
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.equal(await page.inputValue('#name'), '路人甲', 'the first guest name is offered');
    assert.equal((await page.textContent('#signin')).trim(), '登入');
    assert.equal((await page.textContent('#go')).trim(), '发送消息');
    assert.equal((await page.textContent('#signout')).trim(), '退出');
    assert.ok(await page.locator('#signed-out').isVisible());
    assert.ok(!(await page.locator('#signed-in').isVisible()));
    const headers = response.headers();
    assert.match(headers['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.ok(headers['referrer-policy'], 'a Referrer-Policy is sent');
    // Every avatar of the parade loaded (an image that failed has no natural width).
    await eventually('the avatars to load', () => page.locator('.avatar-parade img')
      .evaluateAll((imgs) => imgs.map((img) => img.complete && img.naturalWidth > 0)),
    (loaded) => loaded.length === 10 && loaded.every(Boolean));
    await page.screenshot({ path: path.join(SHOTS, 'signed-out.png') });
  });

  it('two visitors sign in with different names and see each other online', async () => {
    alice.user = await signIn(alice); // keeps the offered 路人甲
    assert.equal(alice.user.name, '路人甲');
    await bob.page.goto(`${server.url}/ws`);
    assert.equal(await bob.page.inputValue('#name'), '路人乙', 'the next guest name is offered');
    bob.user = await signIn(bob, '小红');
    assert.notEqual(alice.user.id, bob.user.id);
    for (const { page } of [alice, bob]) {
      await waitOnline(page, ['路人甲', '小红']);
    }
    assert.equal(await alice.page.textContent('#me'), '路人甲');
    assert.equal(await alice.page.textContent('#online li.me .name'), '路人甲');
    await alice.page.locator('#log .system.join', { hasText: '小红 加入了聊天室' }).waitFor();
    // No maxlength to cut a paste silently: the page counts and refuses (compose.test.mjs).
    assert.equal(await alice.page.getAttribute('#mes', 'maxlength'), null);
  });

  it('they exchange messages both ways, each with avatar, name and local time', async () => {
    const lines = [
      [alice, '大家好！有人在吗？', 'enter'],
      [bob, '在的，刚下班路过。', 'click'],
      [alice, '这个聊天室不用注册，起个名字就能聊。', 'enter'],
      [bob, '手机上用着也挺顺手的，字也清楚。', 'enter'],
      [alice, '那就常来坐坐吧 :)', 'click'],
    ];
    for (const [from, text, how] of lines) {
      await say(from, text, how);
      const to = from === alice ? bob : alice;
      const seen = messageWith(to.page, text);
      await seen.waitFor();
      assert.match(await seen.getAttribute('class'), /\btheirs\b/, 'another person\'s message');
      assert.equal(await seen.locator('.name').textContent(), from.user.name);
      assert.equal(await seen.locator('.bubble').textContent(), text);
      assert.equal(await seen.locator('img.avatar').getAttribute('src'),
        `/static/img/avatars/${from.user.image}.svg`);
      assert.ok(await seen.locator('img.avatar').evaluate((img) => img.complete && img.naturalWidth > 0),
        'the avatar image loaded');
      assert.match(await messageWith(from.page, text).getAttribute('class'), /\bmine\b/);
    }
    // The same message, in each reader's own time zone.
    const text = lines[0][1];
    for (const [{ page }, zone] of [[alice, 'Asia/Shanghai'], [bob, 'Europe/London']]) {
      const time = messageWith(page, text).locator('time');
      const iso = await time.getAttribute('datetime');
      assert.ok(Math.abs(Date.parse(iso) - Date.now()) < 60_000, `a current time: ${iso}`);
      const shown = (await time.textContent()).match(/(\d{1,2}):(\d{2})/);
      assert.ok(shown, `a clock time is shown: ${await time.textContent()}`);
      assert.deepEqual([Number(shown[1]), Number(shown[2])], clock(iso, zone), `local time in ${zone}`);
    }
    await alice.page.screenshot({ path: path.join(SHOTS, 'conversation.png') });
    await bob.page.screenshot({ path: path.join(SHOTS, 'phone.png') });
  });

  it('works at phone width: nothing overflows sideways and the controls are on screen', async () => {
    const { page } = bob;
    const layout = await page.evaluate(() => {
      const box = (id) => document.getElementById(id).getBoundingClientRect();
      return {
        scrollWidth: document.documentElement.scrollWidth,
        width: window.innerWidth,
        height: window.innerHeight,
        mes: box('mes'),
        go: box('go'),
        signout: box('signout'),
      };
    });
    assert.ok(layout.scrollWidth <= layout.width, `no sideways scroll: ${JSON.stringify(layout)}`);
    for (const control of ['mes', 'go', 'signout']) {
      const r = layout[control];
      assert.ok(r.left >= 0 && r.right <= layout.width && r.top >= 0 && r.bottom <= layout.height,
        `#${control} on screen: ${JSON.stringify(r)}`);
    }
  });

  it('shows an XSS payload in a message and in a name as text, and runs nothing', async () => {
    await say(bob, XSS_MESSAGE);
    const seen = messageWith(alice.page, XSS_MESSAGE);
    await seen.waitFor();
    assert.equal(await seen.locator('.bubble').textContent(), XSS_MESSAGE);

    eve = await visitor();
    await eve.page.goto(`${server.url}/ws`);
    eve.user = await signIn(eve, XSS_NAME);
    await waitOnline(alice.page, ['路人甲', '小红', XSS_NAME]);
    await alice.page.locator('#log .system.join', { hasText: XSS_NAME }).waitFor();
    assert.equal(await eve.page.textContent('#me'), XSS_NAME);

    for (const { page, seen: record } of [alice, bob, eve]) {
      assert.equal(await page.locator('#log img[src="x"], #online img[src="x"], #me img').count(), 0,
        'no element was made from user text');
      assert.deepEqual(record.dialogs, [], 'no script ran');
    }
  });

  it('sends text that looks like a protocol command as chat', async () => {
    const text = '{"type":"left","data":"not really"}';
    await say(eve, text);
    assert.equal(await messageWith(alice.page, text).locator('.bubble').textContent(), text);
  });

  it('whispers to a name clicked in the online list; only the two of them see it', async () => {
    const { page } = alice;
    await page.locator('#online li', { hasText: '小红' }).click();
    await page.locator('#whisper').waitFor();
    assert.match(await page.textContent('#whisper-to'), /私聊 小红/);
    await page.locator('#online li.whispering', { hasText: '小红' }).waitFor();
    const secret = '只告诉你：明天见';
    await say(alice, secret);
    const sent = messageWith(page, secret);
    assert.match(await sent.getAttribute('class'), /\bprivate\b/);
    assert.match(await sent.locator('.private-tag').textContent(), /悄悄对 小红 说/);
    const got = messageWith(bob.page, secret);
    await got.waitFor();
    assert.match(await got.getAttribute('class'), /\btheirs\b.*\bprivate\b|\bprivate\b.*\btheirs\b/);
    assert.equal(await got.locator('.private-tag').textContent(), '悄悄对你说');
    // Private lines look different from chat.
    const [plain, whispered] = await Promise.all([
      messageWith(bob.page, '那就常来坐坐吧').locator('.bubble').evaluate((el) => getComputedStyle(el).borderStyle),
      got.locator('.bubble').evaluate((el) => getComputedStyle(el).borderStyle),
    ]);
    assert.notEqual(plain, whispered);
    // Back to everyone: Eve gets the next public line and never saw the whisper.
    await page.click('#whisper-cancel');
    assert.ok(!(await page.locator('#whisper').isVisible()));
    await say(alice, '大家都能看到这句');
    await messageWith(eve.page, '大家都能看到这句').waitFor();
    assert.equal(await eve.page.locator('#log .bubble', { hasText: secret }).count(), 0);
    assert.equal(await eve.page.locator('#log .msg.private').count(), 0);
  });

  it('sends an image: a thumbnail for everyone, a click opens the whole picture', async () => {
    const png = path.join(dataDir, 'sunset.png');
    await writeFile(png, makePng(48, 32, [240, 120, 40]));
    const [response] = await Promise.all([
      bob.page.waitForResponse((r) => r.url().endsWith('/upload')),
      bob.page.setInputFiles('#image-file', png),
    ]);
    assert.equal(response.status(), 200);
    const url = (await response.json()).data;
    assert.match(url, /^\/uploads\/[0-9a-f]{64}\.png$/);
    for (const [{ page }, side] of [[bob, 'mine'], [alice, 'theirs'], [eve, 'theirs']]) {
      const thumb = page.locator(`#log .msg.${side} img.thumb[src="${url}"]`).last();
      await thumb.waitFor();
      await eventually('the thumbnail to load', () => thumb.evaluate((img) => img.complete && img.naturalWidth),
        (width) => width === 48);
    }
    const { page } = alice;
    await page.locator(`#log img.thumb[src="${url}"]`).last().click();
    await page.locator('#viewer').waitFor();
    await eventually('the full picture', () => page.locator('#viewer-image')
      .evaluate((img) => [img.getAttribute('src'), img.complete && img.naturalHeight]),
    ([src, height]) => src === url && height === 32);
    await page.keyboard.press('Escape');
    assert.ok(!(await page.locator('#viewer').isVisible()));

    // Something that is not a picture is refused by the server, and the page says so.
    const svg = path.join(dataDir, 'trick.png');
    await writeFile(svg, '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>');
    await bob.page.setInputFiles('#image-file', svg);
    const error = bob.page.locator('#log .system.error', { hasText: 'SVG' });
    await error.waitFor();
    assert.match(await error.textContent(), /图片没有发出/);
    assert.deepEqual(bob.seen.dialogs, []);
    // The browser logs the refused request itself; that one line is expected, nothing else.
    const refused = bob.seen.consoleErrors.findIndex((text) => /status of 415/.test(text));
    assert.ok(refused >= 0, `the 415 was seen: ${bob.seen.consoleErrors}`);
    bob.seen.consoleErrors.splice(refused, 1);
  });

  it('shows the room, switches rooms with the form and refuses bad names clearly', async () => {
    // Frank keeps to other rooms, so the lobby's online list stays as the later steps expect.
    const frank = await openVisitor(browser);
    const { page } = frank;
    await page.goto(`${server.url}/ws?room=${encodeURIComponent('茶室')}`);
    const frankUser = await signIn(frank, 'Frank');
    assert.equal(await page.textContent('#room'), '茶室');
    assert.ok(frank.seen.sockets.at(-1).endsWith(`/ws?room=${encodeURIComponent('茶室')}`));
    await waitOnline(page, ['Frank']);

    // A bad name never leaves the page.
    await page.fill('#room-name', 'no spaces!');
    await page.click('#room-go');
    await page.locator('#room-notice').waitFor();
    assert.match(await page.textContent('#room-notice'), /房间名须为/);
    assert.ok(page.url().includes(encodeURIComponent('茶室')));

    // A new room is just a name: Frank is alone in it, still signed in as himself.
    await page.fill('#room-name', 'garden_2');
    await Promise.all([page.waitForURL(/room=garden_2$/), page.press('#room-name', 'Enter')]);
    await page.locator('#status[data-state="online"]').waitFor();
    assert.equal(await page.textContent('#room'), 'garden_2');
    await waitOnline(page, ['Frank']);
    assert.equal(await page.textContent('#me'), frankUser.name);

    // A bad room in the address: a clear page, not a broken one.
    const response = await page.goto(`${server.url}/ws?room=${encodeURIComponent('bad name')}`);
    assert.equal(response.status(), 400);
    assert.equal(await page.textContent('h1'), '房间名无效');
    assert.match(await page.textContent('.notice'), /room name/);
    assert.equal(await page.getAttribute('#to-lobby', 'href'), '/ws');
    assert.deepEqual(frank.seen.errors, []);
    await frank.context.close();
    await waitOnline(alice.page, ['路人甲', '小红', XSS_NAME]);
  });

  it('shows server errors inline', async () => {
    // Faster than any person: well past the rate limit's burst of 10.
    await eve.page.evaluate(() => {
      for (let i = 1; i <= 20; i += 1) {
        document.getElementById('mes').value = `刷屏 ${i}`;
        document.getElementById('go').click();
      }
    });
    // One error per flood; a message let through in between starts another, so maybe two.
    const error = eve.page.locator('#log .system.error').first();
    await error.waitFor();
    assert.match(await error.textContent(), /发送太快了/);
    // What got through reaches the others; how much depends on the tokens left, so count.
    const flood = (page) => page.locator('#log .msg .bubble', { hasText: '刷屏' }).count();
    const [through] = await eventually('the others to get what got through',
      async () => [await flood(eve.page), await flood(alice.page)],
      ([sent, seen]) => sent >= 5 && seen === sent);
    assert.ok(through < 20, `the limit dropped some of the flood: ${through} got through`);
    assert.equal(await alice.page.locator('#log .system.error').count(), 0, 'only the sender sees it');
  });

  it('follows the conversation, unless the reader has scrolled up', async () => {
    const { page } = alice;
    const position = () => page.locator('#log').evaluate((log) => ({
      overflow: log.scrollHeight > log.clientHeight,
      fromBottom: log.scrollHeight - log.scrollTop - log.clientHeight,
      top: log.scrollTop,
    }));
    const start = await position();
    assert.ok(start.overflow, 'the log is long enough to scroll');
    assert.ok(start.fromBottom < 2, `followed to the bottom: ${JSON.stringify(start)}`);

    await page.hover('#log');
    await page.mouse.wheel(0, -5000);
    await eventually('the reader to be at the top', position, (p) => p.top === 0);
    await say(bob, '往上翻的时候不要把我拉下去');
    await messageWith(page, '往上翻的时候不要把我拉下去').waitFor();
    const reading = await position();
    assert.equal(reading.top, 0, 'the reader stays where they are');
    await page.locator('#jump').waitFor();

    await page.click('#jump');
    await eventually('the log back at the bottom', position, (p) => p.fromBottom < 2);
    assert.ok(!(await page.locator('#jump').isVisible()));
  });

  it('signing out shows the sign-in view, and the others see left', async () => {
    const { page } = bob;
    await page.click('#signout');
    await page.locator('#signed-out').waitFor();
    assert.ok(!(await page.locator('#signed-in').isVisible()));
    assert.equal(await page.inputValue('#name'), '小红', 'ready to come back under the same name');
    await alice.page.locator('#log .system.left', { hasText: '小红 离开了聊天室' }).waitFor();
    await waitOnline(alice.page, ['路人甲', XSS_NAME]);

    assert.equal(await page.locator('#log > li').count(), 0, 'the log is cleared');

    // And back in: a new user with the same name; the room's recent history comes back, and
    // the old messages are someone else's now.
    bob.user = await signIn(bob);
    assert.equal(bob.user.name, '小红');
    const old = messageWith(page, '往上翻的时候不要把我拉下去');
    await old.waitFor();
    assert.match(await old.getAttribute('class'), /theirs/);
    await waitOnline(alice.page, ['路人甲', '小红', XSS_NAME]);
  });

  it('a signed-in visitor who reloads is connected at once, on the page\'s own host', async () => {
    const { page, seen } = alice;
    const socket = page.waitForEvent('websocket');
    await page.reload();
    assert.ok(await page.locator('#signed-in').isVisible(), 'the room view is rendered at once');
    assert.equal((await socket).url(), `ws://${server.host}/ws?room=lobby`);
    await page.locator('#status[data-state="online"]').waitFor();
    assert.equal(await page.textContent('#me'), '路人甲');
    await waitOnline(page, ['路人甲', '小红', XSS_NAME]);
    assert.ok(seen.sockets.length >= 2);
  });

  it('a page whose socket drops gets what it missed when it reconnects, each message once', async () => {
    const { page } = bob;
    const urls = [];
    let cut = null;
    // Bob's sockets go through the test from now on, so it can cut one as a network would.
    await page.routeWebSocket(/\/ws(\?|$)/, (socket) => {
      urls.push(socket.url());
      const upstream = socket.connectToServer();
      cut = () => {
        upstream.close();
        socket.close({ code: 1012, reason: 'cut by the test' });
      };
    });
    await page.reload();
    await page.locator('#status[data-state="online"]').waitFor();
    await eventually('the socket to go through the route', () => cut !== null);
    const live = '掉线之前的最后一句';
    await say(alice, live);
    await messageWith(page, live).waitFor();
    cut();
    await page.locator('#status[data-state="reconnecting"]').waitFor();
    const missed = ['你掉线的时候我说了这个', '还有这个', '以及这个'];
    for (const text of missed) { await say(alice, text); }

    await page.locator('#status[data-state="online"]').waitFor({ timeout: 3 * WAIT });
    assert.match(urls.at(-1), /\/ws\?room=lobby&since=\d+$/, 'the reconnect asks for what it missed');
    await say(alice, '现在是实时的');
    await messageWith(page, '现在是实时的').waitFor();
    // Alice's lines only: Eve's page may still be sending, at the rate allowed, what she typed
    // over the limit in the test of errors.
    const texts = (await logLines(page))
      .filter((l) => l.kind.startsWith('msg') && l.name === '路人甲')
      .map((l) => l.text);
    const expected = [live, ...missed, '现在是实时的'];
    assert.deepEqual(texts.slice(-expected.length), expected, 'all of them, in order');
    for (const text of expected) {
      assert.equal(texts.filter((t) => t === text).length, 1, `"${text}" shown once`);
    }
  });

  it('reconnects by itself after a server restart; a dropped cookie gets the sign-in view', async () => {
    // Eve's cookie goes, as if she signed out in another tab: her open socket does not know.
    await eve.context.clearCookies();
    const port = server.host;
    await server.stop();
    for (const { page } of [alice, bob, eve]) {
      const status = page.locator('#status[data-state="reconnecting"]');
      await status.waitFor();
      assert.match(await status.textContent(), /重新连接/);
    }
    server = await startServer({ dataDir, bind: port, args: ['--max-message-chars', String(MAX_CHARS)] });
    assert.equal(server.host, port, 'the same address as before');

    // Alice speaks as soon as she is back, perhaps before Bob's page is: he gets it either way.
    await alice.page.locator('#status[data-state="online"]').waitFor({ timeout: 3 * WAIT });
    await say(alice, '我先回来了');
    for (const { page } of [alice, bob]) {
      await page.locator('#status[data-state="online"]').waitFor({ timeout: 3 * WAIT });
      await waitOnline(page, ['路人甲', '小红']);
      await messageWith(page, '我先回来了').waitFor();
      // Nothing on screen was lost or doubled by the restart.
      const texts = (await logLines(page)).map((l) => l.text);
      for (const text of ['以及这个', '现在是实时的', '我先回来了']) {
        assert.equal(texts.filter((t) => t === text).length, 1, `"${text}" shown once`);
      }
    }
    await say(alice, '服务器刚刚重启了，还在吗？');
    await messageWith(bob.page, '服务器刚刚重启了，还在吗？').waitFor();
    await say(bob, '在，自己连回来了。', 'click');
    await messageWith(alice.page, '在，自己连回来了。').waitFor();

    // Eve's socket was closed with 4001: the sign-in view, and no more attempts.
    await eve.page.locator('#signed-out').waitFor({ timeout: 3 * WAIT });
    assert.equal(await eve.page.textContent('#notice'), '你已退出，请重新登入。');
    assert.ok(!(await eve.page.locator('#signed-in').isVisible()));
    const attempts = eve.seen.sockets.length;
    // A retry would come within 1.2 s (the first backoff step with its jitter).
    await eve.page.waitForTimeout(1500);
    assert.equal(eve.seen.sockets.length, attempts, 'no reconnect after 4001');
  });

  it('speaks English to a browser that prefers it', async () => {
    const dana = await visitor({ locale: 'en-US' });
    const { page } = dana;
    await page.goto(`${server.url}/ws`);
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.equal((await page.textContent('#signin')).trim(), 'Sign in');
    assert.equal((await page.textContent('#go')).trim(), 'Send');
    await signIn(dana, 'Dana');
    assert.equal(await page.textContent('#status'), 'Connected');
    await page.locator('#log .system.join', { hasText: 'Dana joined' }).waitFor();
    await alice.page.locator('#log .system.join', { hasText: 'Dana 加入了聊天室' }).waitFor();
  });

  it('raised no page errors, and no console errors but refused reconnects', async () => {
    for (const { seen } of visitors) {
      assert.deepEqual(seen.errors, []);
      assert.deepEqual(seen.dialogs, []);
      const unexpected = seen.consoleErrors
        .filter((text) => !/^WebSocket connection to 'ws:\/\/[^']+' failed/.test(text));
      assert.deepEqual(unexpected, [], 'console errors (a 404, a CSP violation, …)');
    }
  });
});
