import { afterEach, describe, expect, test, vi } from 'vitest';
import { pino } from 'pino';
import { decodeManifest } from '../../src/manifest/manifest.ts';
import { ManifestStore } from '../../src/manifest/manifest-store.ts';
import { parseStreamObjectKey } from '../../src/manifest/object-keys.ts';
import { ObjectNaming } from '../../src/manifest/object-naming.ts';
import { FaultInjectingObjectStore, injectedUnavailable, MemoryObjectStore, type ObjectStore } from '../../src/object-store/index.ts';
import { StreamRegistry } from '../../src/stream/registry.ts';
import { ObjectCollector } from '../../src/tiering/object-collector.ts';
import { SealActivity } from '../../src/tiering/seal-activity.ts';
import { Sealer } from '../../src/tiering/sealer.ts';
import { METADATA_FLUSH_MS_DEFAULT } from '../../src/config/limits.ts';
import { appendTo, createStream, memoryRegistry, replayedRegistry } from '../support/registry.ts';
import { MemoryRecordLog, testClock, type ManualClock } from '../support/record-log.ts';

const NODE_ID = 'a1b2c3d4e5f6';
const logger = pino({ level: 'silent' });
const BODY = Buffer.from('x'.repeat(40) + 'y'.repeat(40) + 'z'.repeat(20)); // 100 bytes

const sealers: Sealer[] = [];
afterEach(async () => {
  await Promise.all(sealers.splice(0).map((sealer) => sealer.close()));
});

/** A sealer over `store` that seals 40-byte segments as soon as bytes are durable. */
function sealerFor(
  registry: StreamRegistry,
  store: ObjectStore,
  clock: ManualClock,
  policy = { segmentSizeBytes: 40, sealIdleMs: 0, unsealedAgeMsMax: 3_600_000 },
  metadataFlushMs?: number,
) {
  const seals = new SealActivity();
  const naming = new ObjectNaming(NODE_ID);
  const collector = new ObjectCollector({ store, logger, seals, clock, recordsDurable: () => registry.recordsDurable() });
  const sealer = new Sealer({
    registry,
    manifests: new ManifestStore({ store, naming }),
    collector,
    seals,
    clock,
    logger,
    policy,
    chunkBytesMax: 1024,
    hotTailBudgetBytes: 1 << 20,
    retention: {},
    uploadsMax: 4,
    metadataFlushMs,
  });
  sealers.push(sealer);
  return { sealer, seals, naming, collector };
}

/** Keys of `kind` in the store, in LIST order. */
async function storedKeys(store: MemoryObjectStore, kind: 'segment' | 'manifest'): Promise<string[]> {
  const keys: string[] = [];
  for (const { key } of (await store.list({ prefix: '' })).objects) {
    const prefix = key.slice(0, key.lastIndexOf('/') + 1);
    if (parseStreamObjectKey(prefix, key)?.kind === kind) keys.push(key);
  }
  return keys;
}

