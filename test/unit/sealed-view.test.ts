/**
 * Producers, Stream-Seq and closure "as of the sealed offset" (docs/storage-layout.md): what a
 * manifest stores is the state after exactly the appends that end at or below the sealed offset,
 * and a checkpoint keeps that view and the changes above it.
 */
import { expect, test } from 'vitest';
import { restoreTable, snapshotTable } from '../../src/stream/registry-checkpoint.ts';
import { StreamTable } from '../../src/stream/stream-table.ts';
import { testClock, segment } from '../support/record-log.ts';

function producers(table: StreamTable): unknown {
  const stream = table.byIncarnation(1);
  return stream === undefined ? undefined : [...stream.sealedView.producers];
}

test('the sealed view moves with seals, not with appends', () => {
  const t = new StreamTable(testClock());
  t.apply({ t: 'create', inc: 1, path: '/p', contentType: 'application/octet-stream', closed: false, createdAtMs: 5 });
  t.apply({ t: 'append', inc: 1, data: Buffer.from('aaaaa'), producer: ['w', 1, 0], streamSeq: 'a' });
  t.apply({ t: 'append', inc: 1, data: Buffer.from('bbbbb'), producer: ['w', 1, 1], streamSeq: 'b' });
  const stream = t.byIncarnation(1);
  expect(stream?.producer('w')).toEqual({ epoch: 1, lastSeq: 1 });
  expect(producers(t)).toEqual([]);
  expect(stream?.sealedViewAt(5).producers.get('w')).toEqual({ epoch: 1, lastSeq: 0 });

  t.apply({ t: 'seal', inc: 1, segment: segment(0, 7), version: 1 }); // inside the second append
  expect(producers(t)).toEqual([['w', { epoch: 1, lastSeq: 0 }]]);
  expect(stream?.sealedView.lastStreamSeq).toBe('a');

  // A checkpoint keeps the view and the pending change above it.
  const copy = new StreamTable(testClock());
  restoreTable(copy, snapshotTable(t));
  t.apply({ t: 'seal', inc: 1, segment: segment(7, 10), version: 2 });
  copy.apply({ t: 'seal', inc: 1, segment: segment(7, 10), version: 2 });
  for (const table of [t, copy]) {
    expect(producers(table)).toEqual([['w', { epoch: 1, lastSeq: 1 }]]);
    expect(table.byIncarnation(1)?.sealedView.lastStreamSeq).toBe('b');
  }
});

test('a close at a sealed tail takes effect in the sealed view at once and marks the metadata behind', () => {
  const t = new StreamTable(testClock());
  t.apply({ t: 'create', inc: 1, path: '/c', contentType: 'application/octet-stream', closed: false, createdAtMs: 5, data: Buffer.from('abc') });
  t.apply({ t: 'seal', inc: 1, segment: segment(0, 3), version: 1 });
  const stream = t.byIncarnation(1);
  if (stream === undefined) throw new Error('no stream');
  t.clearMetaDirty(stream);
  t.apply({ t: 'append', inc: 1, close: true, producer: ['z', 0, 4] });
  expect(stream.sealedView.closed).toBe(true);
  expect(stream.sealedView.closedBy).toEqual(['z', 0, 4]);
  expect(stream.metaDirty).toBe(true);
  expect([...t.metaDirtyStreams()]).toEqual([stream]);
});
