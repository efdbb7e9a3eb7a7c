/**
 * Debian's Chromium driven by puppeteer-core, for the browser tests. The flags keep a headless
 * browser off the network it cannot reach here (background networking, component updates, sync)
 * and give each launch a fresh profile.
 */
import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

/** The browser binary (`apt-get install chromium`); `CHROMIUM_PATH` overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const chromiumInstalled = existsSync(CHROMIUM_PATH);

/** Launches headless Chromium with profile `profileDir` and any `extraArgs`. */
export function launchChromium(profileDir: string, extraArgs: string[] = []): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profileDir}`,
      ...extraArgs,
    ],
  });
}
