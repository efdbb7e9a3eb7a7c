/**
 * A real browser follows 12 live SSE streams from one page over HTTP/2 (README "TLS and
 * HTTP/2"): Debian's Chromium (/usr/bin/chromium) driven by puppeteer-core, the server on HTTPS
 * with a self-signed certificate the browser trusts by its public-key hash
 * (--ignore-certificate-errors-spki-list). Over HTTP/1.1 a browser opens at most six connections
 * per origin, so the seventh EventSource would never connect and this test would fail; it also
 * checks on the server that the SSE requests arrived over HTTP/2.
 * Skipped, loudly, when Chromium is not installed (`apt-get install chromium`); required in CI.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'puppeteer-core';
import { chromiumInstalled, CHROMIUM_PATH, launchChromium } from '../support/chromium.ts';
import { Agent } from 'undici';
import { afterAll, beforeAll, expect, it, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { selfSignedCertificate } from '../support/tls.ts';

const STREAM_COUNT = 12;
const ROUNDS = 3;

if (!chromiumInstalled) {
  console.warn(`\n*** browser test skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH) ***\n`);
  test.runIf(Boolean(process.env.CI))('Chromium is installed (required in CI)', () => {
    throw new Error(`no Chromium at ${CHROMIUM_PATH}`);
  });
  test.skip('12 SSE streams over HTTP/2 in Chromium (skipped: no Chromium)', () => {});
} else {
  let certificate: Awaited<ReturnType<typeof selfSignedCertificate>>;
  let server: TestServer;
  let browser: Browser;
  let profileDir: string;
  let agent: Agent;
  const sseRequestVersions: string[] = [];

  beforeAll(async () => {
    certificate = await selfSignedCertificate();
    agent = new Agent({ allowH2: true, connect: { ca: certificate.cert } });
    server = await startTestServer({ tlsCertFile: certificate.certFile, tlsKeyFile: certificate.keyFile });
    server.app.server.on('request', (request: { httpVersion: string; url?: string }) => {
      if (request.url?.includes('live=sse') === true) sseRequestVersions.push(request.httpVersion);
    });
    profileDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-chromium-'));
    browser = await launchChromium(profileDir, [`--ignore-certificate-errors-spki-list=${certificate.spkiSha256}`]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    await agent?.close();
    await certificate?.remove();
    if (profileDir !== undefined) await rm(profileDir, { recursive: true, force: true });
  }, 60_000);

  const append = (name: string, body: string, method = 'POST') =>
    fetch(`${server.url}/v1/stream/${name}`, { method, headers: { 'content-type': 'text/plain' }, body, dispatcher: agent } as unknown as RequestInit);

  it(`opens ${STREAM_COUNT} live SSE streams from one page over HTTP/2 and sees every append on all of them`, async () => {
    const names = Array.from({ length: STREAM_COUNT }, (_, index) => `browser-sse-${index}`);
    for (const name of names) expect((await append(name, '', 'PUT')).status).toBe(201);

    const page = await browser.newPage();
    const consoleErrors: string[] = [];
    page.on('console', (message) => {
      // The browser's own request for /favicon.ico (404) is not the page's error.
      if (message.type() === 'error' && !message.location().url?.endsWith('/favicon.ico')) consoleErrors.push(message.text());
    });
    // Same origin as the streams; any page of the server will do.
    const response = await page.goto(`${server.url}/healthz`);
    expect(response?.status()).toBe(200);

    await page.evaluate((streamNames: string[]) => {
      const received: Record<string, string[]> = {};
      const opened: Record<string, boolean> = {};
      (globalThis as unknown as { sse: unknown }).sse = { received, opened };
      for (const name of streamNames) {
        received[name] = [];
        const source = new EventSource(`/v1/stream/${name}?offset=-1&live=sse`);
        source.addEventListener('open', () => (opened[name] = true));
        source.addEventListener('data', (event) => received[name]?.push(String((event as MessageEvent).data)));
      }
    }, names);

    const state = () =>
      page.evaluate(() => (globalThis as unknown as { sse: { received: Record<string, string[]>; opened: Record<string, boolean> } }).sse);
    await expect.poll(async () => Object.keys((await state()).opened).length, { timeout: 30_000 }).toBe(STREAM_COUNT);

    for (let round = 0; round < ROUNDS; round++) {
      for (const name of names) expect((await append(name, `${name}:${round}`)).status).toBe(204);
    }
    await expect
      .poll(async () => Object.values((await state()).received).every((events) => events.join('|').includes(`:${ROUNDS - 1}`)), { timeout: 30_000 })
      .toBe(true);
    const received = (await state()).received;
    for (const name of names) {
      const text = received[name]?.join('') ?? '';
      for (let round = 0; round < ROUNDS; round++) expect(text).toContain(`${name}:${round}`);
    }
    expect(sseRequestVersions.length).toBeGreaterThanOrEqual(STREAM_COUNT);
    expect(new Set(sseRequestVersions)).toEqual(new Set(['2.0']));
    expect(consoleErrors).toEqual([]);
    await page.close();
  }, 120_000);
}
