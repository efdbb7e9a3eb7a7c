/**
 * Lazy lookup by path (src/manifest/stream-lookup.ts): one LIST and one GET find the newest
 * manifest of the highest incarnation, also past a thousand segments (the LIST skips to the
 * manifests), and report the highest incarnation stored at the path.
 */
import { describe, expect, test } from 'vitest';
import { encodeManifest, type Manifest } from '../../src/manifest/manifest.ts';
import { manifestKey, segmentKey, streamObjectPrefix } from '../../src/manifest/object-keys.ts';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { MemoryObjectStore, MeteredObjectStore } from '../../src/object-store/index.ts';

function manifest(path: string, incarnation: number, version: number, segmentCount: number): Manifest {
  return {
    format: 1,
    path,
    incarnation,
    nodeId: 'aaaaaaaaaaaa',
    contentType: 'application/octet-stream',
    version,
    retainedStart: 0,
    segments: Array.from({ length: segmentCount }, (_, i) => ({ start: i, end: i + 1, unitEnds: [i + 1], sealedAtMs: 1 })),
    stream: { createdAtMs: 1, sealedOffset: segmentCount, closed: false, producers: [] },
  };
}

async function storeIncarnation(store: MemoryObjectStore, path: string, incarnation: number, versions: number[], segmentCount: number): Promise<void> {
  const prefix = streamObjectPrefix(path, incarnation, 'aaaaaaaaaaaa');
  for (let i = 0; i < segmentCount; i++) await store.put(segmentKey(prefix, i, i + 1), Buffer.from([i % 256]));
  for (const version of versions) await store.put(manifestKey(prefix, version), encodeManifest(manifest(path, incarnation, version, segmentCount)));
}

describe('lookUpPath', () => {
  test('one LIST and one GET find the newest manifest of the highest incarnation', async () => {
    const memory = new MemoryObjectStore();
    await storeIncarnation(memory, 'a/b', 7, [1], 2);
    await storeIncarnation(memory, 'a/b', 9, [3, 4], 3);
    await storeIncarnation(memory, 'other', 12, [1], 1);
    const store = new MeteredObjectStore(memory);
    const { found, highestIncarnation } = await lookUpPath(store, 'a/b');
    expect(found?.incarnation).toBe(9);
    expect(found?.manifest.version).toBe(4);
    expect(highestIncarnation).toBe(9);
    expect(store.snapshot().list.requestCount).toBe(1);
    expect(store.snapshot().get.requestCount).toBe(1);
  });

  test('a stream with more segments than a LIST page costs a second LIST, not one per thousand segments', async () => {
    const memory = new MemoryObjectStore();
    await storeIncarnation(memory, 'long', 3, [5], 2500);
    const store = new MeteredObjectStore(memory);
    const { found } = await lookUpPath(store, 'long');
    expect(found?.manifest.version).toBe(5);
    expect(store.snapshot().list.requestCount).toBe(2);
  });

  test('an absent path finds nothing with one LIST', async () => {
    const store = new MeteredObjectStore(new MemoryObjectStore());
    expect(await lookUpPath(store, 'nothing')).toEqual({ found: undefined, highestIncarnation: 0 });
    expect(store.snapshot().list.requestCount).toBe(1);
  });

  test('a manifest superseded and deleted between the LIST and the GET makes the lookup list again', async () => {
    const memory = new MemoryObjectStore();
    await storeIncarnation(memory, 'race', 5, [1], 2);
    const prefix = streamObjectPrefix('race', 5, 'aaaaaaaaaaaa');
    let raced = false;
    // The collector's move, right after the LIST: a newer version (a tombstone) lands and v1 goes.
    const store = new Proxy(memory, {
      get(target, name) {
        if (name !== 'get') {
          const value = Reflect.get(target, name) as unknown;
          return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
        }
        return async (key: string, ...rest: unknown[]) => {
          if (!raced && key === manifestKey(prefix, 1)) {
            raced = true;
            const tombstone = manifest('race', 5, 2, 0);
            tombstone.stream = { ...tombstone.stream!, deleted: 'hard' };
            await target.put(manifestKey(prefix, 2), encodeManifest(tombstone));
            await target.delete(manifestKey(prefix, 1));
          }
          return (target.get as (...args: unknown[]) => unknown).call(target, key, ...rest);
        };
      },
    });
    const { found } = await lookUpPath(store, 'race');
    expect(raced).toBe(true);
    expect(found?.manifest.version).toBe(2);
    expect(found?.manifest.stream?.deleted).toBe('hard');
  });
});