describe('sealer', () => {
  test('seals durable bytes into segments and publishes them in the manifest and the WAL', async () => {
    const clock = testClock();
    const { registry, log } = memoryRegistry(clock);
    const store = new MemoryObjectStore();
    const { sealer, collector } = sealerFor(registry, store, clock);
    const stream = await createStream(registry, '/s', BODY);
    sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    expect(stream.segments.map((s) => [s.start, s.end])).toEqual([
      [0, 40],
      [40, 80],
      [80, 100],
    ]);
    expect(stream.hotTail.sizeBytes).toBe(0);
    expect(sealer.stats).toMatchObject({ segmentsWritten: 3, sealedBytes: 100, failures: 0, segmentsAdopted: 0 });
    const segments = await storedKeys(store, 'segment');
    expect(segments).toHaveLength(3);
    const bodies = await Promise.all(segments.map(async (key) => Buffer.from((await store.get(key)).body)));
    expect(Buffer.concat(bodies).equals(BODY)).toBe(true);
    // Every seal record names the manifest version that lists its segment.
    const seals = log.records.filter((record) => record.t === 'seal');
    expect(seals.map((record) => record.segment.end)).toEqual([40, 80, 100]);
    await collector.drained();
    const manifests = await storedKeys(store, 'manifest');
    expect(manifests).toHaveLength(1); // superseded versions were collected
    const manifest = decodeManifest(manifests[0], (await store.get(manifests[0])).body);
    expect(manifest.version).toBe(stream.manifestVersion);
    expect(manifest.segments).toEqual(stream.segments);
  });

  test('seal lag is the age of the oldest unsealed byte, 0 once everything is sealed', async () => {
    const clock = testClock();
    const { registry } = memoryRegistry(clock);
    const { sealer } = sealerFor(registry, new MemoryObjectStore(), clock, { segmentSizeBytes: 1 << 20, sealIdleMs: 3_600_000, unsealedAgeMsMax: 3_600_000 });
    expect(sealer.sealLagMs()).toBe(0);
    const older = await createStream(registry, '/older', 'abc');
    sealer.durable(older);
    clock.advance(5_000);
    const newer = await createStream(registry, '/newer', 'def');
    sealer.durable(newer);
    clock.advance(2_000);
    expect(sealer.sealLagMs()).toBe(7_000);
  });

  test('a close that arrives while its seal stores the manifest still reaches the stored metadata', async () => {
    const clock = testClock();
    const { registry } = memoryRegistry(clock);
    const memory = new MemoryObjectStore();
    const store = new FaultInjectingObjectStore(memory);
    const { sealer } = sealerFor(registry, store, clock, undefined, METADATA_FLUSH_MS_DEFAULT);
    sealer.start();
    const stream = await createStream(registry, '/c', BODY.subarray(0, 80)); // two segments, one seal
    // The seal's manifest PUT hangs: the close is applied after the manifest's metadata was taken.
    store.inject({ when: (call) => call.operation === 'put' && call.key.includes('manifest-'), action: { kind: 'hang' }, times: 1 });
    sealer.durable(stream);
    await vi.waitFor(() => expect(store.hungCount).toBe(1), { timeout: 10_000 });
    await appendTo(registry, '/c', '', true);
    store.releaseHung();
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(80), { timeout: 10_000 });
    expect(stream.sealedView.closed).toBe(true);
    expect(stream.metaDirty).toBe(true); // the manifest that sealed [0, 80) does not say closed
    clock.advance(METADATA_FLUSH_MS_DEFAULT);
    await vi.waitFor(async () => {
      clock.advance(100); // sealer ticks: the flush starts once the seal has finished
      const newest = (await storedKeys(memory, 'manifest')).at(-1) ?? '';
      expect(decodeManifest(newest, (await memory.get(newest)).body).stream?.closed).toBe(true);
    }, { timeout: 10_000 });
  });

  test('a failed seal is retried after its backoff, and the retry probes first', async () => {
    const clock = testClock();
    const { registry } = memoryRegistry(clock);
    const memory = new MemoryObjectStore();
    const store = new FaultInjectingObjectStore(memory);
    // The first segment put lands, but its answer is lost: the retry finds it already stored.
    const fault = store.inject({ when: (call) => call.operation === 'put', action: { kind: 'fail', error: injectedUnavailable, phase: 'after' }, times: 1 });
    const { sealer, seals } = sealerFor(registry, store, clock);
    const stream = await createStream(registry, '/s', BODY);
    sealer.start();
    sealer.durable(stream);
    await vi.waitFor(() => expect(fault.hitCount).toBe(1), { timeout: 10_000 });
    await seals.idle(stream.incarnation);
    expect(sealer.stats.failures).toBe(1);
    expect(stream.needsProbe).toBe(true);
    clock.advance(60_000); // past any backoff
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    expect(sealer.stats.failures).toBe(1);
    expect(stream.needsProbe).toBe(false);
    const bodies = await Promise.all((await storedKeys(memory, 'segment')).map(async (key) => Buffer.from((await memory.get(key)).body)));
    expect(Buffer.concat(bodies).equals(BODY)).toBe(true);
  });

  test('after a crash that lost the seal records, a restart adopts the stored segments', async () => {
    const clock = testClock();
    const first = memoryRegistry(clock);
    const store = new MemoryObjectStore();
    const before = sealerFor(first.registry, store, clock);
    const stream = await createStream(first.registry, '/s', BODY);
    before.sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    await before.sealer.close();
    await before.collector.drained();
    const stored = (await store.list({ prefix: '' })).objects.map((object) => object.key);

    // The restart replays the WAL without the seal and trim records.
    const second = replayedRegistry(first.log.records, clock, (record) => record.t === 'seal' || record.t === 'trim');
    const restarted = second.registry.get('/s', { touch: false });
    expect(restarted.sealedOffset).toBe(0);
    expect(restarted.needsProbe).toBe(true);
    const after = sealerFor(second.registry, store, clock);
    after.sealer.durable(restarted);
    await vi.waitFor(() => expect(restarted.sealedOffset).toBe(100), { timeout: 10_000 });
    expect(after.sealer.stats).toMatchObject({ segmentsAdopted: 3, segmentsWritten: 0, orphansDeleted: 0, failures: 0 });
    expect(restarted.segments).toEqual(stream.segments);
    expect(restarted.manifestVersion).toBe(stream.manifestVersion);
    expect((await store.list({ prefix: '' })).objects.map((object) => object.key)).toEqual(stored);
  });

  test('a segment key holding other bytes fences the stream: it is never sealed again', async () => {
    const clock = testClock();
    const { registry } = memoryRegistry(clock);
    const memory = new MemoryObjectStore();
    const { sealer, seals, naming } = sealerFor(registry, memory, clock);
    const stream = await createStream(registry, '/s', BODY);
    // Another writer stored its own bytes under this stream's first segment key.
    await memory.put(naming.segment(stream, { start: 0, end: 40 }), Buffer.from('o'.repeat(40)));
    sealer.durable(stream);
    await seals.idle(stream.incarnation);
    expect(sealer.stats.failures).toBe(1);
    expect(stream.sealedOffset).toBe(0);
    clock.advance(60_000);
    sealer.durable(stream); // nothing starts for a fenced stream
    await seals.idle(stream.incarnation);
    expect(sealer.stats.failures).toBe(1);
    expect(await storedKeys(memory, 'manifest')).toEqual([]);
  });
});

