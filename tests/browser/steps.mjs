// Steps the newer browser tests share: signing in through the page, saying something,
// finding a message, a real PNG made on the spot, and axe-core run inside the page.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';

import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { ROOT, eventually, onlineNames } from './harness.mjs';

/**
 * Saves a screenshot as chat.test.mjs does: into docs/screenshots/ with
 * UPDATE_SCREENSHOTS=1, else into a temporary folder.
 */
export async function screenshot(page, name) {
  const dir = process.env.UPDATE_SCREENSHOTS === '1'
    ? path.join(ROOT, 'docs', 'screenshots')
    : path.join(os.tmpdir(), `passerby-screenshots-${process.pid}`);
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, name) });
}

/** Opens the page (at `path`) and signs in as `name`; returns the user the server made. */
export async function signIn(page, url, name, path = '/ws') {
  await page.goto(url + path);
  await page.fill('#name', name);
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/wsin')),
    page.click('#signin'),
  ]);
  const reply = await response.json();
  assert.equal(reply.code, 0, `sign-in refused: ${JSON.stringify(reply)}`);
  await page.locator('#status[data-state="online"]').waitFor();
  return reply.user;
}

/** Types `text` and presses Enter; waits for it in the log when `wait`. */
export async function say(page, text, wait = true) {
  await page.fill('#mes', text);
  await page.press('#mes', 'Enter');
  if (wait) { await messageWith(page, text).waitFor(); }
}

/** The last message in `page`'s log whose bubble contains `text`. */
export function messageWith(page, text) {
  return page.locator('#log .msg').filter({ has: page.locator('.bubble', { hasText: text }) }).last();
}

export async function waitOnline(page, count) {
  await eventually(`${count} online`, () => onlineNames(page), (names) => names.length === count);
}

/** A real PNG of one colour, made here so the tests ship no binary. */
export function makePng(width, height, [r, g, b]) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) { c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; }
    return c >>> 0;
  });
  const crc32 = (buf) => {
    let c = 0xFFFFFFFF;
    for (const byte of buf) { c = table[(c ^ byte) & 0xFF] ^ (c >>> 8); }
    return (c ^ 0xFFFFFFFF) >>> 0;
  };
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array(width).fill([r, g, b]).flat())]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
    chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(Buffer.concat(Array(height).fill(row)))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

let axeSource;

/**
 * Runs axe-core in `page` (evaluated through the debugging protocol, which the page's CSP
 * does not govern) and fails listing every violation with the elements it names.
 */
export async function assertAccessible(page, what) {
  if (!axeSource) {
    const require = createRequire(import.meta.url);
    axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  }
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
    }));
  });
  assert.deepEqual(violations, [], `axe-core found violations on ${what}:\n${JSON.stringify(violations, null, 2)}`);
}
