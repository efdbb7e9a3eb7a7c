/**
 * Eviction of streams loaded by lazy lookup (src/tiering/idle-eviction.ts, StreamRegistry.evictLoaded):
 * idle ones go after the idle time, least recently used ones go over the stream or segment limit;
 * a stream written since it was loaded, with a fork held, a live reader, a producer waiting, a
 * sliding TTL or a seal running is never evicted; eviction deletes nothing (no `removed`).
 */
import { describe, expect, test } from 'vitest';
import { LOADED_STREAM_IN_USE_MS } from '../../src/config/limits.ts';
import type { SegmentRef } from '../../src/manifest/manifest.ts';
import type { LoadRecord } from '../../src/stream/records.ts';
import { StreamRegistry } from '../../src/stream/registry.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';
import { LoadedStreamEviction, type LoadedStreamLimits } from '../../src/tiering/idle-eviction.ts';
import { MemoryRecordLog, RecordingListener, testClock } from '../support/record-log.ts';

const IDLE_MS = 60_000;

function segments(count: number, start = 0): SegmentRef[] {
  return Array.from({ length: count }, (_, i) => ({ start: start + i * 10, end: start + (i + 1) * 10, unitEnds: [start + (i + 1) * 10], sealedAtMs: 1 }));
}

function loadRecord(path: string, inc: number, overrides: Partial<LoadRecord> = {}): LoadRecord {
  const segs = overrides.segments ?? segments(2, overrides.fork?.position ?? 0);
  return {
    t: 'load',
    inc,
    path,
    contentType: 'application/octet-stream',
    createdAtMs: 1,
    objectNodeId: 'aaaaaaaaaaaa',
    segments: segs,
    sealedOffset: segs.at(-1)?.end ?? overrides.fork?.position ?? 0,
    retainedStart: overrides.fork?.position ?? 0,
    manifestVersion: 1,
    closed: false,
    producers: [],
    softDeleted: false,
    ...overrides,
  };
}

function setup(limits: LoadedStreamLimits = {}) {
  const clock = testClock();
  const log = new MemoryRecordLog();
  const listener = new RecordingListener();
  const registry = new StreamRegistry({ log, clock, listener });
  const sealing = new Set<number>();
  const eviction = new LoadedStreamEviction({ registry, clock, isSealing: (inc) => sealing.has(inc), idleMs: IDLE_MS, ...limits });
  /** Installs `records` (sources first) as a lazy lookup does and reports them loaded. */
  const load = (...records: LoadRecord[]): StreamState[] => {
    registry.install(records);
    const streams = records.map((record) => registry.byIncarnation(record.inc)!);
    eviction.loaded(streams);
    return streams;
  };
  return { clock, log, listener, registry, sealing, eviction, load };
}

