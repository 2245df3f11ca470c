// What the browser tests stand on: the real server binary as a child process, Debian's
// Chromium driven by playwright-core, and waits that end as soon as their condition holds.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How long one step may wait for the page; generous for a shared 2-core machine. */
export const WAIT = 5000;

export const BINARY = process.env.PASSERBY_BIN
  || path.join(process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target'), 'debug', 'passerby');

/**
 * Starts `passerby` on `bind` (port 0 for an ephemeral one) and resolves once it prints
 * `listening on http://ADDR`. `stop()` sends SIGTERM and waits for a clean exit.
 */
export async function startServer({ dataDir, bind = '127.0.0.1:0', args = [] }) {
  const child = spawn(BINARY, [
    '--bind', bind, '--data-dir', dataDir, '--static-dir', path.join(ROOT, 'static'), ...args,
  ], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // A `left` follows its socket's close, as the tests expect; `args` may override it.
    env: { PASSERBY_PRESENCE_GRACE_SECS: '0', ...process.env, RUST_LOG: process.env.TEST_LOG ? 'info' : 'warn' },
  });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk).slice(-8000);
    if (process.env.TEST_LOG) { process.stderr.write(chunk); }
  };
  child.stderr.on('data', keep);
  const lines = readline.createInterface({ input: child.stdout });
  const url = await within(WAIT * 2, `the server to listen on ${bind}`, new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      keep(line + '\n');
      const match = /^listening on (http:\/\/\S+)/.exec(line);
      if (match) { resolve(match[1]); }
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${output}`)));
  }));
  const exited = once(child, 'exit');
  return {
    url,
    host: new URL(url).host,
    child,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      const [code, signal] = await within(6000, 'the server to exit after SIGTERM', exited);
      if (code !== 0) { throw new Error(`the server exited with ${code ?? signal}:\n${output}`); }
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); }
    },
  };
}

/**
 * Debian's Chromium. The flags keep a machine without internet quiet: no sync, no component
 * updates, no background requests. Playwright itself adds --headless and a fresh temporary
 * --user-data-dir, deleted when the browser closes.
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: WAIT * 4,
  });
}

/**
 * A page in its own browser context (its own cookies), which records what must never
 * happen: dialogs, uncaught errors, console errors, and which sockets it opened.
 */
export async function openVisitor(browser, options = {}) {
  const context = await browser.newContext({
    locale: 'zh-CN',
    timezoneId: 'Asia/Shanghai',
    viewport: { width: 1180, height: 760 },
    ...options,
  });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const seen = { dialogs: [], errors: [], consoleErrors: [], sockets: [] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => seen.errors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') { seen.consoleErrors.push(message.text()); }
  });
  page.on('websocket', (socket) => seen.sockets.push(socket.url()));
  return { context, page, seen };
}

/** Resolves with `promise`, or fails naming `what` after `ms`. */
export async function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `probe` until `accept` holds for what it returns; fails with the last value seen.
 * This is the only kind of wait the tests use: no sleeping for a fixed time.
 */
export async function eventually(what, probe, accept = Boolean, ms = WAIT) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await probe();
    if (accept(last)) { return last; }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}; last saw ${JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The names in a page's online list, in order. */
export function onlineNames(page) {
  return page.locator('#online li .name').allTextContents();
}

/** The log's lines, as their visible text, for assertions and failure messages. */
export function logLines(page) {
  return page.locator('#log > li').evaluateAll((items) => items.map((li) => ({
    kind: li.className,
    name: li.querySelector('.name')?.textContent ?? null,
    text: (li.querySelector('.bubble') || li.querySelector('span'))?.textContent ?? '',
  })));
}
