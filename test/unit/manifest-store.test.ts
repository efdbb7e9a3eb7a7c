import { describe, expect, test } from 'vitest';
import { decodeManifest, encodeManifest, type SegmentRef } from '../../src/manifest/manifest.ts';
import { ManifestStore, StreamFencedError, type ReconcileSubject } from '../../src/manifest/manifest-store.ts';
import { ObjectNaming } from '../../src/manifest/object-naming.ts';
import { FaultInjectingObjectStore, MemoryObjectStore, type ObjectStoreCall } from '../../src/object-store/index.ts';

const NODE_ID = 'a1b2c3d4e5f6';

/** A stream's view as the manifest store sees it; `wal` holds its bytes from position 0. */
function subject(overrides: Partial<ReconcileSubject> = {}): ReconcileSubject {
  return { path: '/s', incarnation: 7, contentType: 'text/plain', fork: undefined, manifestVersion: 0, sealedOffset: 0, durableOffset: 0, ...overrides };
}

function segment(start: number, end: number): SegmentRef {
  return { start, end, unitEnds: [end], sealedAtMs: 1_000 };
}

const wal = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz');
const walBytes = (start: number, end: number): Buffer => wal.subarray(start, end);

/** A manifest store over a memory store, recording every call that reaches the store. */
function setup(nodeId = NODE_ID) {
  const memory = new MemoryObjectStore();
  const calls: ObjectStoreCall[] = [];
  const store = new FaultInjectingObjectStore(memory);
  store.inject({ when: (call) => (calls.push(call), false), action: { kind: 'hang' } });
  const manifests = new ManifestStore({ store, naming: new ObjectNaming(nodeId) });
  return { memory, store, calls, manifests };
}

/** Seals `[start, end)` of `stream` as a sealer would: segment first, then the next manifest (the stored one's segments carry over). */
async function seal(manifests: ManifestStore, stream: ReconcileSubject, start: number, end: number) {
  await manifests.putSegment(stream, { start, end }, walBytes(start, end));
  return manifests.storeNext(stream, [segment(start, end)], 0);
}

describe('naming', () => {
  test('a LIST returns segments in offset order, then manifests in version order', async () => {
    const { memory, manifests } = setup();
    const stream = subject();
    const keys = [
      manifests.naming.manifest(stream, 10),
      manifests.naming.segment(stream, { start: 1_000, end: 20_000 }),
      manifests.naming.manifest(stream, 2),
      manifests.naming.segment(stream, { start: 0, end: 9 }),
      manifests.naming.segment(stream, { start: 9, end: 1_000 }),
    ];
    for (const key of keys) await memory.put(key, new Uint8Array([1]));
    const listed = (await memory.list({ prefix: manifests.naming.prefix(stream) })).objects.map((object) => object.key);
    expect(listed).toEqual([keys[3], keys[4], keys[1], keys[2], keys[0]]);
  });

  test('keys name the stream, its incarnation and the node; prefixes never mix', () => {
    const naming = new ObjectNaming(NODE_ID);
    const a = naming.prefix(subject());
    expect(a).toMatch(new RegExp(`^[0-9a-f]{2}/[0-9a-f]{32}/0000000000000007-${NODE_ID}/$`));
    expect(naming.prefix(subject({ incarnation: 8 }))).not.toBe(a);
    expect(naming.prefix(subject({ path: '/t' }))).not.toBe(a);
    expect(new ObjectNaming('0123456789ab').prefix(subject())).not.toBe(a);
  });
});

describe('the fence', () => {
  test('versions are stored one after the other, each listing its segments', async () => {
    const { memory, manifests } = setup();
    const first = await seal(manifests, subject(), 0, 10);
    expect(first.version).toBe(1);
    const second = await seal(manifests, subject({ manifestVersion: 1 }), 10, 20);
    expect(second).toEqual({ version: 2, key: manifests.naming.manifest(subject(), 2) });
    const stored = decodeManifest(second.key, (await memory.get(second.key)).body);
    expect(stored).toMatchObject({ path: '/s', incarnation: 7, nodeId: NODE_ID, contentType: 'text/plain', version: 2, retainedStart: 0 });
    expect(stored.segments.map((s) => [s.start, s.end])).toEqual([
      [0, 10],
      [10, 20],
    ]);
  });

  test('a second writer of a version loses', async () => {
    const { manifests } = setup();
    const writer = subject();
    await manifests.storeNext(writer, [segment(0, 10)], 0);
    // Another process on the same data directory, believing version 1 is still free.
    await expect(manifests.storeNext(writer, [segment(0, 12)], 0)).rejects.toBeInstanceOf(StreamFencedError);
    await expect(manifests.storeNext(writer, [segment(0, 10)], 5)).rejects.toBeInstanceOf(StreamFencedError);
  });

  test('an identical version already stored is our own earlier attempt: accepted', async () => {
    const { manifests, calls } = setup();
    const writer = subject();
    await manifests.storeNext(writer, [segment(0, 10)], 0);
    calls.length = 0;
    await expect(manifests.storeNext(writer, [segment(0, 10)], 0)).resolves.toMatchObject({ version: 1 });
    // The put was refused, then the stored object read back and compared.
    expect(calls.map((call) => call.operation)).toEqual(['put', 'get']);
  });

  test('a segment key holding other bytes fences; the same bytes are accepted', async () => {
    const { manifests } = setup();
    const stream = subject();
    await manifests.putSegment(stream, { start: 0, end: 4 }, Buffer.from('abcd'));
    await expect(manifests.putSegment(stream, { start: 0, end: 4 }, Buffer.from('abcd'))).resolves.toBe(manifests.naming.segment(stream, { start: 0, end: 4 }));
    await expect(manifests.putSegment(stream, { start: 0, end: 4 }, Buffer.from('abce'))).rejects.toBeInstanceOf(StreamFencedError);
  });

  test('a fork records its source incarnation and position', async () => {
    const { memory, manifests } = setup();
    const fork = subject({ incarnation: 9, fork: { source: { incarnation: 7 }, position: 5 } });
    const { key } = await manifests.storeNext(fork, [segment(5, 10)], 5);
    expect(decodeManifest(key, (await memory.get(key)).body).fork).toEqual({ incarnation: 7, position: 5 });
  });
});

