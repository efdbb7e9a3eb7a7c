/**
 * The web inspector in a real browser (README "Inspector"): Debian's chromium, headless, driven by
 * puppeteer-core against a real Cairn with auth on. It loads /inspector/, goes through the token
 * flow (401 without a token, the token kept in sessionStorage across a reload, forgotten on
 * request), finds a stream the test created, watches an append made elsewhere appear in the live
 * tail, appends from the form, forks with confirmation, sees a 403 for a path the token cannot
 * read, and draws the server page's charts. Screenshots go to a temporary directory (printed).
 *
 * Any console error fails the test, except the browser's own "Failed to load resource" line for
 * each 401/403 the test provokes on purpose (Chrome logs every non-2xx fetch that way): those are
 * matched by status and URL and must each appear. The page's Content-Security-Policy allows this
 * origin only, so a request elsewhere would be a CSP console error and fail the test too.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'puppeteer-core';
import { chromiumInstalled, CHROMIUM_PATH, launchChromium } from '../support/chromium.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { INSPECTOR_BUILD_DIR } from '../../src/http/routes/inspector.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { writeTokensFile } from '../support/tokens-file.ts';

if (!chromiumInstalled) {
  if (process.env['CI']) throw new Error(`inspector browser tests: ${CHROMIUM_PATH} is missing (apt-get install -y chromium)`);
  process.stderr.write(`\n*** inspector browser tests SKIPPED: ${CHROMIUM_PATH} is not installed (apt-get install -y chromium) ***\n\n`);
}

const TOKENS = { admin: 'admin-token-0123456789abcdef', tenantA: 'tenant-a-token-0123456789' };
const WAIT_MS = 20_000;

let server: TestServer;
let browser: Browser;
let page: Page;
let outputDir: string;
const consoleErrors: string[] = [];

async function api(method: string, name: string, token: string, headers: Record<string, string> = {}, body?: string) {
  return fetch(`${server.url}/v1/stream/${name}`, { method, headers: { ...headers, authorization: `Bearer ${token}` }, body });
}

/** The text of the first element matching `selector`, once `predicate` holds for it. */
async function waitForText(selector: string, predicate: (text: string) => boolean, what: string): Promise<string> {
  const deadline = WAIT_MS;
  let last = '';
  try {
    // Page functions as strings: this file is type-checked without the DOM library.
    const textExpression = `(document.querySelector(${JSON.stringify(selector)})?.textContent ?? '')`;
    await page.waitForFunction(`document.querySelector(${JSON.stringify(selector)}) !== null`, { timeout: deadline });
    for (;;) {
      last = await page.$eval(selector, (element) => element.textContent ?? '');
      if (predicate(last)) return last;
      await page.waitForFunction(`${textExpression} !== ${JSON.stringify(last)}`, { timeout: deadline });
    }
  } catch (error) {
    throw new Error(`waiting for ${what} in ${selector}; last text: ${JSON.stringify(last)}`, { cause: error });
  }
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(outputDir, `${name}.png`), fullPage: true });
}

