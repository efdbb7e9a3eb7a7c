/**
 * Manifest pages (src/manifest/manifest-pages.ts, docs/storage-layout.md "Manifest pages"): the
 * layout invariants of `nextLayout`, readers across pages and retention, format-1 manifests still
 * read, and the history-scale property — with 100,000 segments generated directly in the memory
 * store, the bytes written per seal and the objects read to locate a random offset stay bounded by
 * the same numbers as at 10,000 (counts of store calls, not times).
 */
import { describe, expect, test } from 'vitest';
import { MANIFEST_PAGE_ENTRIES } from '../../src/config/limits.ts';
import { decodeManifest, encodeManifest, type Manifest, type SegmentRef } from '../../src/manifest/manifest.ts';
import { locateSegment, nextLayout, segmentsFrom, type HeadLayout } from '../../src/manifest/manifest-pages.ts';
import { ManifestStore, type ReconcileSubject } from '../../src/manifest/manifest-store.ts';
import { ObjectNaming } from '../../src/manifest/object-naming.ts';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { verifyStore } from '../../src/manifest/store-verify.ts';
import { FaultInjectingObjectStore, MemoryObjectStore, type ObjectStoreCall } from '../../src/object-store/index.ts';
import { seededRandom } from '../../src/clock.ts';
import { unitChecksum } from '../../src/manifest/unit-checksum.ts';

const SEGMENT_BYTES = 1_000;
/** Segment objects in these tests hold zeros: two read units of 500 zero bytes each. */
const ZEROS_SHA = unitChecksum(new Uint8Array(SEGMENT_BYTES / 2));

function segment(index: number): SegmentRef {
  const start = index * SEGMENT_BYTES;
  const end = start + SEGMENT_BYTES;
  return { start, end, unitEnds: [start + SEGMENT_BYTES / 2, end], sealedAtMs: 1_764_000_000_000 + index, unitSha256: [ZEROS_SHA, ZEROS_SHA] };
}

function setup() {
  const memory = new MemoryObjectStore();
  const calls: ObjectStoreCall[] = [];
  const store = new FaultInjectingObjectStore(memory);
  store.inject({ when: (call) => (calls.push(call), false), action: { kind: 'hang' } });
  const manifests = new ManifestStore({ store, naming: new ObjectNaming('a1b2c3d4e5f6') });
  const stream: ReconcileSubject & { manifestVersion: number } = {
    path: '/history',
    incarnation: 7,
    contentType: 'application/octet-stream',
    fork: undefined,
    manifestVersion: 0,
    sealedOffset: 0,
    durableOffset: 0,
  };
  return { memory, store, calls, manifests, stream, prefix: manifests.naming.prefix(stream) };
}

/** Stores the next version with `added`, deleting the superseded one as the collector would. */
async function storeNext(setupState: ReturnType<typeof setup>, added: SegmentRef[], retainedStart = 0) {
  const { manifests, stream, memory } = setupState;
  const stored = await manifests.storeNext(stream, added, retainedStart);
  if (stream.manifestVersion > 0) await memory.delete(manifests.naming.manifest(stream, stream.manifestVersion));
  stream.manifestVersion = stored.version;
  return stored;
}

describe('nextLayout', () => {
  test('a head holds fewer than a page of segments and of references per level, and covers every segment in order', () => {
    const perPage = 4;
    let layout: HeadLayout = { pages: [], segments: [] };
    const written = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const next = nextLayout(layout, [segment(i)], 0, perPage);
      for (const page of next.newPages) {
        const key = `${page.level}-${page.start}-${page.end}`;
        expect(written.has(key), `page ${key} written twice`).toBe(false);
        written.set(key, page.level);
      }
      layout = next.layout;
      expect(layout.segments.length).toBeLessThan(perPage);
      const perLevel = new Map<number, number>();
      for (const ref of layout.pages) perLevel.set(ref.level, (perLevel.get(ref.level) ?? 0) + 1);
      for (const count of perLevel.values()) expect(count).toBeLessThan(perPage);
      // Levels never increase along the list (oldest, widest pages first) and ranges are contiguous.
      let at = 0;
      for (const [j, ref] of layout.pages.entries()) {
        expect(ref.start).toBe(at);
        if (j > 0) expect(ref.level).toBeLessThanOrEqual(layout.pages[j - 1].level);
        expect(ref.segmentCount).toBe((ref.end - ref.start) / SEGMENT_BYTES);
        at = ref.end;
      }
      expect(layout.segments[0]?.start ?? at).toBe(at);
    }
    // 300 = 4^4 + 2·4^2 + 3·4 + 0: one level-4 reference, two level-3 ... and no recent segments.
    expect(layout.pages.map((ref) => ref.level)).toEqual([4, 2, 2, 1, 1, 1]);
  });

  test('retention drops whole pages; a page partly below the retained start stays', () => {
    let layout: HeadLayout = { pages: [], segments: [] };
    layout = nextLayout(layout, Array.from({ length: 10 }, (_, i) => segment(i)), 0, 4).layout;
    expect(layout.pages.map((ref) => [ref.level, ref.start, ref.end])).toEqual([[1, 0, 4_000], [1, 4_000, 8_000]]);
    const trimmed = nextLayout(layout, [], 5_500, 4).layout;
    expect(trimmed.pages.map((ref) => [ref.start, ref.end])).toEqual([[4_000, 8_000]]);
    expect(trimmed.segments.map((s) => s.start)).toEqual([8_000, 9_000]);
  });
});

