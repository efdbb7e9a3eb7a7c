/**
 * Streams loaded by lazy lookup are evicted when idle (src/tiering/idle-eviction.ts) and found
 * again on the next request: a node over a store another node filled loads streams, forgets the
 * idle ones, and serves them again with identical bytes, offsets, ETags and headers, producers
 * included. A stream written on this node (producer state not yet stored) or with a live reader
 * waiting is never evicted. Real servers over one shared in-memory object store.
 */
import { afterEach, expect, test } from 'vitest';
import { MemoryObjectStore } from '../../src/object-store/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const octet = { 'content-type': 'application/octet-stream' };

async function call(server: TestServer, name: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  const response = await fetch(`${server.url}/v1/stream/${name}`, init);
  await response.arrayBuffer();
  return response;
}

/** HEAD and a whole catch-up read from -1: status, headers, ETags and bytes. */
async function observe(server: TestServer, name: string): Promise<unknown> {
  const url = `${server.url}/v1/stream/${name}`;
  const head = await fetch(url, { method: 'HEAD' });
  const seen: Record<string, unknown> = { headStatus: head.status };
  for (const header of ['content-type', 'stream-next-offset', 'stream-closed', 'cairn-sealed-offset', 'cairn-earliest-offset', 'etag']) seen[`head ${header}`] = head.headers.get(header);
  const reads: unknown[] = [];
  for (let offset = '-1', i = 0; i < 50; i++) {
    const response = await fetch(`${url}?offset=${offset}`);
    const body = Buffer.from(await response.arrayBuffer()).toString('base64');
    reads.push({ offset, status: response.status, etag: response.headers.get('etag'), next: response.headers.get('stream-next-offset'), closed: response.headers.get('stream-closed'), body });
    if (response.status !== 200 || response.headers.get('stream-up-to-date') === 'true') break;
    offset = response.headers.get('stream-next-offset') ?? '';
  }
  seen.reads = reads;
  return seen;
}

test('an idle loaded stream is evicted and served again identically; written or live-read ones stay', async () => {
  const store = new MemoryObjectStore();
  const tiering = { sealIdleMs: 0, segmentSizeBytes: 64, metadataFlushMs: 10, logLevel: 'silent' as const };
  const first = await startTestServer(tiering, { objectStore: store });
  const producer = (seq: number) => ({ 'producer-id': 'p', 'producer-epoch': '1', 'producer-seq': String(seq) });
  expect((await call(first, 'kept', { method: 'PUT', headers: octet })).status).toBe(201);
  for (let seq = 0; seq < 4; seq++) {
    expect((await call(first, 'kept', { method: 'POST', headers: { ...octet, ...producer(seq), 'stream-seq': `s${seq}` }, body: Buffer.alloc(50, 97 + seq) })).status).toBe(200);
  }
  expect((await call(first, 'closed', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '[{"a":1},{"b":2}]' })).status).toBe(201);
  expect((await call(first, 'closed', { method: 'POST', headers: { 'stream-closed': 'true' } })).status).toBe(204);
  for (const name of ['written', 'live']) expect((await call(first, name, { method: 'PUT', headers: octet, body: `${name} bytes` })).status).toBe(201);
  await waitFor(() =>
    ['kept', 'closed', 'written', 'live'].every((name) => {
      const stream = first.registry.get(name, { touch: false });
      return stream.sealedOffset === stream.tailOffset && !stream.metaDirty;
    }),
  );
  await first.stop();

  // A fresh node over the same store: every stream is loaded on first use.
  const second = await startTestServer({ ...tiering, longPollTimeoutMs: 120_000 }, { objectStore: store, loadedStreamLimits: { idleMs: 200, sweepIntervalMs: 20 } });
  cleanup.push(() => second.stop());
  const before = { kept: await observe(second, 'kept'), closed: await observe(second, 'closed') };
  // 'written': a producer append on this node, not yet sealed here (the local WAL holds it).
  expect((await call(second, 'written', { method: 'POST', headers: { ...octet, ...producer(0) }, body: 'more' })).status).toBe(200);
  // 'live': a long-poll waiting at the tail.
  const liveHead = await call(second, 'live', { method: 'HEAD' });
  const longPoll = fetch(`${second.url}/v1/stream/live?offset=${liveHead.headers.get('stream-next-offset')}&live=long-poll`);
  // (It may be evicted before the long-poll's lookup loads it again: ask only while it is held.)
  await waitFor(() => second.registry.holdsPath('live') && second.registry.get('live', { touch: false }).hasWaiters);

  await waitFor(() => !second.registry.holdsPath('kept') && !second.registry.holdsPath('closed'), 30_000);
  expect(second.registry.holdsPath('written')).toBe(true);
  expect(second.registry.holdsPath('live')).toBe(true);

  // Found again by lazy lookup: the same answers, producers and closure included.
  expect(await observe(second, 'kept')).toEqual(before.kept);
  expect(await observe(second, 'closed')).toEqual(before.closed);
  expect((await call(second, 'kept', { method: 'POST', headers: { ...octet, ...producer(3), 'stream-seq': 's3' }, body: Buffer.alloc(50, 100) })).status).toBe(204);
  expect((await call(second, 'kept', { method: 'POST', headers: { ...octet, ...producer(4), 'stream-seq': 's4' }, body: 'next' })).status).toBe(200);

  // The long-poll is still waiting on the same stream; an append wakes it.
  expect((await call(second, 'live', { method: 'POST', headers: octet, body: 'wake' })).status).toBe(204);
  const woken = await longPoll;
  expect(woken.status).toBe(200);
  expect(await woken.text()).toBe('wake');
}, 60_000);
