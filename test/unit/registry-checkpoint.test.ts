import { describe, expect, test } from 'vitest';
import { restoreTable, snapshotTable, type RegistrySnapshot } from '../../src/stream/registry-checkpoint.ts';
import type { StreamRecord } from '../../src/stream/records.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';
import { StreamTable } from '../../src/stream/stream-table.ts';
import { decodeFrames, encodeFrame } from '../../src/wal/record-codec.ts';
import { testClock, segment } from '../support/record-log.ts';

const bytes = (text: string) => Buffer.from(text);

/** A table with every kind of state a checkpoint must carry. */
function busyTable(): StreamTable {
  const t = new StreamTable(testClock());
  t.apply({ t: 'create', inc: 1, path: '/src', contentType: 'application/json', closed: false, data: bytes('1,2,3,'), createdAtMs: 1, retentionMs: 60_000 });
  t.apply({ t: 'append', inc: 1, data: bytes('4,'), producer: ['p', 1, 0], streamSeq: 'a1' });
  t.apply({ t: 'append', inc: 1, data: bytes('5,6,'), producer: ['q', 0, 3] });
  t.apply({ t: 'seal', inc: 1, segment: segment(0, 4, 2), version: 1 });
  t.apply({ t: 'seal', inc: 1, segment: segment(4, 8), version: 2 });
  t.apply({ t: 'trim', inc: 1, retainedStart: 4, version: 3 });
  t.apply({ t: 'create', inc: 2, path: '/fork', contentType: 'application/json', closed: false, fork: { inc: 1, position: 8 }, ttlSeconds: 30, createdAtMs: 1 });
  t.apply({ t: 'append', inc: 2, data: bytes('7,'), producer: ['p', 0, 0], close: true });
  t.apply({ t: 'delete', inc: 1 }); // soft-deleted: the fork still reads it
  t.apply({ t: 'create', inc: 5, path: '/plain', contentType: 'text/plain', closed: false, expiresAtMs: 9e12, retentionBytes: 1024, createdAtMs: 1 });
  t.apply({ t: 'create', inc: 6, path: '/gone', contentType: 'text/plain', closed: false, createdAtMs: 1 });
  t.apply({ t: 'delete', inc: 6 });
  t.apply({ t: 'create', inc: 7, path: '/sealed', contentType: 'text/plain', closed: false, data: bytes('abcd'), createdAtMs: 1 });
  t.apply({ t: 'seal', inc: 7, segment: segment(0, 4), version: 1 });
  t.apply({ t: 'trim', inc: 7, retainedStart: 4, version: 2 }); // every segment dropped, sealed end kept
  return t;
}

/** Everything a checkpoint must carry, of every stream. */
function visibleState(t: StreamTable) {
  const view = (s: StreamState) => ({
    path: s.path,
    incarnation: s.incarnation,
    contentType: s.contentType,
    ttlSeconds: s.ttlSeconds,
    expiresAtMs: s.expiresAtMs,
    fork: s.fork && { source: s.fork.source.incarnation, position: s.fork.position },
    forkCount: s.forkCount,
    closed: s.closed,
    closedBy: s.closedBy,
    lastStreamSeq: s.lastStreamSeq,
    softDeleted: s.softDeleted,
    producers: [...s.producerStates()],
    retentionMs: s.retentionMs,
    retentionBytes: s.retentionBytes,
    segments: s.segments,
    sealedOffset: s.sealedOffset,
    tailOffset: s.tailOffset,
    retainedStart: s.retainedStart,
    manifestVersion: s.manifestVersion,
    hot: Buffer.concat(s.hotTail.loadedEntries()).toString(),
    atPath: t.atPath(s.path) === s,
  });
  return { nextIncarnation: t.nextIncarnation, hotTailBytes: t.hotTailBytes, streams: [...t.allStreams()].map(view) };
}

describe('registry checkpoint', () => {
  test('snapshot → restore gives the same state (and the same snapshot)', () => {
    const original = busyTable();
    const snapshot = snapshotTable(original);
    const restored = new StreamTable(testClock());
    restoreTable(restored, snapshot);
    expect(visibleState(restored)).toEqual(visibleState(original));
    expect(snapshotTable(restored)).toEqual(snapshot);
  });

  test('the round trip holds through the WAL encoding of a checkpoint', () => {
    const original = busyTable();
    const frame = encodeFrame(snapshotTable(original));
    const decoded = decodeFrames(frame).frames[0].record as RegistrySnapshot;
    const restored = new StreamTable(testClock());
    restoreTable(restored, decoded);
    expect(visibleState(restored)).toEqual(visibleState(original));
  });

  test('records replayed after a restore continue where the snapshot stopped', () => {
    const original = busyTable();
    const restored = new StreamTable(testClock());
    restoreTable(restored, snapshotTable(original));
    const after = [
      { t: 'append', inc: 5, data: bytes('hello') },
      { t: 'seal', inc: 5, segment: segment(0, 5), version: 1 },
      { t: 'delete', inc: 2 }, // the last fork: the soft-deleted source goes too
      { t: 'create', inc: 8, path: '/new', contentType: 'text/plain', closed: false, createdAtMs: 1 },
    ];
    for (const record of after) {
      original.apply({ ...record } as StreamRecord);
      restored.apply({ ...record } as StreamRecord);
    }
    expect(visibleState(restored)).toEqual(visibleState(original));
    expect(restored.byIncarnation(1)).toBeUndefined();
  });

  test('omits what equals its default, so a checkpoint of many quiet streams stays small', () => {
    const t = new StreamTable(testClock());
    t.apply({ t: 'create', inc: 1, path: '/q', contentType: 'text/plain', closed: false, createdAtMs: 1 });
    expect(snapshotTable(t)).toEqual({
      nextIncarnation: 2,
      // createdAtMs: the creation time is stored with the stream's metadata, so it must survive a restart.
      streams: [{ path: '/q', inc: 1, contentType: 'text/plain', closed: false, softDeleted: false, producers: [], entries: [], createdAtMs: 1 }],
    });
  });
});
