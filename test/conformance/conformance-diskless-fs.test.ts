/**
 * The upstream conformance suite in diskless mode (`--durability object-store`) on the filesystem
 * store kept outside the data directory: every append is acknowledged only once its shared WAL
 * object is stored. Subscriptions on. Tiering forced, so reads cross segments and the hot tail.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test, vi } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_SUBSCRIPTIONS, CONFORMANCE_LONG_POLL_TIMEOUT_MS, TIERING_FORCED, expectSuiteReadSegments } from '../support/conformance.ts';
import { startTestServer } from '../support/server.ts';
import { listAll } from '../../src/object-store/index.ts';
import { OBJECT_WAL_PREFIX } from '../../src/wal/index.ts';

// Every append waits for its WAL object (20 ms of gathering plus the put): the property-based
// tests append hundreds of times in sequence, past the suite's 30 s on a busy machine.
vi.setConfig({ testTimeout: 120_000 });

const fsStoreDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-diskless-store-'));
const server = await startTestServer({
  ...CONFORMANCE_SUBSCRIPTIONS,
  longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS,
  ...TIERING_FORCED,
  durability: 'object-store',
  fsStoreDir,
});
afterAll(async () => {
  await server.stop();
  await rm(fsStoreDir, { recursive: true, force: true });
});

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, subscriptions: true });

test('the suite ran diskless: WAL objects were stored and no local WAL file was written', async () => {
  const { readdir } = await import('node:fs/promises');
  const walFiles = await readdir(path.join(server.dataDir, 'wal')).catch(() => []);
  expect(walFiles).toEqual([]);
  let walObjects = 0;
  for await (const info of listAll(server.tiering.store, OBJECT_WAL_PREFIX)) if (info.key.endsWith('.wal') && info.sizeBytes > 0) walObjects++;
  expect(walObjects).toBeGreaterThan(0);
  expectSuiteReadSegments(server);
});
