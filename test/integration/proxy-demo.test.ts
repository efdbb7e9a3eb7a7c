/**
 * The durable proxy demo (demo/proxy) in a real headless Chromium (puppeteer-core and Debian's
 * `chromium`): the page asks the mock model through the proxy, is reloaded mid-answer, and must
 * end with the whole answer exactly once, the outcome `complete`, and the model asked once.
 * Skipped, loudly, when /usr/bin/chromium is missing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser } from 'puppeteer-core';
import { chromiumInstalled, CHROMIUM_PATH, launchChromium } from '../support/chromium.ts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startProxyDemo, type ProxyDemo } from '../../demo/proxy/demo.ts';
import { ANSWER_TEXT, ANSWER_WORDS } from '../../demo/proxy/mock-llm.ts';

const haveChromium = chromiumInstalled;
if (!haveChromium) console.warn(`SKIPPING the durable proxy browser test: ${CHROMIUM_PATH} is missing (apt-get install chromium)`);

describe.skipIf(!haveChromium)('durable proxy demo in a browser', () => {
  let demo: ProxyDemo;
  let browser: Browser;
  let profile: string;

  beforeAll(async () => {
    demo = await startProxyDemo({ tokenDelayMs: 100 });
    profile = await mkdtemp(path.join(os.tmpdir(), 'cairn-chromium-'));
    browser = await launchChromium(profile);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (profile !== undefined) await rm(profile, { recursive: true, force: true });
  });

  test('a reload mid-answer continues the answer: every word once, the model asked once', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(demo.pageUrl);
    await page.click('#send');
    // Mid-answer: some words shown, not all.
    // Page-side expressions are strings: this project type-checks without the DOM library.
    await page.waitForFunction("(document.getElementById('answer')?.textContent ?? '').split(' ').length >= 10", { timeout: 60_000 });
    const before = await page.$eval('#answer', (element) => element.textContent ?? '');
    expect(before.split(' ').length).toBeLessThan(ANSWER_WORDS.length);
    await page.reload();
    await page.waitForFunction("document.body.dataset.state === 'done'", { timeout: 90_000 });
    const after = await page.$eval('#answer', (element) => element.textContent ?? '');
    expect(after.startsWith(before)).toBe(true);
    expect(after).toBe(ANSWER_TEXT);
    expect(await page.$eval('#status', (element) => element.textContent)).toBe('done (complete)');
    expect(demo.llm.requests()).toBe(1);
  });
});
