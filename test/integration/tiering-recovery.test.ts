/**
 * Restart paths of tiering on the embedded filesystem store, with real restarts of the server
 * over one data directory:
 * - a seal whose manifest reached the store but whose seal record never reached the WAL (a crash
 *   between the two) is adopted, and a segment object no manifest lists is deleted, never served;
 * - seals published before a restart are read from segments afterwards without being uploaded again;
 * - a deleted stream's objects stay until its delete record is durable (a crash losing the record
 *   brings the stream back, and its segments must still be there).
 */
import { systemClock } from '../../src/clock.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { encodeManifest, type Manifest } from '../../src/manifest/manifest.ts';
import { manifestKey, segmentKey, streamObjectPrefix } from '../../src/manifest/object-keys.ts';
import { FsObjectStore } from '../../src/object-store/index.ts';
import { parseOffsetToken } from '../../src/protocol/offset.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { nodeWalFs, type WalFs } from '../../src/wal/index.ts';
import { testConfig } from '../support/server.ts';
import { readToEnd, waitFor } from '../support/streams.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function serve(dataDir: string, overrides: Partial<ServeConfig>): Promise<RunningServer> {
  const server = await startServer(testConfig(dataDir, overrides), { logger: pino({ level: 'warn' }) });
  cleanup.push(() => server.close());
  return server;
}

test('after a crash between manifest and seal record, the manifest is adopted and an unlisted segment is never served', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-adopt-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 7) % 256));

  // 1. Three appends, nothing sealed (long idle and age limits), clean stop.
  const first = await serve(dataDir, { sealIdleMs: 3_600_000, unsealedAgeMsMax: 3_600_000 });
  let next = '';
  expect((await fetch(`${first.url}/v1/stream/adopt`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
  for (let i = 0; i < 3; i++) {
    const response = await fetch(`${first.url}/v1/stream/adopt`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: data.subarray(i * 100, i * 100 + 100),
    });
    expect(response.status).toBe(204);
    next = response.headers.get('stream-next-offset') ?? '';
  }
  await first.close();

  // 2. What a crashed seal leaves behind: segment [0, 200) and manifest 1 listing it, stored;
  //    plus segment [200, 300) uploaded by a later seal that died before its manifest — with
  //    wrong bytes, so serving it would show.
  const incarnation = parseOffsetToken(next)?.incarnation ?? 0;
  const nodeId = (await readFile(path.join(dataDir, 'node-id'), 'utf8')).trim();
  const prefix = streamObjectPrefix('adopt', incarnation, nodeId);
  const store = new FsObjectStore({ rootDir: path.join(dataDir, 'objects') });
  const manifest: Manifest = {
    format: 1,
    path: 'adopt',
    incarnation,
    nodeId,
    contentType: 'application/octet-stream',
    version: 1,
    retainedStart: 0,
    segments: [{ start: 0, end: 200, unitEnds: [200], sealedAtMs: Date.now() }],
  };
  await store.put(segmentKey(prefix, 0, 200), data.subarray(0, 200));
  await store.put(manifestKey(prefix, 1), encodeManifest(manifest));
  await store.put(segmentKey(prefix, 200, 300), Buffer.alloc(100, 0xee));

  // 3. Restart with immediate sealing: adopt [0, 200), drop the orphan, seal [200, 300) anew.
  const second = await serve(dataDir, { sealIdleMs: 0 });
  await waitFor(() => second.registry.get('adopt', { touch: false }).sealedOffset === 300);
  expect(second.tiering.stats().segmentsAdopted).toBe(1);
  expect(second.tiering.stats().orphansDeleted).toBe(1);
  expect(second.tiering.stats().segmentsWritten).toBe(1);
  expect((await readToEnd(`${second.url}/v1/stream/adopt`)).equals(data)).toBe(true);
  expect(Buffer.from((await store.get(segmentKey(prefix, 200, 300))).body).equals(data.subarray(200))).toBe(true);
  const stored = JSON.parse(Buffer.from((await store.get(manifestKey(prefix, 2))).body).toString()) as Manifest;
  expect(stored.segments.map((segment) => [segment.start, segment.end])).toEqual([
    [0, 200],
    [200, 300],
  ]);
  await second.tiering.deletesDrained();
  await expect(store.head(manifestKey(prefix, 1))).rejects.toThrow(/not found/);
  await second.close();

  // 4. Another restart: the seals are known from the WAL; nothing is uploaded or adopted again,
  //    and the bytes now come from segments.
  const third = await serve(dataDir, { sealIdleMs: 0 });
  expect((await readToEnd(`${third.url}/v1/stream/adopt`)).equals(data)).toBe(true);
  const stats = third.tiering.stats();
  expect(stats.segmentsWritten + stats.segmentsAdopted).toBe(0);
  expect(stats.cache.misses).toBeGreaterThan(0);
  expect(third.registry.get('adopt', { touch: false }).sealedOffset).toBe(300);
  await store.close();
});

