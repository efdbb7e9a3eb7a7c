/**
 * Checkpoint snapshot and restore of the stream table: a WAL checkpoint bounds replay
 * (src/wal/checkpoint.ts stores the snapshot as one frame). A snapshot is plain data; restoring it into
 * an empty table and replaying the records after it gives the state the records alone would.
 * Not persisted: access and append times (restart counts as access), waiters, durability flags
 * (`StreamTable.markAllDurable` sets them after replay).
 */
import type { SegmentRef } from '../manifest/manifest.ts';
import type { SealedViewUpdate, StreamState } from './stream-state.ts';
import type { StreamTable } from './stream-table.ts';

/** Serialised registry state for WAL checkpoints. */
export interface RegistrySnapshot {
  nextIncarnation: number;
  /** Every incarnation held, soft-deleted ones included, by increasing incarnation (sources before forks). */
  streams: SnapshotStream[];
}

export interface SnapshotStream {
  path: string;
  inc: number;
  contentType: string;
  ttlSeconds?: number;
  expiresAtMs?: number;
  fork?: { inc: number; position: number };
  closed: boolean;
  closedBy?: [string, number, number];
  lastStreamSeq?: string;
  softDeleted: boolean;
  /** `[producerId, epoch, lastSeq]` of every producer. */
  producers: [string, number, number][];
  /** The hot tail's append entries (stored form), from `sealedOffset` on. */
  entries: Buffer[];
  retentionMs?: number;
  retentionBytes?: number;
  segments?: SegmentRef[];
  /** End of the sealed bytes (retention may have dropped every segment below it). */
  sealedOffset?: number;
  manifestVersion?: number;
  retainedStart?: number;
  createdAtMs?: number;
  objectNodeId?: string;
  /** Producers, Stream-Seq and closure as of the sealed offset (absent: none, open) and the changes above it (absent: none). */
  sealedView?: { producers: [string, number, number][]; lastStreamSeq?: string; closed: boolean; closedBy?: [string, number, number] };
  sealedViewPending?: SealedViewUpdate[];
  /** Stored metadata is behind (kept only once a manifest exists: before, a stream is always behind). */
  metaDirty?: boolean;
}

/** A consistent copy of every stream in `table` (taken synchronously; shares the entries' buffers). */
export function snapshotTable(table: StreamTable): RegistrySnapshot {
  const streams: SnapshotStream[] = [];
  for (const stream of sourcesFirst([...table.allStreams()])) {
    const entry: SnapshotStream = {
      path: stream.path,
      inc: stream.incarnation,
      contentType: stream.contentType,
      closed: stream.closed,
      softDeleted: stream.softDeleted,
      producers: [...stream.producerStates()].map(([id, state]) => [id, state.epoch, state.lastSeq]),
      entries: stream.hotTail.loadedEntries(),
    };
    if (stream.ttlSeconds !== undefined) entry.ttlSeconds = stream.ttlSeconds;
    if (stream.expiresAtMs !== undefined) entry.expiresAtMs = stream.expiresAtMs;
    if (stream.fork !== undefined) entry.fork = { inc: stream.fork.source.incarnation, position: stream.fork.position };
    if (stream.closedBy !== undefined) entry.closedBy = stream.closedBy;
    if (stream.lastStreamSeq !== undefined) entry.lastStreamSeq = stream.lastStreamSeq;
    if (stream.retentionMs !== undefined) entry.retentionMs = stream.retentionMs;
    if (stream.retentionBytes !== undefined) entry.retentionBytes = stream.retentionBytes;
    if (stream.segments.length > 0) entry.segments = stream.segments;
    if (stream.sealedOffset > stream.basePosition) entry.sealedOffset = stream.sealedOffset;
    if (stream.manifestVersion > 0) entry.manifestVersion = stream.manifestVersion;
    if (stream.retainedStart > stream.basePosition) entry.retainedStart = stream.retainedStart;
    entry.createdAtMs = stream.createdAtMs;
    if (stream.objectNodeId !== undefined) entry.objectNodeId = stream.objectNodeId;
    const view = stream.sealedView;
    if (view.producers.size > 0 || view.closed || view.lastStreamSeq !== undefined) {
      entry.sealedView = { producers: [...view.producers].map(([id, state]) => [id, state.epoch, state.lastSeq]), closed: view.closed };
      if (view.lastStreamSeq !== undefined) entry.sealedView.lastStreamSeq = view.lastStreamSeq;
      if (view.closedBy !== undefined) entry.sealedView.closedBy = view.closedBy;
    }
    if (stream.sealedViewPending.length > 0) entry.sealedViewPending = stream.sealedViewPending.map((update) => ({ ...update }));
    // A stream that never stored a manifest is dirty anyway (restore marks it).
    if (stream.metaDirty && stream.manifestVersion > 0) entry.metaDirty = true;
    streams.push(entry);
  }
  return { nextIncarnation: table.nextIncarnation, streams };
}

