import { describe, expect, test, vi } from 'vitest';
import { FaultInjectingObjectStore, MemoryObjectStore, ObjectNotFoundError, type ObjectStoreCall } from '../../src/object-store/index.ts';
import { SegmentCache } from '../../src/read-path/segment-cache.ts';

const KEY = 'ab/segment-0-1000.seg';
const BODY = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

/** A memory store holding KEY, recording every call; `hold` makes GETs wait for `releaseHung()`. */
async function setup(hold = false) {
  const memory = new MemoryObjectStore();
  await memory.put(KEY, BODY);
  const store = new FaultInjectingObjectStore(memory);
  const calls: ObjectStoreCall[] = [];
  store.inject({ when: (call) => (calls.push(call), false), action: { kind: 'hang' } });
  if (hold) store.inject({ when: (call) => call.operation === 'get', action: { kind: 'hang' } });
  const gets = () => calls.filter((call) => call.operation === 'get');
  return { store, gets };
}

describe('segment cache', () => {
  test('N concurrent misses of one unit make exactly one GET', async () => {
    const { store, gets } = await setup(true);
    const cache = new SegmentCache(store, 1 << 20);
    const reads = Array.from({ length: 20 }, () => cache.read(KEY, undefined));
    await vi.waitFor(() => expect(store.hungCount).toBe(1));
    store.releaseHung();
    const bodies = await Promise.all(reads);
    expect(gets()).toHaveLength(1);
    for (const body of bodies) expect(body.equals(BODY)).toBe(true);
    expect(cache.stats()).toMatchObject({ misses: 1, collapsed: 19, hits: 0, bytes: 1000 });
  });

  test('units fetched at once into a cache too small for them all still reach their readers', async () => {
    const { store } = await setup(true);
    const cache = new SegmentCache(store, 0); // --segment-cache-bytes 0: nothing is kept
    const ranges = [0, 250, 500, 750].map((startByte) => ({ startByte, endByte: startByte + 250 }));
    const reads = ranges.map((range) => cache.read(KEY, range));
    await vi.waitFor(() => expect(store.hungCount).toBe(4));
    store.releaseHung();
    const bodies = await Promise.all(reads);
    bodies.forEach((body, i) => expect(body.equals(BODY.subarray(ranges[i]!.startByte, ranges[i]!.endByte))).toBe(true));
  });

  test('a cached unit is served from memory; ranged units are cached apart', async () => {
    const { store, gets } = await setup();
    const cache = new SegmentCache(store, 1 << 20);
    expect((await cache.read(KEY, { startByte: 100, endByte: 200 })).equals(BODY.subarray(100, 200))).toBe(true);
    expect((await cache.read(KEY, { startByte: 100, endByte: 200 })).equals(BODY.subarray(100, 200))).toBe(true);
    expect((await cache.read(KEY, { startByte: 200, endByte: 300 })).equals(BODY.subarray(200, 300))).toBe(true);
    expect(gets().map((call) => call.range)).toEqual([
      { startByte: 100, endByte: 200 },
      { startByte: 200, endByte: 300 },
    ]);
    expect(cache.stats()).toMatchObject({ misses: 2, hits: 1, collapsed: 0, bytes: 200 });
  });

  test('with no memory, concurrent misses are still collapsed, later reads fetch again', async () => {
    const { store, gets } = await setup(true);
    const cache = new SegmentCache(store, 0);
    const reads = Array.from({ length: 5 }, () => cache.read(KEY, undefined));
    await vi.waitFor(() => expect(store.hungCount).toBe(1));
    store.releaseHung();
    await Promise.all(reads);
    expect(gets()).toHaveLength(1);
    const again = cache.read(KEY, undefined);
    await vi.waitFor(() => expect(store.hungCount).toBe(1));
    store.releaseHung();
    expect((await again).equals(BODY)).toBe(true);
    expect(gets()).toHaveLength(2);
  });

  test('a store error reaches every waiting reader and is not cached', async () => {
    const { store, gets } = await setup();
    const cache = new SegmentCache(store, 1 << 20);
    const reads = Array.from({ length: 3 }, () => cache.read('ab/missing.seg', undefined));
    for (const read of reads) await expect(read).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(cache.read('ab/missing.seg', undefined)).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(gets()).toHaveLength(2);
  });

  test('prefetch fetches once into the cache, only when the cache can keep it', async () => {
    const { store, gets } = await setup();
    const small = new SegmentCache(store, 100);
    small.prefetch(KEY, undefined, 1000);
    expect(gets()).toHaveLength(0);
    const cache = new SegmentCache(store, 1 << 20);
    cache.prefetch(KEY, undefined, 1000);
    cache.prefetch(KEY, undefined, 1000); // already in flight
    expect((await cache.read(KEY, undefined)).equals(BODY)).toBe(true);
    expect(gets()).toHaveLength(1);
    expect(cache.stats().misses).toBe(1);
  });
});