describe('adoption after a restart', () => {
  test('a manifest the WAL never heard of is adopted, its objects put again create-if-absent', async () => {
    const { manifests, calls } = setup();
    await seal(manifests, subject(), 0, 10);
    await seal(manifests, subject({ manifestVersion: 1 }), 10, 20);
    // The restarted process knows version 1 (its seal record survived), not version 2.
    calls.length = 0;
    const found = await manifests.reconcile(subject({ manifestVersion: 1, sealedOffset: 10, durableOffset: 30 }), walBytes);
    expect(found.adopt).toMatchObject({ version: 2, retainedStart: 0, segments: [segment(10, 20)] });
    expect(found.supersededKeys).toEqual([manifests.naming.manifest(subject(), 1)]);
    expect(found.orphanKeys).toEqual([]);
    expect(found.discardedKeys).toEqual([]);
    // Through the shared path: the refused puts of the segment and the manifest, each read back.
    const puts = calls.filter((call) => call.operation === 'put').map((call) => call.key);
    expect(puts).toEqual([manifests.naming.segment(subject(), { start: 10, end: 20 }), manifests.naming.manifest(subject(), 2)]);
  });

  test('an adopted segment missing from the store is stored again from the WAL', async () => {
    const { memory, manifests } = setup();
    await seal(manifests, subject(), 0, 10);
    const segmentKey = manifests.naming.segment(subject(), { start: 0, end: 10 });
    await memory.delete(segmentKey);
    const found = await manifests.reconcile(subject({ durableOffset: 10 }), walBytes);
    expect(found.adopt?.segments).toEqual([segment(0, 10)]);
    expect(Buffer.from((await memory.get(segmentKey)).body).toString()).toBe('0123456789');
  });

  test('an adopted segment whose bytes differ from the WAL fences', async () => {
    const { memory, manifests } = setup();
    await seal(manifests, subject(), 0, 10);
    const segmentKey = manifests.naming.segment(subject(), { start: 0, end: 10 });
    await memory.put(segmentKey, Buffer.from('xxxxxxxxxx'), { overwrite: true });
    await expect(manifests.reconcile(subject({ durableOffset: 10 }), walBytes)).rejects.toBeInstanceOf(StreamFencedError);
  });

  test('segment objects no manifest lists are deleted', async () => {
    const { memory, manifests } = setup();
    await seal(manifests, subject(), 0, 10);
    await manifests.putSegment(subject(), { start: 10, end: 20 }, walBytes(10, 20)); // its manifest never stored
    const found = await manifests.reconcile(subject({ manifestVersion: 1, sealedOffset: 10, durableOffset: 20 }), walBytes);
    expect(found.adopt).toBeUndefined();
    expect(found.orphanKeys).toEqual([manifests.naming.segment(subject(), { start: 10, end: 20 })]);
    expect(memory.objectCount).toBe(2); // segment [0, 10) and manifest 1
  });

  test('a manifest ahead of the WAL bytes is discarded with its segments', async () => {
    const { memory, manifests } = setup();
    await seal(manifests, subject(), 0, 10);
    // The WAL (with --durability memory) lost everything after position 4.
    const found = await manifests.reconcile(subject({ durableOffset: 4 }), walBytes);
    expect(found.adopt).toBeUndefined();
    expect(found.discardedKeys).toEqual([manifests.naming.manifest(subject(), 1)]);
    expect(found.orphanKeys).toEqual([manifests.naming.segment(subject(), { start: 0, end: 10 })]);
    expect(memory.objectCount).toBe(0);
  });

  test("a manifest of another incarnation or node under the stream's prefix fences", async () => {
    const { memory, manifests } = setup();
    const key = manifests.naming.manifest(subject(), 1);
    const foreign = { format: 1 as const, path: '/s', incarnation: 7, nodeId: '0123456789ab', contentType: 'text/plain', version: 1, retainedStart: 0, segments: [] };
    await memory.put(key, encodeManifest(foreign));
    await expect(manifests.reconcile(subject({ durableOffset: 10 }), walBytes)).rejects.toBeInstanceOf(StreamFencedError);
    await memory.put(key, encodeManifest({ ...foreign, nodeId: NODE_ID, incarnation: 6 }), { overwrite: true });
    await expect(manifests.reconcile(subject({ durableOffset: 10 }), walBytes)).rejects.toBeInstanceOf(StreamFencedError);
  });

  test('nothing stored: nothing to do', async () => {
    const { manifests } = setup();
    expect(await manifests.reconcile(subject({ durableOffset: 10 }), walBytes)).toEqual({
      adopt: undefined,
      discardedKeys: [],
      supersededKeys: [],
      orphanKeys: [],
    });
  });
});