describe.skipIf(!chromiumInstalled)('inspector in chromium', () => {
  beforeAll(async () => {
    if (!existsSync(path.join(INSPECTOR_BUILD_DIR, 'index.html'))) {
      await promisify(execFile)(process.execPath, [path.resolve(import.meta.dirname, '../../scripts/build-inspector.ts')]);
    }
    outputDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-inspector-browser-'));
    process.stdout.write(`inspector browser test: screenshots in ${outputDir}\n`);
    const tokensFile = path.join(outputDir, 'tokens.yaml');
    await writeTokensFile(tokensFile, [
      { name: 'admin', token: TOKENS.admin, grants: [{ paths: ['**'], operations: ['read', 'write', 'delete'] }] },
      { name: 'tenant-a', token: TOKENS.tenantA, grants: [{ paths: ['tenant-a/**'], operations: ['read', 'write'] }] },
    ]);
    server = await startTestServer({ authTokensFile: tokensFile });
    expect((await api('PUT', 'tenant-a/orders', TOKENS.admin, { 'content-type': 'application/json' }, '[{"order":1,"item":"rope"}]')).status).toBe(201);
    expect((await api('PUT', 'tenant-a/log', TOKENS.admin, { 'content-type': 'text/plain' }, 'first line\n')).status).toBe(201);
    expect((await api('PUT', 'tenant-b/secret', TOKENS.admin, { 'content-type': 'text/plain' }, 'not for tenant a')).status).toBe(201);

    browser = await launchChromium(path.join(outputDir, 'profile'));
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    page.on('console', (message) => {
      if (message.type() === 'error') consoleErrors.push(`${message.text()} @ ${message.location().url ?? ''}`);
    });
    page.on('pageerror', (error) => consoleErrors.push(`page error: ${(error as Error).message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('token flow, stream list, live tail, append form, fork, 403, server charts', async () => {
    const origin = server.url;
    const expectedFailures: RegExp[] = [];
    const expectFailure = (status: number, url: string) =>
      expectedFailures.push(new RegExp(`^Failed to load resource: the server responded with a status of ${status} .*@ ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));

    // No token: the list is a 401 with a hint.
    await page.goto(`${origin}/inspector/`, { waitUntil: 'networkidle0' });
    expect(await waitForText('[data-testid=error]', (text) => text.startsWith('401'), 'the 401')).toContain('enter a token');
    expectFailure(401, `${origin}/v1/streams?prefix=&limit=50`);

    // Token: kept in sessionStorage; the list shows tenant a's streams only.
    await page.type('input[name=token]', TOKENS.tenantA);
    await page.click('form.token button[type=submit]');
    const listed = await waitForText('[data-testid=stream-table] tbody', (text) => text.includes('tenant-a/orders'), 'the created stream');
    expect(listed).toContain('tenant-a/log');
    expect(listed).not.toContain('tenant-b/secret');
    expect(await page.evaluate(() => sessionStorage.getItem('cairn-inspector-token'))).toBe(TOKENS.tenantA);
    await page.reload({ waitUntil: 'networkidle0' });
    expect(await waitForText('[data-testid=token-state]', (text) => text === 'token set', 'the kept token')).toBe('token set');

    // Prefix search, then open the stream.
    await page.type('input[name=prefix]', 'tenant-a/or');
    await page.click('form.row button[type=submit]');
    await waitForText('[data-testid=stream-table] tbody', (text) => text.includes('tenant-a/orders') && !text.includes('tenant-a/log'), 'the prefix result');
    await page.click('[data-testid=stream-table] tbody a');
    const details = await waitForText('[data-testid=details]', (text) => text.includes('application/json'), 'the details');
    expect(details).toContain('Cairn-Sealed-Offset');
    await waitForText('[data-testid=tail-state]', (text) => text === 'live', 'the live tail');

    // An append made elsewhere appears in the live tail, pretty-printed.
    expect((await api('POST', 'tenant-a/orders', TOKENS.admin, { 'content-type': 'application/json' }, '{"order":2,"item":"carabiner"}')).status).toBe(204);
    const tail = await waitForText('[data-testid=tail]', (text) => text.includes('carabiner'), 'the live append');
    expect(tail).toContain('"order": 2');

    // Append from the form: it reaches the stream and the tail.
    await page.type('[data-testid=append-form] textarea', '{"order":3,"item":"harness"}');
    await page.click('[data-testid=append-form] button[type=submit]');
    await waitForText('[data-testid=tail]', (text) => text.includes('harness'), 'the form append');
    const stored = await (await api('GET', 'tenant-a/orders?offset=-1', TOKENS.admin)).json();
    expect(stored).toEqual([
      { order: 1, item: 'rope' },
      { order: 2, item: 'carabiner' },
      { order: 3, item: 'harness' },
    ]);
    await screenshot('stream');

    // Fork, behind a confirmation: nothing happens until confirmed.
    await page.$eval('input[name=fork-path]', (input) => {
      (input as unknown as { value: string }).value = '';
    });
    await page.type('input[name=fork-path]', 'tenant-a/orders-copy');
    const forkButton = await page.waitForSelector('xpath///button[contains(., "Fork…")]');
    await forkButton!.click();
    expect(await waitForText('[data-testid=confirm]', (text) => text.includes('tenant-a/orders-copy'), 'the confirmation')).toContain('Fork');
    expect((await api('HEAD', 'tenant-a/orders-copy', TOKENS.admin)).status).toBe(404);
    const confirm = await page.waitForSelector('xpath///div[@data-testid="confirm"]//button[contains(., "Confirm")]');
    await confirm!.click();
    await waitForText('[data-testid=stream-path]', (text) => text === 'tenant-a/orders-copy', 'the fork page');
    expect((await api('HEAD', 'tenant-a/orders-copy', TOKENS.admin)).status).toBe(200);

    // A path the token cannot read: 403, shown as such.
    await page.goto(`${origin}/inspector/#/stream/${encodeURIComponent('tenant-b/secret')}`, { waitUntil: 'networkidle0' });
    expect(await waitForText('[data-testid=error]', (text) => text.startsWith('403'), 'the 403')).toContain('may not');
    expectFailure(403, `${origin}/v1/stream/tenant-b/secret`);
    await screenshot('forbidden');

    // Server page: charts fed by /metrics.
    await page.goto(`${origin}/inspector/#/server`, { waitUntil: 'networkidle0' });
    await waitForText('[data-testid=charts]', (text) => /appends\/s: [0-9]/.test(text), 'the first chart point');
    expect(await page.$$eval('[data-testid=charts] svg path', (paths) => paths.length)).toBe(5);
    await screenshot('server');

    // Forget the token: back to 401.
    await page.goto(`${origin}/inspector/`, { waitUntil: 'networkidle0' });
    const forget = await page.waitForSelector('xpath///button[contains(., "Forget")]');
    await forget!.click();
    await waitForText('[data-testid=error]', (text) => text.startsWith('401'), 'the 401 after forgetting');
    expect(await page.evaluate(() => sessionStorage.getItem('cairn-inspector-token'))).toBeNull();

    const unexpected = consoleErrors.filter((line) => !expectedFailures.some((pattern) => pattern.test(line)));
    expect(unexpected).toEqual([]);
    for (const pattern of expectedFailures) expect(consoleErrors.some((line) => pattern.test(line))).toBe(true);
  }, 180_000);
});