test('a checkpoint taken after retention dropped every segment restores the sealed offset', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-trim-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  let skewMs = 0;
  const clock = { ...systemClock, nowMs: () => Date.now() + skewMs };
  const config = testConfig(dataDir, { sealIdleMs: 0, segmentSizeBytes: 1000, retentionMs: 60_000 });
  const first = await startServer(config, { logger: pino({ level: 'warn' }), clock });
  cleanup.push(() => first.close());
  const url = `${first.url}/v1/stream/trimmed`;
  expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
  for (let i = 0; i < 3; i++) {
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(1000) })).status).toBe(204);
  }
  await waitFor(() => first.registry.get('trimmed', { touch: false }).sealedOffset === 3000);
  skewMs = 120_000;
  await waitFor(() => first.registry.get('trimmed', { touch: false }).retainedStart === 3000);
  expect(first.registry.get('trimmed', { touch: false }).segments).toEqual([]);
  await first.checkpoint();
  await first.close();

  const second = await serve(dataDir, { sealIdleMs: 0, segmentSizeBytes: 1000 });
  const stream = second.registry.get('trimmed', { touch: false });
  expect([stream.sealedOffset, stream.retainedStart, stream.durableOffset]).toEqual([3000, 3000, 3000]);
  const append = await fetch(`${second.url}/v1/stream/trimmed`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'after' });
  expect(append.headers.get('stream-next-offset')).toMatch(/_00000000000030050$/);
  expect((await readToEnd(`${second.url}/v1/stream/trimmed`)).toString()).toBe('after');
});

test('a deleted stream keeps its objects until the delete record is durable', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-delete-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  // While `stall` is set, every WAL fdatasync waits for it: records are written, not durable.
  let stall: PromiseWithResolvers<void> | undefined;
  const walFs: WalFs = {
    ...nodeWalFs,
    async openFile(file, flags) {
      const handle = await nodeWalFs.openFile(file, flags);
      return {
        writev: (buffers) => handle.writev(buffers),
        close: () => handle.close(),
        async datasync() {
          await stall?.promise;
          await handle.datasync();
        },
      };
    },
  };
  const server = await startServer(testConfig(dataDir, { sealIdleMs: 0 }), { logger: pino({ level: 'warn' }), walFs });
  cleanup.push(() => server.close());
  cleanup.push(async () => stall?.resolve()); // runs before close, which waits for the WAL
  const url = `${server.url}/v1/stream/doomed`;
  const put = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.alloc(500, 7) });
  expect(put.status).toBe(201);
  const stream = server.registry.get('doomed', { touch: false });
  await waitFor(() => stream.sealedOffset === 500);
  await server.tiering.deletesDrained();
  const prefix = streamObjectPrefix('doomed', stream.incarnation, (await readFile(path.join(dataDir, 'node-id'), 'utf8')).trim());
  const keys = async () => (await server.tiering.store.list({ prefix })).objects.map((object) => object.key);
  const stored = await keys();
  expect(stored.length).toBeGreaterThan(0);

  // The delete is applied at once (404), but its record waits for an fdatasync: a kill now would
  // lose it, so no object of the stream may go yet (give a collector that did not wait time to act).
  stall = Promise.withResolvers<void>();
  const deleting = fetch(url, { method: 'DELETE' });
  await waitFor(() => !server.registry.holds(stream));
  await Promise.race([server.tiering.deletesDrained(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
  expect(await keys()).toEqual(stored);

  // Durable: now they go.
  stall.resolve();
  stall = undefined;
  expect((await deleting).status).toBe(204);
  await waitFor(async () => {
    await server.tiering.deletesDrained();
    return (await keys()).length === 0;
  });
});
