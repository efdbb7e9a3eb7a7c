import { describe, expect, test } from 'vitest';
import type { SegmentRef } from '../../src/manifest/manifest.ts';
import { ManifestStore } from '../../src/manifest/manifest-store.ts';
import { ObjectNaming } from '../../src/manifest/object-naming.ts';
import { FaultInjectingObjectStore, injectedUnavailable, MemoryObjectStore } from '../../src/object-store/index.ts';
import { GoneError } from '../../src/protocol/errors.ts';
import { ReadPath, unitAt } from '../../src/read-path/read-path.ts';
import { SegmentCache } from '../../src/read-path/segment-cache.ts';
import { createStream, memoryRegistry } from '../support/registry.ts';

const BODY = Buffer.from(Array.from({ length: 100 }, (_, i) => 65 + (i % 26))); // 100 bytes

/**
 * A stream holding BODY whose [0, 40) and [40, 80) are sealed (read units of 20 bytes) and whose
 * [80, 100) is the hot tail; a read path with `chunkBytesMax`.
 */
async function setup(chunkBytesMax: number, catchUpBytesMax?: number) {
  const { registry } = memoryRegistry();
  const memory = new MemoryObjectStore();
  const store = new FaultInjectingObjectStore(memory);
  const naming = new ObjectNaming('a1b2c3d4e5f6');
  const manifests = new ManifestStore({ store, naming });
  const stream = await createStream(registry, '/s', BODY);
  const segments: SegmentRef[] = [
    { start: 0, end: 40, unitEnds: [20, 40], sealedAtMs: 0 },
    { start: 40, end: 80, unitEnds: [60, 80], sealedAtMs: 0 },
  ];
  for (const segment of segments) await manifests.putSegment(stream, segment, BODY.subarray(segment.start, segment.end));
  const { version } = await manifests.storeNext(stream, segments, 0);
  for (const segment of segments) await registry.commitSeal(stream, segment, version);
  const cache = new SegmentCache(store, 1 << 20);
  const reads = new ReadPath({ registry, cache, naming, chunkBytesMax, catchUpBytesMax });
  return { registry, store, stream, cache, reads };
}

describe('read path', () => {
  test('a read runs from segments into the hot tail, byte-exact, and is not immutable', async () => {
    const { stream, reads } = await setup(1000);
    expect(stream.sealedOffset).toBe(80);
    const result = await reads.read(stream, 0);
    expect(Buffer.concat(result.body).equals(BODY)).toBe(true);
    expect(result).toMatchObject({ bodyBytes: 100, end: 100, immutable: false });
  });

  test('a read in sealed data ends on a unit boundary when the next unit does not fit: immutable', async () => {
    const { stream, reads } = await setup(30);
    const first = await reads.read(stream, 0);
    expect(first).toMatchObject({ end: 20, immutable: true, bodyBytes: 20 });
    // From inside a unit: the rest of it, then whole units while they fit.
    const second = await reads.read(stream, 25);
    expect(second).toMatchObject({ end: 40, immutable: true });
    expect(Buffer.concat(second.body).equals(BODY.subarray(25, 40))).toBe(true);
    // The last sealed unit runs on into the hot tail: it may still change.
    const third = await reads.read(stream, 60);
    expect(third).toMatchObject({ end: 90, immutable: false });
    expect(Buffer.concat(third.body).equals(BODY.subarray(60, 90))).toBe(true);
  });

  test('open: a catch-up response spans units up to its budget and fetches only the first before its body is read', async () => {
    const { stream, reads, cache } = await setup(20, 1000);
    const result = await reads.open(stream, 0);
    expect(result).toMatchObject({ bodyBytes: 100, end: 100, immutable: false });
    expect(cache.stats().misses).toBe(1);
    const parts: Buffer[] = [];
    for await (const part of result.body()) parts.push(part);
    expect(Buffer.concat(parts).equals(BODY)).toBe(true);
    expect(cache.stats().misses).toBe(4); // units [0,20) [20,40) [40,60) [60,80), one GET each
    // Sealed only, budget 50: whole units while they fit, then a deterministic, immutable end.
    const { stream: again, reads: small } = await setup(20, 50);
    expect(await small.open(again, 5)).toMatchObject({ bodyBytes: 35, end: 40, immutable: true });
  });

  test('identical concurrent reads in sealed data share one response', async () => {
    const { stream, reads } = await setup(30);
    const [a, b, c] = await Promise.all([reads.read(stream, 0), reads.read(stream, 0), reads.read(stream, 20)]);
    expect(a).toBe(b);
    expect(c.end).toBe(40);
    expect(reads.collapsedReads).toBe(1);
    expect(reads.responsesBuilt).toBe(2);
  });

  test('reads in the hot tail are not collapsed', async () => {
    const { stream, reads } = await setup(1000);
    await Promise.all([reads.read(stream, 90), reads.read(stream, 90)]);
    expect(reads.collapsedReads).toBe(0);
    expect(reads.responsesBuilt).toBe(2);
  });

  test('a read below the retained start is Gone', async () => {
    const { registry, stream, reads } = await setup(1000);
    await registry.commitTrim(stream, 40, stream.manifestVersion + 1);
    await expect(reads.read(stream, 0)).rejects.toBeInstanceOf(GoneError);
    expect((await reads.read(stream, 40)).end).toBe(100);
  });

  test('an object store that cannot be reached fails the read with a retryable 503 error', async () => {
    const { store, stream, reads } = await setup(1000);
    store.inject({ when: (call) => call.operation === 'get', action: { kind: 'fail', error: injectedUnavailable } });
    await expect(reads.read(stream, 0)).rejects.toMatchObject({ statusCode: 503, retryable: true });
    // The hot tail is still served.
    expect((await reads.read(stream, 80)).end).toBe(100);
  });

  test('unitRest: the rest of the sealed unit holding a position', async () => {
    const { stream, reads } = await setup(1000);
    expect((await reads.unitRest(stream, 45)).equals(BODY.subarray(45, 60))).toBe(true);
    expect((await reads.unitRest(stream, 60)).equals(BODY.subarray(60, 80))).toBe(true);
  });

  test('unitAt finds the read unit of a position', () => {
    const segment: SegmentRef = { start: 100, end: 200, unitEnds: [150, 180, 200], sealedAtMs: 0 };
    expect(unitAt(segment, 100)).toEqual({ start: 100, end: 150 });
    expect(unitAt(segment, 150)).toEqual({ start: 150, end: 180 });
    expect(unitAt(segment, 199)).toEqual({ start: 180, end: 200 });
    expect(() => unitAt(segment, 200)).toThrow(RangeError);
  });
});