/**
 * Loads a snapshot into an empty `table` (before WAL replay).
 * @throws Error when a stream names a fork source the snapshot does not hold (a corrupt checkpoint).
 */
export function restoreTable(table: StreamTable, snapshot: RegistrySnapshot): void {
  table.raiseNextIncarnation(snapshot.nextIncarnation);
  for (const s of snapshot.streams) {
    const stream = table.register(s);
    stream.segments = s.segments ?? [];
    stream.manifestVersion = s.manifestVersion ?? 0;
    stream.retainedStart = s.retainedStart ?? stream.basePosition;
    stream.hotTail.dropBefore(s.sealedOffset ?? stream.basePosition);
    for (const data of s.entries) table.addHot(stream, data);
    stream.closed = s.closed;
    stream.closedBy = s.closedBy;
    stream.lastStreamSeq = s.lastStreamSeq;
    stream.softDeleted = s.softDeleted;
    for (const [id, epoch, lastSeq] of s.producers) stream.setProducer(id, { epoch, lastSeq });
    const before = s.createdAtMs === undefined; // a checkpoint from before stream metadata was stored
    if (s.sealedView !== undefined) {
      const view = s.sealedView;
      stream.sealedView = {
        producers: new Map(view.producers.map(([id, epoch, lastSeq]) => [id, { epoch, lastSeq }])),
        lastStreamSeq: view.lastStreamSeq,
        closed: view.closed,
        closedBy: view.closedBy,
      };
    } else if (before) {
      // The sealed view was not kept then: the current state is the best guess.
      stream.sealedView = { producers: new Map(stream.producerStates()), lastStreamSeq: s.lastStreamSeq, closed: s.closed, closedBy: s.closedBy };
    }
    stream.sealedViewPending = s.sealedViewPending ?? [];
    if (s.metaDirty === true || before || stream.manifestVersion === 0) table.markMetaDirty(stream);
  }
}

/**
 * The streams of `snapshot` whose host path (a fork's is its chain root's, docs/cluster.md
 * "Forks") passes `keep`, in the same order (sources before forks).
 */
export function snapshotWhere(snapshot: RegistrySnapshot, keep: (hostPath: string) => boolean): RegistrySnapshot {
  const byInc = new Map(snapshot.streams.map((s) => [s.inc, s]));
  const hostPath = (s: SnapshotStream): string => {
    let root = s;
    for (let source = root.fork && byInc.get(root.fork.inc); source !== undefined; source = root.fork && byInc.get(root.fork.inc)) root = source;
    return root.path;
  };
  return { nextIncarnation: snapshot.nextIncarnation, streams: snapshot.streams.filter((s) => keep(hostPath(s))) };
}

/** Streams ordered so that every fork source comes before its forks, otherwise by incarnation. */
function sourcesFirst(streams: StreamState[]): StreamState[] {
  const ordered: StreamState[] = [];
  const placed = new Set<StreamState>();
  const place = (stream: StreamState): void => {
    if (placed.has(stream)) return;
    if (stream.fork !== undefined) place(stream.fork.source);
    placed.add(stream);
    ordered.push(stream);
  };
  for (const stream of streams.sort((a, b) => a.incarnation - b.incarnation)) place(stream);
  return ordered;
}
