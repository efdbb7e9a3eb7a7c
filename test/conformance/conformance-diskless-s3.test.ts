/**
 * The upstream conformance suite in diskless mode (`--durability object-store`) on a real
 * S3-compatible server (test/support/s3-server.ts): every append is acknowledged only once its
 * shared WAL object is stored in the bucket. Without any S3 server the file fails under CI and
 * is skipped locally, loudly.
 */
import { afterAll, expect, test, vi } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_SUBSCRIPTIONS, CONFORMANCE_LONG_POLL_TIMEOUT_MS } from '../support/conformance.ts';
import { findS3ServerSource, startS3Server, warnS3Unavailable, s3ServeSettings } from '../support/s3-server.ts';
import { startTestServer } from '../support/server.ts';
import { listAll } from '../../src/object-store/index.ts';
import { OBJECT_WAL_PREFIX } from '../../src/wal/index.ts';

// Every append waits for a PUT to a local Ceph sharing two cores with the rest of the suite.
vi.setConfig({ testTimeout: 120_000 });

const source = findS3ServerSource();

if (source.kind === 'unavailable') {
  warnS3Unavailable(source.reason);
  test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
    throw new Error(`no S3-compatible server: ${source.reason}`);
  });
  test.skip(`diskless conformance on S3 (skipped: ${source.reason})`, () => {});
} else {
  const s3 = await startS3Server(source);
  const server = await startTestServer({
    ...CONFORMANCE_SUBSCRIPTIONS,
    longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS,
    ...s3ServeSettings(s3),
    durability: 'object-store',
  });
  afterAll(async () => {
    await server.stop();
    await s3.stop();
  }, 60_000);

  runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, subscriptions: true });

  test('the suite ran diskless on S3: WAL objects were stored in the bucket', async () => {
    expect(server.tiering.store.description).toContain('s3://');
    let walObjects = 0;
    for await (const info of listAll(server.tiering.store, OBJECT_WAL_PREFIX)) if (info.key.endsWith('.wal') && info.sizeBytes > 0) walObjects++;
    expect(walObjects).toBeGreaterThan(0);
  });
}
