import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { StreamRegistry } from '../../src/stream/registry.ts';
import { snapshotTable } from '../../src/stream/registry-checkpoint.ts';
import type { StreamRecord } from '../../src/stream/records.ts';
import { StreamTable } from '../../src/stream/stream-table.ts';
import { decodeFrames, encodeFrame } from '../../src/wal/record-codec.ts';
import { testClock, MemoryRecordLog, RecordingListener, segment } from '../support/record-log.ts';

const bytes = (text: string) => Buffer.from(text);

function table(listener?: RecordingListener, clock = testClock()): StreamTable {
  return new StreamTable(clock, listener);
}

describe('StreamTable.apply, record by record (replay)', () => {
  test('create: indexes the incarnation, holds its bytes, raises the next incarnation', () => {
    const t = table();
    const stream = t.apply({ t: 'create', inc: 7, path: '/a', contentType: 'text/plain', closed: true, data: bytes('hello'), createdAtMs: 1 });
    expect(stream).toBe(t.atPath('/a'));
    expect(t.byIncarnation(7)).toBe(stream);
    expect(stream?.tailOffset).toBe(5);
    expect(stream?.closed).toBe(true);
    expect(t.hotTailBytes).toBe(5);
    expect(t.nextIncarnation).toBe(8);
    // A lower incarnation replayed later never lowers the counter.
    t.apply({ t: 'create', inc: 3, path: '/b', contentType: 'text/plain', closed: false, createdAtMs: 1 });
    expect(t.nextIncarnation).toBe(8);
  });

  test('create of a fork: starts at the fork point and counts itself on the source', () => {
    const t = table();
    const source = t.apply({ t: 'create', inc: 1, path: '/s', contentType: 'text/plain', closed: false, data: bytes('abcdef'), createdAtMs: 1 })!;
    const fork = t.apply({ t: 'create', inc: 2, path: '/f', contentType: 'text/plain', closed: false, fork: { inc: 1, position: 4 }, data: bytes('xy'), createdAtMs: 1 })!;
    expect(fork.fork?.source).toBe(source);
    expect(fork.basePosition).toBe(4);
    expect(fork.tailOffset).toBe(6);
    expect(source.forkCount).toBe(1);
    expect(() => t.apply({ t: 'create', inc: 3, path: '/g', contentType: 'text/plain', closed: false, fork: { inc: 99, position: 0 }, createdAtMs: 1 })).toThrow(
      /missing fork source incarnation 99/,
    );
  });

  test('append: bytes, producer state (waking gap waiters), Stream-Seq and closure by a producer', () => {
    const t = table();
    const stream = t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, createdAtMs: 1 })!;
    let woken = 0;
    stream.producerWaiters = new Set([() => woken++]);
    t.apply({ t: 'append', inc: 1, data: bytes('abc'), producer: ['p', 2, 0], streamSeq: '001' });
    expect(stream.tailOffset).toBe(3);
    expect(stream.producer('p')).toEqual({ epoch: 2, lastSeq: 0 });
    expect(woken).toBe(1);
    expect(stream.lastStreamSeq).toBe('001');
    t.apply({ t: 'append', inc: 1, producer: ['p', 2, 1], close: true });
    expect(stream.closed).toBe(true);
    expect(stream.closedBy).toEqual(['p', 2, 1]);
    expect(t.hotTailBytes).toBe(3);
    expect(() => t.apply({ t: 'append', inc: 42, data: bytes('x') })).toThrow(/missing incarnation 42/);
  });

  test('delete: removes a stream without forks (and its hot bytes); tells the listener', () => {
    const listener = new RecordingListener();
    const t = table(listener);
    t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, data: bytes('abc'), createdAtMs: 1 });
    const removed = t.apply({ t: 'delete', inc: 1 });
    expect(removed?.incarnation).toBe(1);
    expect(t.atPath('/a')).toBeUndefined();
    expect(t.byIncarnation(1)).toBeUndefined();
    expect(t.hotTailBytes).toBe(0);
    expect(listener.events).toEqual([{ event: 'removed', inc: 1 }]);
    expect(t.apply({ t: 'delete', inc: 1 })).toBeUndefined(); // a second delete changes nothing
  });

  test('delete of a fork source soft-deletes it; removing the last fork removes the source too', () => {
    const listener = new RecordingListener();
    const t = table(listener);
    const source = t.apply({ t: 'create', inc: 1, path: '/s', contentType: 'text/plain', closed: false, data: bytes('abc'), createdAtMs: 1 })!;
    t.apply({ t: 'create', inc: 2, path: '/f', contentType: 'text/plain', closed: false, fork: { inc: 1, position: 3 }, createdAtMs: 1 });
    let notified = 0;
    source.addWaiter(() => notified++);
    t.apply({ t: 'delete', inc: 1 });
    expect(source.softDeleted).toBe(true);
    expect(t.atPath('/s')).toBe(source);
    expect(notified).toBe(1); // live readers of the source learn it is gone
    expect(listener.events).toEqual([]);
    t.apply({ t: 'delete', inc: 2 });
    expect(listener.events).toEqual([
      { event: 'removed', inc: 2 },
      { event: 'removed', inc: 1 },
    ]);
    expect(t.byIncarnation(1)).toBeUndefined();
    expect(t.hotTailBytes).toBe(0);
  });

  test('seal: moves bytes from the hot tail to a segment; a repeated seal is ignored, a gap throws', () => {
    const clock = testClock(5);
    const t = table(undefined, clock);
    const stream = t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, data: bytes('abcdef'), createdAtMs: 1 })!;
    clock.advance(45);
    t.apply({ t: 'seal', inc: 1, segment: segment(0, 4), version: 1 });
    expect(stream.sealedOffset).toBe(4);
    expect(stream.segments).toEqual([segment(0, 4)]);
    expect(stream.manifestVersion).toBe(1);
    expect(stream.unsealedSinceMs).toBe(50);
    expect(t.hotTailBytes).toBe(2);
    t.apply({ t: 'seal', inc: 1, segment: segment(0, 4), version: 1 });
    expect(stream.segments).toHaveLength(1);
    expect(() => t.apply({ t: 'seal', inc: 1, segment: segment(5, 6), version: 2 })).toThrow(/does not continue/);
    expect(() => t.apply({ t: 'seal', inc: 1, segment: segment(4, 9), version: 2 })).toThrow(/within tail 6/);
    expect(t.apply({ t: 'seal', inc: 99, segment: segment(0, 1), version: 1 })).toBeUndefined();
  });

  test('trim: drops the segments below the retained start and tells the listener', () => {
    const listener = new RecordingListener();
    const t = table(listener);
    const stream = t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, data: bytes('abcdefghij'), createdAtMs: 1 })!;
    t.apply({ t: 'seal', inc: 1, segment: segment(0, 3), version: 1 });
    t.apply({ t: 'seal', inc: 1, segment: segment(3, 6), version: 2 });
    t.apply({ t: 'seal', inc: 1, segment: segment(6, 8), version: 3 });
    t.apply({ t: 'trim', inc: 1, retainedStart: 6, version: 4 });
    expect(stream.retainedStart).toBe(6);
    expect(stream.segments.map((s) => s.start)).toEqual([6]);
    expect(stream.manifestVersion).toBe(4);
    expect(listener.events).toEqual([{ event: 'segmentsDropped', inc: 1, ranges: [[0, 3], [3, 6]] }]);
    // An older trim only raises the version; a trim past every segment drops them all.
    t.apply({ t: 'trim', inc: 1, retainedStart: 3, version: 5 });
    expect(stream.retainedStart).toBe(6);
    expect(stream.manifestVersion).toBe(5);
    t.apply({ t: 'trim', inc: 1, retainedStart: 8, version: 6 });
    expect(stream.segments).toEqual([]);
    expect(listener.events.at(-1)).toEqual({ event: 'segmentsDropped', inc: 1, ranges: [[6, 8]] });
  });

  test('markAllDurable: everything replayed is durable and probed by the sealer', () => {
    const t = table();
    const stream = t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: true, data: bytes('abc'), createdAtMs: 1 })!;
    expect(stream.durableOffset).toBe(0);
    t.markAllDurable();
    expect(stream).toMatchObject({ durableOffset: 3, durableClosed: true, createDurable: true, needsProbe: true });
  });
});