describe('LoadedStreamEviction', () => {
  test('an idle loaded stream is evicted after the idle time, without deleting anything; a used one stays', () => {
    const { clock, registry, eviction, listener, log, load } = setup();
    load(loadRecord('idle', 1));
    load(loadRecord('busy', 2));
    clock.advance(IDLE_MS - 1);
    eviction.used('busy');
    expect(eviction.sweep()).toBe(0);
    clock.advance(1);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('idle')).toBe(false);
    expect(registry.holdsPath('busy')).toBe(true);
    expect(listener.events).toEqual([]); // no `removed`: the objects stay
    expect(log.records).toEqual([]);
    clock.advance(IDLE_MS);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('busy')).toBe(false);
    expect(eviction.streamCount).toBe(0);
    expect(eviction.segmentCount).toBe(0);
  });

  test('over the stream limit, the least recently used go first, idle or not, but none just used', () => {
    const { clock, registry, eviction, load } = setup({ streamsMax: 2 });
    load(loadRecord('a', 1));
    load(loadRecord('b', 2));
    load(loadRecord('c', 3));
    eviction.used('a');
    expect(eviction.sweep()).toBe(0); // each was named by a request just now
    clock.advance(LOADED_STREAM_IN_USE_MS);
    expect(eviction.sweep()).toBe(1);
    expect(['a', 'b', 'c'].map((path) => registry.holdsPath(path))).toEqual([true, false, true]);
  });

  test('over the segment limit, streams go until the segments fit', () => {
    const { clock, registry, eviction, load } = setup({ segmentsMax: 10 });
    load(loadRecord('long', 1, { segments: segments(8) }));
    load(loadRecord('short', 2, { segments: segments(3) }));
    expect(eviction.segmentCount).toBe(11);
    clock.advance(LOADED_STREAM_IN_USE_MS);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('long')).toBe(false);
    expect(registry.holdsPath('short')).toBe(true);
    expect(eviction.segmentCount).toBe(3);
  });

  test('a stream written since it was loaded is never evicted (WAL records name it)', async () => {
    const { clock, registry, eviction, load } = setup();
    load(loadRecord('w', 1));
    await registry.append({ path: 'w', contentType: 'application/octet-stream', body: Buffer.from('x'), close: false, producer: { producerId: 'p', epoch: 0, seq: 0 }, streamSeq: undefined });
    clock.advance(IDLE_MS);
    expect(eviction.sweep()).toBe(0);
    expect(registry.holdsPath('w')).toBe(true);
    expect(eviction.streamCount).toBe(0); // no longer tracked
  });

  test('a fork source stays while its fork is held; it goes after the fork', () => {
    const { clock, registry, eviction, load } = setup();
    load(loadRecord('src', 1), loadRecord('fork', 2, { fork: { inc: 1, position: 20 }, segments: segments(1, 20) }));
    eviction.used('fork');
    clock.advance(IDLE_MS);
    // Both idle: the source is older in use order, is skipped while the fork is held, then the fork goes.
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('src')).toBe(true);
    expect(registry.holdsPath('fork')).toBe(false);
    expect(registry.byIncarnation(1)?.forkCount).toBe(0);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('src')).toBe(false);
  });

  test('a stream with a live reader or a waiting producer append is not evicted', () => {
    const { clock, registry, eviction, load } = setup();
    const [reader] = load(loadRecord('reader', 1));
    const [producer] = load(loadRecord('producer', 2));
    const wake = () => {};
    reader!.addWaiter(wake);
    producer!.producerWaiters = new Set([wake]);
    clock.advance(IDLE_MS);
    expect(eviction.sweep()).toBe(0);
    reader!.removeWaiter(wake);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('reader')).toBe(false);
    expect(registry.holdsPath('producer')).toBe(true);
  });

  test('a stream with a sliding TTL or a seal running is not evicted; Expires-At is no obstacle', () => {
    const { clock, registry, eviction, sealing, load } = setup();
    load(loadRecord('ttl', 1, { ttlSeconds: 86_400 }));
    load(loadRecord('sealing', 2));
    load(loadRecord('expires', 3, { expiresAtMs: 10_000_000_000 }));
    sealing.add(2);
    clock.advance(IDLE_MS);
    expect(eviction.sweep()).toBe(1);
    expect(['ttl', 'sealing', 'expires'].map((path) => registry.holdsPath(path))).toEqual([true, true, false]);
    sealing.delete(2);
    expect(eviction.sweep()).toBe(1);
    expect(registry.holdsPath('sealing')).toBe(false);
  });

  test('a stream loaded again after eviction is a new state with the same incarnation and segments', () => {
    const { clock, registry, eviction, load } = setup();
    const record = loadRecord('again', 7, { closed: true, producers: [['p', 1, 4]], lastStreamSeq: 's9' });
    const [first] = load(record);
    clock.advance(IDLE_MS);
    expect(eviction.sweep()).toBe(1);
    const [second] = load(record);
    expect(second).not.toBe(first);
    expect(second).toMatchObject({ incarnation: 7, closed: true, lastStreamSeq: 's9', segments: record.segments, sealedOffset: first!.sealedOffset });
    expect(second!.producer('p')).toEqual({ epoch: 1, lastSeq: 4 });
    expect(registry.get('again', { touch: false })).toBe(second);
  });
});