describe('the manifest store with pages', () => {
  test('readers see every segment across pages; lookup, retention and verify work; format-1 manifests still read', async () => {
    const state = setup();
    const count = MANIFEST_PAGE_ENTRIES * MANIFEST_PAGE_ENTRIES + 5 * MANIFEST_PAGE_ENTRIES + 3;
    for (let i = 0; i < count; i += 100) await storeNext(state, Array.from({ length: Math.min(100, count - i) }, (_, j) => segment(i + j)));
    for (let i = 0; i < count; i++) await state.memory.put(state.manifests.naming.segment(state.stream, segment(i)), new Uint8Array(SEGMENT_BYTES));
    const key = state.manifests.naming.manifest(state.stream, state.stream.manifestVersion);
    const head = decodeManifest(key, (await state.memory.get(key)).body);
    expect(head.format).toBe(2);
    expect(head.pages?.map((ref) => ref.level)).toEqual([2, 1, 1, 1, 1, 1]);
    expect(head.segments).toHaveLength(3);
    const all = await segmentsFrom(state.memory, state.prefix, head);
    expect(all).toHaveLength(count);
    expect(all.every((s, i) => s.start === i * SEGMENT_BYTES)).toBe(true);
    expect(await locateSegment(state.memory, state.prefix, head, 123 * SEGMENT_BYTES + 7)).toEqual(segment(123));
    expect(await locateSegment(state.memory, state.prefix, head, count * SEGMENT_BYTES)).toBeUndefined();

    const found = (await lookUpPath(state.memory, '/history')).found;
    expect(found?.manifest.segments).toHaveLength(count);
    expect(found?.manifest.pages).toBeUndefined();

    // Retention past the first level-2 page's start: the page stays (partly retained), readers start above.
    const retainedStart = 100 * SEGMENT_BYTES + 1;
    const trim = await storeNext(state, [], retainedStart);
    expect(trim.droppedPageKeys).toBeUndefined();
    const trimmedKey = state.manifests.naming.manifest(state.stream, state.stream.manifestVersion);
    const trimmed = decodeManifest(trimmedKey, (await state.memory.get(trimmedKey)).body);
    expect((await segmentsFrom(state.memory, state.prefix, trimmed, trimmed.retainedStart))[0]).toEqual(segment(100));
    // Past the whole level-2 page: it and its 64 level-1 pages are let go.
    const beyond = await storeNext(state, [], MANIFEST_PAGE_ENTRIES * MANIFEST_PAGE_ENTRIES * SEGMENT_BYTES + 1);
    expect(beyond.droppedPageKeys).toHaveLength(1 + MANIFEST_PAGE_ENTRIES);
    for (const page of beyond.droppedPageKeys ?? []) await state.memory.delete(page);
    for (let i = 0; i < MANIFEST_PAGE_ENTRIES * MANIFEST_PAGE_ENTRIES; i++) await state.memory.delete(state.manifests.naming.segment(state.stream, segment(i)));
    expect((await verifyStore(state.memory)).problems).toEqual([]);
    expect((await lookUpPath(state.memory, '/history')).found?.manifest.segments[0]).toEqual(segment(MANIFEST_PAGE_ENTRIES * MANIFEST_PAGE_ENTRIES));

    // A missing page is a problem for verify.
    const [firstPage] = (await state.memory.list({ prefix: `${state.prefix}page-` })).objects;
    await state.memory.delete(firstPage.key);
    expect((await verifyStore(state.memory)).problems.join('\n')).toContain('manifest page that is missing');
  });

  test('a format-1 manifest with many segments is read, and the next seal moves its old segments into pages', async () => {
    const state = setup();
    const segments = Array.from({ length: 200 }, (_, i) => segment(i));
    const old: Manifest = { format: 1, path: '/history', incarnation: 7, nodeId: 'a1b2c3d4e5f6', contentType: 'application/octet-stream', version: 1, retainedStart: 0, segments };
    await state.memory.put(state.manifests.naming.manifest(state.stream, 1), encodeManifest(old));
    expect((await lookUpPath(state.memory, '/history')).found?.manifest.segments).toHaveLength(200);
    state.stream.manifestVersion = 1;
    await storeNext(state, [segment(200)]);
    const key = state.manifests.naming.manifest(state.stream, 2);
    const head = decodeManifest(key, (await state.memory.get(key)).body);
    expect(head.pages).toHaveLength(3);
    expect(head.segments).toHaveLength(201 - 3 * MANIFEST_PAGE_ENTRIES);
    expect(await segmentsFrom(state.memory, state.prefix, head)).toEqual([...segments, segment(200)]);
  });
});

