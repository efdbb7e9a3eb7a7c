/**
 * The streams held in memory, indexed by path and by incarnation, and the one state-transition
 * function (`apply`) used both for live writes and at WAL replay (src/stream/records.ts), so
 * recovery reproduces the exact state (DESIGN.md invariants). `apply` is synchronous and
 * deterministic given the record, the table and the clock; it validates nothing a client sent (the
 * registry did that before writing the record) and throws only on a record that contradicts the
 * state, which is a bug or a corrupt log.
 */
import type { WallClock } from '../clock.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import type { DeferredBytes } from './hot-tail.ts';
import type { CreateRecord, LoadRecord, StreamRecord } from './records.ts';
import { StreamState } from './stream-state.ts';

/**
 * What other layers hear about from the stream layer (the sealer, the object collector). Passed to
 * the registry's constructor; every method is called synchronously from the state change.
 */
export interface RegistryListener {
  /** New bytes or closure of `stream` are durable (live writes only, not replay). */
  durable(stream: StreamState): void;
  /**
   * An incarnation is gone for good (deleted, expired, last fork gone): its objects may go once
   * the record is durable (`StreamRegistry.recordsDurable`; until then a crash brings it back).
   */
  removed(stream: StreamState): void;
  /** Retention dropped these segments of `stream`: their objects may go (once the record is durable, as above). */
  segmentsDropped(stream: StreamState, segments: readonly SegmentRef[]): void;
}

/** The fields of a new incarnation, from a create record or a checkpoint. */
export type IncarnationMeta = Pick<
  CreateRecord,
  'path' | 'inc' | 'contentType' | 'ttlSeconds' | 'expiresAtMs' | 'fork' | 'retentionMs' | 'retentionBytes'
> & { createdAtMs?: number; objectNodeId?: string };

export class StreamTable {
  readonly #clock: WallClock;
  readonly #listener: RegistryListener | undefined;
  readonly #byPath = new Map<string, StreamState>();
  readonly #byIncarnation = new Map<number, StreamState>();
  #nextIncarnation = 1;
  #hotTailBytes = 0;
  /** Streams whose stored metadata is behind, oldest first (the sealer's metadata flush walks it). */
  readonly #metaDirty = new Set<StreamState>();

  /** `listener` hears of removals and dropped segments (`durable` is the registry's to call). */
  constructor(clock: WallClock, listener?: RegistryListener) {
    this.#clock = clock;
    this.#listener = listener;
  }

  /** The incarnation number the next create record gets (server-wide, increasing). */
  get nextIncarnation(): number {
    return this.#nextIncarnation;
  }

  /** Unsealed bytes held by all hot tails. */
  get hotTailBytes(): number {
    return this.#hotTailBytes;
  }

  /** Number of streams at a path (soft-deleted ones included while they hold their path). */
  get pathCount(): number {
    return this.#byPath.size;
  }

  /** Streams whose stored metadata is behind, by when it fell behind (oldest first). */
  metaDirtyStreams(): IterableIterator<StreamState> {
    return this.#metaDirty.values();
  }

  /** Marks `stream`'s stored metadata as behind (`metaDirty`), keeping the first time it fell behind. */
  markMetaDirty(stream: StreamState): void {
    if (stream.metaDirty) return;
    stream.metaDirty = true;
    stream.metaDirtySinceMs = this.#clock.nowMs();
    this.#metaDirty.add(stream);
  }

  /** A metadata write took the current metadata: `stream` is clean until it changes again. */
  clearMetaDirty(stream: StreamState): void {
    stream.metaDirty = false;
    this.#metaDirty.delete(stream);
  }

  /** The incarnation at `path`, whatever its state (expired, soft-deleted, not yet durable). */
  atPath(path: string): StreamState | undefined {
    return this.#byPath.get(path);
  }

  /** Every incarnation at a path, in insertion order. */
  pathStreams(): IterableIterator<StreamState> {
    return this.#byPath.values();
  }

  /** The held incarnation numbered `incarnation` (live or soft-deleted). */
  byIncarnation(incarnation: number): StreamState | undefined {
    return this.#byIncarnation.get(incarnation);
  }

  /** Every incarnation still held, soft-deleted ones included, in insertion order. */
  allStreams(): IterableIterator<StreamState> {
    return this.#byIncarnation.values();
  }

