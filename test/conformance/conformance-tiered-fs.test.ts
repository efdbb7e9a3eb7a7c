/**
 * The upstream conformance suite with tiering forced, on the embedded filesystem store: 64-byte
 * segments sealed as soon as bytes are durable, so nearly every read crosses segments, read units,
 * fork sources and the hot tail. The 6 "Reserved subscription APIs" tests stay skipped.
 */
import { afterAll, expect, test } from 'vitest';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { startTestServer } from '../support/server.ts';

const server = await startTestServer({ longPollTimeoutMs: 500, segmentSizeBytes: 64, sealIdleMs: 0, chunkBytesMax: 4096 });
afterAll(async () => {
  await server.stop();
});

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: 500 });

test('the suite really exercised segments (not only the hot tail)', () => {
  const stats = server.tiering.stats();
  expect(stats.segmentsWritten).toBeGreaterThan(1000);
  // Read units served from segments (memory or object store), not from hot tails.
  expect(stats.cache.hits + stats.cache.misses + stats.cache.collapsed).toBeGreaterThan(100);
  expect(stats.objectStore.get.requestCount).toBeGreaterThan(20);
});