describe('objects of a removed stream', () => {
  /** A registry wired to a sealer and a collector as src/server.ts wires them. */
  function wiredStack(clock: ManualClock, store: ObjectStore) {
    // The listener names the sealer and the collector, built after the registry (as in src/server.ts).

    const log = new MemoryRecordLog();
    const parts: { stack?: ReturnType<typeof sealerFor> } = {};
    const registry = new StreamRegistry({
      log,
      clock,
      listener: {
        durable: (stream) => parts.stack?.sealer.durable(stream),
        removed: (stream) => {
          parts.stack?.sealer.removed(stream);
          if (stream.manifestVersion > 0 || stream.needsProbe) parts.stack?.collector.deletePrefix(parts.stack.naming.prefix(stream), stream.incarnation);
        },
        segmentsDropped: (stream, segments) => parts.stack?.collector.deleteKeys(segments.map((s) => parts.stack!.naming.segment(stream, s))),
      },
    });
    parts.stack = sealerFor(registry, store, clock);
    return { registry, log, ...parts.stack };
  }

  test('stay until the delete record is durable: a crash that loses the delete finds every segment', async () => {
    const clock = testClock();
    const store = new MemoryObjectStore();
    const { registry, log, sealer, collector, naming } = wiredStack(clock, store);
    const stream = await createStream(registry, '/s', BODY);
    sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    await collector.drained();

    // The delete is applied (readers get 404 at once) but its record is not yet durable...
    log.hold();
    const deleting = registry.delete('/s');
    expect(registry.holds(stream)).toBe(false);
    await new Promise((resolve) => setImmediate(resolve));
    // ...when the process is killed (close() lets a delete job that already started finish): the
    // restart replays the WAL without the delete record.
    await sealer.close();
    await collector.close();
    void deleting;
    const restarted = replayedRegistry(log.records, clock, (record) => record.t === 'delete').registry.get('/s', { touch: false });
    expect(restarted.segments.map((s) => [s.start, s.end])).toEqual([
      [0, 40],
      [40, 80],
      [80, 100],
    ]);
    for (const segment of restarted.segments) {
      const body = Buffer.from((await store.get(naming.segment(restarted, segment))).body);
      expect(body.equals(BODY.subarray(segment.start, segment.end))).toBe(true);
    }
    expect(collector.pending()).toHaveLength(1); // still waiting for the record (kept in a checkpoint)
  });

  test('dropped by a trim stay until the trim record is durable', async () => {
    const clock = testClock();
    const store = new MemoryObjectStore();
    const { registry, log, sealer, collector, naming } = wiredStack(clock, store);
    const stream = await createStream(registry, '/s', BODY);
    sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    await collector.drained();
    log.hold();
    void registry.commitTrim(stream, 40, stream.manifestVersion + 1);
    expect(stream.retainedStart).toBe(40);
    await new Promise((resolve) => setImmediate(resolve));
    await sealer.close();
    await collector.close();
    const restarted = replayedRegistry(log.records, clock, (record) => record.t === 'trim').registry.get('/s', { touch: false });
    expect(restarted.retainedStart).toBe(0);
    const body = Buffer.from((await store.get(naming.segment(restarted, restarted.segments[0]))).body);
    expect(body.equals(BODY.subarray(0, 40))).toBe(true);
  });

  test('a delete whose record the WAL could not make durable is dropped: the objects stay', async () => {
    const clock = testClock();
    const store = new MemoryObjectStore();
    const { registry, log, sealer, collector } = wiredStack(clock, store);
    const stream = await createStream(registry, '/s', BODY);
    sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    await collector.drained();
    const before = (await store.list({ prefix: '' })).objects.map((object) => object.key);
    log.fail(new Error('fsync failed')); // the delete record is queued, then its write fails
    const deleting = registry.delete('/s').catch((error: unknown) => error);
    expect(registry.holds(stream)).toBe(false);
    expect(await deleting).toBeInstanceOf(Error);
    await collector.drained();
    expect((await store.list({ prefix: '' })).objects.map((object) => object.key)).toEqual(before);
  });

  test('go once the delete record is durable', async () => {
    const clock = testClock();
    const store = new MemoryObjectStore();
    const { registry, log, sealer, collector } = wiredStack(clock, store);
    const stream = await createStream(registry, '/s', BODY);
    sealer.durable(stream);
    await vi.waitFor(() => expect(stream.sealedOffset).toBe(100), { timeout: 10_000 });
    log.hold();
    const deleting = registry.delete('/s');
    log.release();
    await deleting;
    await vi.waitFor(async () => {
      await collector.drained();
      expect((await store.list({ prefix: '' })).objects).toEqual([]);
    }, { timeout: 10_000 });
  });
});

describe('SealActivity', () => {
  test('idle waits for the running seal of that incarnation only', async () => {
    const seals = new SealActivity();
    let finish!: () => void;
    const work = new Promise<void>((resolve) => (finish = resolve));
    seals.track(3, work);
    await seals.idle(4); // nothing running for 4
    let idle = false;
    const waiting = seals.idle(3).then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    finish();
    await waiting;
    expect(idle).toBe(true);
  });
});