test('history scale: bytes written per seal and objects read per random-offset lookup stay bounded from 10,000 to 100,000 segments', async () => {
  const state = setup();
  const random = seededRandom(13);
  /** Seals `sealCount` single segments at the current end; returns the bytes each wrote and the store reads per lookup. */
  const measure = async (segmentCount: number, sealCount: number) => {
    const putBytes: number[] = [];
    for (let i = 0; i < sealCount; i++) {
      state.calls.length = 0;
      await storeNext(state, [segment(segmentCount + i)]);
      putBytes.push(state.calls.filter((call) => call.operation === 'put').reduce((sum, call) => sum + (call.body?.length ?? 0), 0));
    }
    const key = state.manifests.naming.manifest(state.stream, state.stream.manifestVersion);
    const reads: number[] = [];
    for (let i = 0; i < 200; i++) {
      const index = Math.floor(random.next() * (segmentCount + sealCount));
      state.calls.length = 0;
      const head = decodeManifest(key, (await state.store.get(key)).body);
      expect(await locateSegment(state.store, state.prefix, head, index * SEGMENT_BYTES + 1)).toEqual(segment(index));
      reads.push(state.calls.filter((call) => call.operation === 'get').length);
    }
    return { putBytesMax: Math.max(...putBytes), putBytesMean: putBytes.reduce((a, b) => a + b, 0) / putBytes.length, readsMax: Math.max(...reads) };
  };
  const sealCount = MANIFEST_PAGE_ENTRIES * 2; // two whole page cycles: the mean covers the sawtooth
  let count = 0;
  const grow = async (target: number) => {
    for (; count < target; count += 1_000) await storeNext(state, Array.from({ length: Math.min(1_000, target - count) }, (_, j) => segment(count + j)));
  };
  await grow(10_000);
  const small = await measure(count, sealCount);
  count += sealCount;
  await grow(100_000);
  const large = await measure(count, sealCount);
  count += sealCount;
  // Head plus at most one page per level: the 10,000- and 100,000-segment histories both have two
  // levels of pages (64^2 = 4,096 ≤ n < 64^3), so both take at most 1 + 2 reads.
  expect(small.readsMax).toBeLessThanOrEqual(3);
  expect(large.readsMax).toBe(small.readsMax);
  // A format-1 manifest of 100,000 such segments is about 13 MB per seal; a head stays within
  // MANIFEST_PAGE_ENTRIES - 1 recent segments and as many references per level.
  const bound = (MANIFEST_PAGE_ENTRIES - 1) * (JSON.stringify(segment(count)).length + 1) * 2 + 2 * (MANIFEST_PAGE_ENTRIES - 1) * 120 + 1_000;
  expect(large.putBytesMax).toBeLessThan(bound);
  expect(small.putBytesMax).toBeLessThan(bound);
  // Constant in the count: the mean per seal at 100,000 is within a quarter of the one at 10,000
  // (the difference is how full the level-2 references are, not the history's length).
  expect(large.putBytesMean).toBeLessThan(small.putBytesMean * 1.25);
  console.log(`history scale: bytes per seal (mean/max) at 10k ${Math.round(small.putBytesMean)}/${small.putBytesMax}, at 100k ${Math.round(large.putBytesMean)}/${large.putBytesMax}; reads per lookup (max, head included) ${small.readsMax}/${large.readsMax}`);
}, 120_000);
