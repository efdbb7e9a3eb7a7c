/**
 * Manifest pages end to end (docs/storage-layout.md "Manifest pages"): a real server seals a
 * source stream into more segments than a manifest lists (so its manifest is format 2 with pages),
 * forks it, trims a retained stream across pages; then the disk is lost and a fresh server serves
 * the source, the fork (reading the source's paged history) and the retained stream exactly as
 * before, and the store verifies clean.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import { MANIFEST_PAGE_ENTRIES } from '../../src/config/limits.ts';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { verifyStore } from '../../src/manifest/store-verify.ts';
import { decodeManifest } from '../../src/manifest/manifest.ts';
import { FsObjectStore, listAll } from '../../src/object-store/index.ts';
import { startServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';
import { readToEnd, waitFor } from '../support/streams.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const SEGMENT_BYTES = 16;
const octet = { 'content-type': 'application/octet-stream' };

test('a paged source, its fork and a retained stream survive disk loss and verify clean', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-pages-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const config = testConfig(dataDir, { sealIdleMs: 0, segmentSizeBytes: SEGMENT_BYTES, metadataFlushMs: 20 });
  const server = await startServer(config, { logger: pino({ level: 'warn' }) });
  const url = (name: string) => `${server.url}/v1/stream/${name}`;
  const appendCount = MANIFEST_PAGE_ENTRIES * 2 + 10;
  const piece = (i: number) => Buffer.from(`${String(i).padStart(4, '0')}-abcdefghijk`); // 16 bytes: one segment each
  expect((await fetch(url('src'), { method: 'PUT', headers: octet })).status).toBe(201);
  expect((await fetch(url('ret'), { method: 'PUT', headers: { ...octet, 'cairn-retention-bytes': String(SEGMENT_BYTES * 20) } })).status).toBe(201);
  for (let i = 0; i < appendCount; i++) {
    for (const name of ['src', 'ret']) {
      expect((await fetch(url(name), { method: 'POST', headers: octet, body: piece(i) })).status).toBe(204);
      // One segment per append: wait until it is sealed before the next.
      await waitFor(() => server.registry.get(name, { touch: false }).sealedOffset === (i + 1) * SEGMENT_BYTES, 30_000);
    }
  }
  expect((await fetch(url('fork'), { method: 'PUT', headers: { ...octet, 'stream-forked-from': 'src' }, body: 'fork-own-bytes!!' })).status).toBe(201);
  await waitFor(() => server.registry.get('fork', { touch: false }).sealedOffset === (appendCount + 1) * SEGMENT_BYTES, 30_000);
  // Retention converged (the first retained segment is no longer surplus), so a restart trims no further.
  await waitFor(() => {
    const ret = server.registry.get('ret', { touch: false });
    return ret.retainedStart > 0 && ret.durableOffset - (ret.retainedStart + SEGMENT_BYTES) < SEGMENT_BYTES * 20;
  }, 60_000);
  await waitFor(() => !server.registry.get('fork', { touch: false }).metaDirty && !server.registry.get('ret', { touch: false }).metaDirty, 30_000);
  const before = { src: await readToEnd(url('src')), fork: await readToEnd(url('fork')), ret: await readToEnd(url('ret')) };
  expect(before.src.length).toBe(appendCount * SEGMENT_BYTES);
  expect(before.fork.length).toBe((appendCount + 1) * SEGMENT_BYTES);
  await server.close();

  const store = new FsObjectStore({ rootDir: path.join(dataDir, 'objects') });
  const source = (await lookUpPath(store, 'src')).found;
  const head = decodeManifest('head', (await store.get(`${source!.prefix}manifest-${String(source!.manifest.version).padStart(20, '0')}.json`)).body);
  expect(head.format).toBe(2);
  expect(head.pages?.length).toBe(2);
  expect(head.segments.length).toBe(10);
  const pages: string[] = [];
  for await (const object of listAll(store, '')) if (object.key.includes('/page-')) pages.push(object.key);
  expect(pages.length).toBeGreaterThanOrEqual(2);
  expect((await verifyStore(store)).problems).toEqual([]);

  // The disk is lost; a fresh server serves everything from the store.
  for (const entry of await readdir(dataDir)) if (entry !== 'objects') await rm(path.join(dataDir, entry), { recursive: true, force: true });
  const fresh = await startServer(config, { logger: pino({ level: 'warn' }) });
  cleanup.push(() => fresh.close());
  const freshUrl = (name: string) => `${fresh.url}/v1/stream/${name}`;
  expect(await readToEnd(freshUrl('src'))).toEqual(before.src);
  expect(await readToEnd(freshUrl('fork'))).toEqual(before.fork);
  expect(await readToEnd(freshUrl('ret'))).toEqual(before.ret);
  // Below the retained start: 410, as before.
  const earliest = (await fetch(freshUrl('ret'), { method: 'HEAD' })).headers.get('cairn-earliest-offset') ?? '';
  expect(earliest).not.toMatch(/_0+$/);
}, 120_000);
