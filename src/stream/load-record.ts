/**
 * The load record of a stream loaded from the object store (src/stream/records.ts `LoadRecord`),
 * written to the WAL before the first record that changes it (docs/storage-layout.md "Lazy lookup").
 */
import type { LoadRecord } from './records.ts';
import type { StreamState } from './stream-state.ts';

/** The load record of `stream`'s current state (it holds no unsealed bytes: nothing was written since it was loaded). */
export function loadRecordOf(stream: StreamState): LoadRecord {
  const record: LoadRecord = {
    t: 'load',
    inc: stream.incarnation,
    path: stream.path,
    contentType: stream.contentType,
    createdAtMs: stream.createdAtMs,
    objectNodeId: stream.objectNodeId ?? '',
    segments: stream.segments,
    sealedOffset: stream.sealedOffset,
    retainedStart: stream.retainedStart,
    manifestVersion: stream.manifestVersion,
    closed: stream.closed,
    producers: [...stream.producerStates()].map(([id, state]) => [id, state.epoch, state.lastSeq]),
    softDeleted: stream.softDeleted,
  };
  if (stream.ttlSeconds !== undefined) record.ttlSeconds = stream.ttlSeconds;
  if (stream.expiresAtMs !== undefined) record.expiresAtMs = stream.expiresAtMs;
  if (stream.retentionMs !== undefined) record.retentionMs = stream.retentionMs;
  if (stream.retentionBytes !== undefined) record.retentionBytes = stream.retentionBytes;
  if (stream.fork !== undefined) record.fork = { inc: stream.fork.source.incarnation, position: stream.fork.position };
  if (stream.closedBy !== undefined) record.closedBy = stream.closedBy;
  if (stream.lastStreamSeq !== undefined) record.lastStreamSeq = stream.lastStreamSeq;
  return record;
}