  /**
   * Applies one record to the in-memory state. Used for live writes (before the record is durable)
   * and for WAL replay; it must stay deterministic. Returns the stream it touched (undefined for a
   * delete, seal or trim of an incarnation no longer held).
   * @throws Error when an append or create names an incarnation that is not held, or a seal does not
   *   continue the sealed bytes (a bug or a corrupt log, never a client error).
   */
  apply(record: StreamRecord): StreamState | undefined {
    switch (record.t) {
      case 'create': {
        const stream = this.register(record);
        if (record.data !== undefined) this.addHot(stream, record.data);
        stream.closed = record.closed;
        if (record.closed) stream.addSealedViewUpdate({ end: stream.tailOffset, close: true });
        this.markMetaDirty(stream); // the first manifest version stores the new stream
        this.raiseNextIncarnation(record.inc + 1);
        return stream;
      }
      case 'append': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) throw new Error(`append record names missing incarnation ${record.inc}`);
        if (record.data !== undefined) this.addHot(stream, record.data);
        if (record.producer !== undefined) {
          const [id, epoch, seq] = record.producer;
          stream.setProducer(id, { epoch, lastSeq: seq });
          stream.notifyProducerWaiters();
        }
        if (record.streamSeq !== undefined) stream.lastStreamSeq = record.streamSeq;
        if (record.close === true) {
          stream.closed = true;
          stream.closedBy = record.producer;
        }
        if (record.producer !== undefined || record.streamSeq !== undefined || record.close === true) {
          const update = { end: stream.tailOffset, producer: record.producer, streamSeq: record.streamSeq, close: record.close };
          if (stream.addSealedViewUpdate(update)) this.markMetaDirty(stream);
        }
        return stream;
      }
      case 'load':
        return this.#byIncarnation.get(record.inc) ?? this.load(record);
      case 'delete': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) return undefined;
        if (stream.forkCount > 0) {
          stream.softDeleted = true;
          this.markMetaDirty(stream);
        } else {
          this.#remove(stream);
        }
        stream.notify();
        return stream;
      }
      case 'unload': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) return undefined;
        this.evict(stream);
        stream.movedAway = true;
        stream.notify();
        return stream;
      }
      case 'seal': {
        // A seal of a removed stream (deleted while its upload ran) changes nothing.
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined || record.segment.end <= stream.sealedOffset) return stream;
        if (record.segment.start !== stream.sealedOffset || record.segment.end > stream.tailOffset) {
          throw new Error(
            `seal [${record.segment.start}, ${record.segment.end}) of ${stream.path} does not continue [.., ${stream.sealedOffset}) within tail ${stream.tailOffset}`,
          );
        }
        stream.segments.push(record.segment);
        stream.manifestVersion = record.version;
        this.#hotTailBytes -= record.segment.end - record.segment.start;
        stream.hotTail.dropBefore(record.segment.end);
        stream.foldSealedView();
        stream.unsealedSinceMs = this.#clock.nowMs();
        return stream;
      }
      case 'trim': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) return stream;
        stream.manifestVersion = Math.max(stream.manifestVersion, record.version);
        if (record.retainedStart <= stream.retainedStart) return stream;
        const keep = stream.segments.findIndex((segment) => segment.end > record.retainedStart);
        const dropped = keep === -1 ? stream.segments : stream.segments.slice(0, keep);
        stream.segments = keep === -1 ? [] : stream.segments.slice(keep);
        stream.retainedStart = record.retainedStart;
        if (dropped.length > 0) this.#listener?.segmentsDropped(stream, dropped);
        return stream;
      }
    }
  }

  /** Appends `data` (stored form) to the stream's hot tail and counts it in `hotTailBytes`. */
  addHot(stream: StreamState, data: Buffer | DeferredBytes): void {
    if (data.length === 0) return;
    if (stream.hotTail.sizeBytes === 0) stream.unsealedSinceMs = this.#clock.nowMs();
    stream.hotTail.append(data);
    stream.lastAppendMs = this.#clock.nowMs();
    this.#hotTailBytes += data.length;
  }

  /**
   * Creates the state of a new incarnation (from a create record or a checkpoint) and indexes it;
   * a fork counts itself on its source.
   * @throws Error when the fork source incarnation is not held.
   */
  register(meta: IncarnationMeta): StreamState {
    const source = meta.fork === undefined ? undefined : this.#byIncarnation.get(meta.fork.inc);
    if (meta.fork !== undefined && source === undefined) {
      throw new Error(`stream ${meta.path} names missing fork source incarnation ${meta.fork.inc}`);
    }
    const stream = new StreamState({
      path: meta.path,
      incarnation: meta.inc,
      contentType: meta.contentType,
      ttlSeconds: meta.ttlSeconds,
      expiresAtMs: meta.expiresAtMs,
      fork: source === undefined || meta.fork === undefined ? undefined : { source, position: meta.fork.position },
      retentionMs: meta.retentionMs,
      retentionBytes: meta.retentionBytes,
      createdAtMs: meta.createdAtMs,
      objectNodeId: meta.objectNodeId,
      nowMs: this.#clock.nowMs(),
    });
    if (source !== undefined) source.forkCount++;
    this.#byPath.set(meta.path, stream);
    this.#byIncarnation.set(meta.inc, stream);
    return stream;
  }

  /**
   * Registers an incarnation loaded from the object store with its state as of its sealed offset
   * (durable, nothing in the hot tail). @throws Error when its fork source is not held.
   */
  load(record: LoadRecord): StreamState {
    const stream = this.register(record);
    stream.segments = [...record.segments];
    stream.manifestVersion = record.manifestVersion;
    stream.retainedStart = record.retainedStart;
    stream.hotTail.dropBefore(record.sealedOffset);
    stream.durableOffset = record.sealedOffset;
    stream.closed = stream.durableClosed = record.closed;
    stream.closedBy = record.closedBy;
    stream.lastStreamSeq = record.lastStreamSeq;
    stream.softDeleted = record.softDeleted;
    stream.createDurable = true;
    for (const [id, epoch, lastSeq] of record.producers) stream.setProducer(id, { epoch, lastSeq });
    stream.sealedView = {
      producers: new Map(record.producers.map(([id, epoch, lastSeq]) => [id, { epoch, lastSeq }])),
      lastStreamSeq: record.lastStreamSeq,
      closed: record.closed,
      closedBy: record.closedBy,
    };
    this.raiseNextIncarnation(record.inc + 1);
    return stream;
  }

  /** Makes the next incarnation at least `incarnation` (it never goes down). */
  raiseNextIncarnation(incarnation: number): void {
    this.#nextIncarnation = Math.max(this.#nextIncarnation, incarnation);
  }

  /** Marks everything applied so far as durable (after WAL replay); the sealer probes each stream. */
  markAllDurable(): void {
    for (const stream of this.#byIncarnation.values()) StreamTable.markDurable(stream);
  }

  /** Marks what `stream` holds as durable (replayed, or adopted from another node's log). */
  static markDurable(stream: StreamState): void {
    stream.durableOffset = stream.tailOffset;
    stream.durableClosed = stream.closed;
    stream.createDurable = true;
    stream.needsProbe = true;
  }

  /**
   * Forgets `stream` without removing it: no listener hears of it, so its objects stay (a stream
   * loaded from the object store that the registry evicts; a lookup loads it again). Its fork
   * source, if any, counts one fork less.
   */
  evict(stream: StreamState): void {
    this.#forget(stream);
    if (stream.fork !== undefined) stream.fork.source.forkCount--;
  }

  /** Forgets `stream`, then its soft-deleted fork sources that no fork references any more. */
  #remove(stream: StreamState): void {
    this.#forget(stream);
    this.#listener?.removed(stream);
    const source = stream.fork?.source;
    if (source !== undefined) {
      source.forkCount--;
      if (source.softDeleted && source.forkCount === 0) this.#remove(source);
    }
  }

  /** Drops `stream` from the indexes and counters (its objects are not this function's business). */
  #forget(stream: StreamState): void {
    if (this.#byPath.get(stream.path) === stream) this.#byPath.delete(stream.path);
    this.#byIncarnation.delete(stream.incarnation);
    this.#metaDirty.delete(stream);
    this.#hotTailBytes -= stream.hotTail.sizeBytes;
  }
}