describe('live writes and replay reach the same state', () => {
  /** A random sequence of registry writes, as operations on a few paths. */
  const operation = fc.oneof(
    fc.record({ op: fc.constant('create' as const), path: fc.constantFrom('/a', '/b', '/c'), body: fc.string({ maxLength: 8 }), closed: fc.boolean() }),
    fc.record({ op: fc.constant('fork' as const), path: fc.constantFrom('/f', '/g'), source: fc.constantFrom('/a', '/b') }),
    fc.record({
      op: fc.constant('append' as const),
      path: fc.constantFrom('/a', '/b', '/c', '/f', '/g'),
      body: fc.string({ minLength: 1, maxLength: 8 }),
      close: fc.boolean(),
      producer: fc.constantFrom('none', 'next', 'repeat'),
    }),
    fc.record({ op: fc.constant('delete' as const), path: fc.constantFrom('/a', '/b', '/c', '/f', '/g') }),
  );

  test('replaying the records the registry wrote (WAL-encoded) gives the state it holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { maxLength: 25 }), async (operations) => {
        const clock = testClock();
        const log = new MemoryRecordLog();
        const registry = new StreamRegistry({ log, clock });
        // Producer requests are the next seq or a retry of the last, never a gap (a gap waits a second).
        const producerSeq = (path: string, kind: 'next' | 'repeat'): number => {
          let last = -1;
          try {
            last = registry.get(path, { touch: false }).producer('p')?.lastSeq ?? -1;
          } catch {
            // no stream: the append fails with 404 whatever its seq
          }
          return kind === 'repeat' && last >= 0 ? last : last + 1;
        };
        for (const o of operations) {
          const write = async (): Promise<unknown> => {
            switch (o.op) {
              case 'create':
                return registry.create({ path: o.path, contentType: 'text/plain', ttlSeconds: undefined, expiresAtMs: undefined, closed: o.closed, body: bytes(o.body) });
              case 'fork':
                return registry.create({
                  path: o.path,
                  contentType: undefined,
                  ttlSeconds: undefined,
                  expiresAtMs: undefined,
                  closed: false,
                  body: Buffer.alloc(0),
                  fork: { sourcePath: o.source, offset: undefined, subOffset: undefined },
                });
              case 'append':
                return registry.append({
                  path: o.path,
                  contentType: 'text/plain',
                  body: bytes(o.body),
                  close: o.close,
                  producer: o.producer === 'none' ? undefined : { producerId: 'p', epoch: 0, seq: producerSeq(o.path, o.producer) },
                  streamSeq: undefined,
                });
              case 'delete':
                return registry.delete(o.path);
            }
          };
          // Client errors (404, 409, 410, gaps) are part of the run: they write no record.
          await write().catch(() => {});
        }
        // Through the WAL's own encoding, as recovery reads the records back.
        const wal = decodeFrames(Buffer.concat(log.records.map((record) => encodeFrame(record))));
        const replayed = new StreamTable(clock);
        for (const { record } of wal.frames) replayed.apply(record as StreamRecord);
        replayed.markAllDurable();
        expect(snapshotTable(replayed)).toEqual(registry.snapshot());
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
