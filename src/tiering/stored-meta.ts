/**
 * What the sealer stores besides segment bytes (docs/storage-layout.md): the stream metadata of a
 * manifest version and the checksums of a new segment's read units.
 */
import type { StoredStreamMeta } from '../manifest/manifest.ts';
import { unitChecksum } from '../manifest/unit-checksum.ts';
import type { StreamState } from '../stream/stream-state.ts';

/** Checksums of the read units of `[start, unitEnds.at(-1))` of `stream`'s hot tail (src/manifest/unit-checksum.ts). */
export function unitChecksums(stream: StreamState, start: number, unitEnds: readonly number[]): string[] {
  const sums: string[] = [];
  let at = start;
  for (const end of unitEnds) {
    sums.push(unitChecksum(stream.hotTail.read(at, end, Number.MAX_SAFE_INTEGER, false).parts));
    at = end;
  }
  return sums;
}

/** The metadata a manifest stores for `stream` once its sealed offset is `sealedOffset` (docs/storage-layout.md). */
export function storedMetaOf(stream: StreamState, sealedOffset: number): StoredStreamMeta {
  const view = stream.sealedViewAt(sealedOffset);
  const meta: StoredStreamMeta = {
    createdAtMs: stream.createdAtMs,
    sealedOffset,
    closed: view.closed,
    producers: [...view.producers].map(([id, state]) => [id, state.epoch, state.lastSeq]),
  };
  if (stream.ttlSeconds !== undefined) meta.ttlSeconds = stream.ttlSeconds;
  if (stream.expiresAtMs !== undefined) meta.expiresAtMs = stream.expiresAtMs;
  if (stream.retentionMs !== undefined) meta.retentionMs = stream.retentionMs;
  if (stream.retentionBytes !== undefined) meta.retentionBytes = stream.retentionBytes;
  if (view.closedBy !== undefined) meta.closedBy = view.closedBy;
  if (view.lastStreamSeq !== undefined) meta.lastStreamSeq = view.lastStreamSeq;
  if (stream.softDeleted) meta.deleted = 'soft';
  return meta;
}

/**
 * How many of `stream`'s pending sealed-view changes end at or below `offset`: the ones a manifest
 * sealing up to `offset` stores now; the seal record folds them into the sealed view.
 */
export function pendingUpdatesUpTo(stream: StreamState, offset: number): number {
  let count = 0;
  while (count < stream.sealedViewPending.length && stream.sealedViewPending[count].end <= offset) count++;
  return count;
}
