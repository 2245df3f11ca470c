// The page's first-load weight, as a visitor with an empty cache meets it: requests and bytes
// on the wire (headers and bodies as sent, compressed or not), signed out and signed in.
// Run after `cargo build`: `node weight.mjs` (PASSERBY_BIN picks another binary).

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { launchBrowser, openVisitor, startServer } from './harness.mjs';

async function firstLoad(browser, url, signInAs) {
  const { context, page } = await openVisitor(browser);
  if (signInAs) {
    const reply = await context.request.post(`${url}/wsin`, {
      form: { name: signInAs },
      headers: { origin: url },
    });
    if (!reply.ok()) { throw new Error(`sign-in refused: ${await reply.text()}`); }
  }
  const requests = [];
  page.on('requestfinished', (request) => requests.push(request));
  await page.goto(`${url}/ws`);
  await page.waitForLoadState('networkidle');
  let bytes = 0;
  for (const request of requests) {
    const sizes = await request.sizes();
    bytes += sizes.responseHeadersSize + sizes.responseBodySize;
  }
  await context.close();
  return { requests: requests.length, bytes };
}

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'passerby-weight-'));
const server = await startServer({ dataDir });
const browser = await launchBrowser();
try {
  for (const [label, who] of [['signed out', null], ['signed in', '小明']]) {
    const { requests, bytes } = await firstLoad(browser, server.url, who);
    console.log(`${label}: ${requests} requests, ${(bytes / 1024).toFixed(1)} KiB`);
  }
} finally {
  await browser.close();
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
}
