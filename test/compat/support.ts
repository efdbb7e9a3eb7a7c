/**
 * Shared set-up of the compatibility suite (test/compat): the upstream packages run unchanged
 * against a real Cairn server in two storage configurations.
 * - `embedded`: the defaults (embedded filesystem store; bytes stay in the hot tail during a test).
 * - `sealed`: tiny segments sealed as soon as bytes are durable, so nearly every read is served
 *   from segments in the object store and crosses segment and read-unit boundaries.
 */
import { startTestServer, type TestServer } from '../support/server.ts';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { CATCH_UP_BYTES_MAX_DEFAULT } from '../../src/config/limits.ts';

export type CompatMode = 'embedded' | 'sealed';

export const COMPAT_MODES: readonly CompatMode[] = ['embedded', 'sealed'];

/** Settings of each mode (on top of the test defaults). */
export const COMPAT_SETTINGS: Record<CompatMode, Partial<ServeConfig>> = {
  embedded: {},
  sealed: { segmentSizeBytes: 64, sealIdleMs: 0, chunkBytesMax: 4096, catchUpBytesMax: CATCH_UP_BYTES_MAX_DEFAULT },
};

/** Starts Cairn in `mode`; `overrides` go on top. */
export function startCompatServer(mode: CompatMode, overrides: Partial<ServeConfig> = {}): Promise<TestServer> {
  return startTestServer({ longPollTimeoutMs: 1000, ...COMPAT_SETTINGS[mode], ...overrides });
}

/** Polls `check` every 20 ms until it returns true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until every byte the server acknowledged is in segments (sealed mode), so reads come from the object store. */
export async function waitUntilSealed(server: TestServer): Promise<void> {
  await waitFor('the hot tails to be sealed', () => server.tiering.stats().hotTailBytes === 0);
}
