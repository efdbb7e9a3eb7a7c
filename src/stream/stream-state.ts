/**
 * The state of one stream incarnation. Two views are kept: the *assigned* state (every accepted
 * request, including those whose WAL record is not yet fsynced — used to validate the next
 * write) and the *durable* state (what readers may see: `durableOffset`, `durableClosed`).
 * Invariant: `sealedOffset ≤ durableOffset ≤ tailOffset`.
 */
import { HotTail } from './hot-tail.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import { isJsonContentType } from '../protocol/content-type.ts';

export interface ProducerState {
  epoch: number;
  lastSeq: number;
}

/**
 * What the stream looked like at its sealed offset: producers, last Stream-Seq and closure as
 * stored in the manifest (docs/storage-layout.md). A node that loses its disk serves exactly this.
 */
export interface SealedView {
  producers: Map<string, ProducerState>;
  lastStreamSeq: string | undefined;
  closed: boolean;
  closedBy: [string, number, number] | undefined;
}

/** A change to the sealed view that takes effect once the sealed offset reaches `end`. */
export interface SealedViewUpdate {
  end: number;
  producer?: [string, number, number];
  streamSeq?: string;
  close?: boolean;
}

/** The initial `lastCommit` of every stream: one settled promise shared by all. */
const SETTLED: Promise<void> = Promise.resolve();
const EMPTY_PRODUCERS: ReadonlyMap<string, ProducerState> = new Map();

/** Content types seen, so a million streams of one type share one string (bounded: a few types are usual). */
const contentTypes = new Map<string, string>();
const CONTENT_TYPES_INTERNED_MAX = 1024;

function interned(contentType: string): string {
  const known = contentTypes.get(contentType);
  if (known !== undefined) return known;
  if (contentTypes.size < CONTENT_TYPES_INTERNED_MAX) contentTypes.set(contentType, contentType);
  return contentType;
}

export class StreamState {
  readonly path: string;
  readonly incarnation: number;
  readonly contentType: string;
  readonly isJson: boolean;
  readonly ttlSeconds: number | undefined;
  readonly expiresAtMs: number | undefined;
  /** Source stream and the position where this fork diverges (its own bytes start there). */
  readonly fork: { source: StreamState; position: number } | undefined;
  readonly hotTail: HotTail;
  /** Idempotent producers by id (created with the first one: most streams have none). */
  #producers: Map<string, ProducerState> | undefined;
  /** Per-stream retention from the create request; undefined = the server default. */
  readonly retentionMs: number | undefined;
  readonly retentionBytes: number | undefined;
  /** When the stream was created (ms since the epoch), as stored with its metadata. */
  readonly createdAtMs: number;
  /**
   * The node id in this incarnation's object keys when another node (or this data directory's
   * earlier life) created it and it was loaded from the object store; undefined = this node.
   */
  readonly objectNodeId: string | undefined;
  /** Producers, Stream-Seq and closure as of `sealedOffset` (what the manifest stores). */
  sealedView: SealedView = { producers: new Map(), lastStreamSeq: undefined, closed: false, closedBy: undefined };
  /** Changes above `sealedOffset`, in order, folded into `sealedView` as seals pass their `end`. */
  sealedViewPending: SealedViewUpdate[] = [];
  /**
   * Stored metadata is behind (created, closed at a sealed tail, soft-deleted without a seal):
   * the sealer writes a manifest version within `--metadata-flush-ms`.
   */
  metaDirty = false;
  /** When `metaDirty` was last set (ms): the metadata flush is due `--metadata-flush-ms` later. */
  metaDirtySinceMs = 0;
  /** Loaded from the object store and not yet in the WAL: the first record for it is preceded by a load record. */
  unlogged = false;
  /** Sealed segments of this stream's own bytes, contiguous, ending at `sealedOffset`. */
  segments: SegmentRef[] = [];
  /** Latest stored manifest version (0 = none yet). */
  manifestVersion = 0;
  /** First position of this stream's own bytes still kept (retention); below it reads get 410. */
  retainedStart: number;
  /** Last append (ms, injected clock): the seal policy's idle timer. Not persisted. */
  lastAppendMs: number;
  /** When the hot tail last went from empty to holding bytes (ms): the seal policy's age timer. */
  unsealedSinceMs: number;
  /**
   * Set for streams recovered from the WAL: a seal may have reached the object store without its
   * seal record reaching the WAL, so the sealer looks before sealing again.
   */
  needsProbe = false;

  /** Last read or write (sliding TTL); not persisted — restart counts as access. */
  lastAccessMs: number;
  closed = false;
  /** The producer request that closed the stream, for idempotent retries of the final append. */
  closedBy: [string, number, number] | undefined;
  lastStreamSeq: string | undefined;
  durableOffset: number;
  durableClosed = false;
  /** True once the create record is fsynced. */
  createDurable = false;
  /** Number of forks whose source is this stream. */
  forkCount = 0;
  softDeleted = false;
  /** Cluster mode: the stream's slot moved to another node and this state was unloaded (live readers go there). */
  movedAway = false;
  /** Settles when the newest record of this stream is durable (rejects if the WAL failed). */
  lastCommit: Promise<void> = SETTLED;
  /** Live readers waiting for bytes past `durableOffset` or for closure (created with the first one). */
  #waiters: Set<() => void> | undefined;
  /** Appends holding a producer sequence gap, woken when any producer's state changes (created on demand). */
  producerWaiters: Set<() => void> | undefined;

  constructor(options: {
    path: string;
    incarnation: number;
    contentType: string;
    ttlSeconds?: number;
    expiresAtMs?: number;
    fork?: { source: StreamState; position: number };
    retentionMs?: number;
    retentionBytes?: number;
    createdAtMs?: number;
    objectNodeId?: string;
    nowMs: number;
  }) {
    this.path = options.path;
    this.incarnation = options.incarnation;
    this.contentType = interned(options.contentType);
    this.isJson = isJsonContentType(options.contentType);
    this.ttlSeconds = options.ttlSeconds;
    this.expiresAtMs = options.expiresAtMs;
    this.fork = options.fork;
    const base = options.fork?.position ?? 0;
    this.hotTail = new HotTail(base);
    this.durableOffset = base;
    this.retainedStart = base;
    this.retentionMs = options.retentionMs;
    this.retentionBytes = options.retentionBytes;
    this.createdAtMs = options.createdAtMs ?? options.nowMs;
    this.objectNodeId = options.objectNodeId;
    this.lastAccessMs = options.nowMs;
    this.lastAppendMs = options.nowMs;
    this.unsealedSinceMs = options.nowMs;
  }

  /** Next position to be assigned. */
  get tailOffset(): number {
    return this.hotTail.endPosition;
  }

  /** End of the bytes stored in segments: the hot tail starts here. */
  get sealedOffset(): number {
    return this.hotTail.startPosition;
  }

  /** First position held by this stream itself (the fork point, or 0). */
  get basePosition(): number {
    return this.fork?.position ?? 0;
  }

  /** Index in `segments` of the segment holding `position` (which must be in `[retainedStart, sealedOffset)`). */
  segmentIndexAt(position: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.segments[mid].start <= position) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /** Absolute expiry instant in ms, from Stream-Expires-At or the sliding TTL; undefined = never. */
  expiryMs(): number | undefined {
    if (this.expiresAtMs !== undefined) return this.expiresAtMs;
    if (this.ttlSeconds !== undefined) return this.lastAccessMs + this.ttlSeconds * 1000;
    return undefined;
  }

  /**
   * Records a change of producers, Stream-Seq or closure ending at `update.end`.
   * @returns true when it applied at once (everything up to `end` is sealed): stored metadata is behind.
   */
  addSealedViewUpdate(update: SealedViewUpdate): boolean {
    if (update.end <= this.sealedOffset && this.sealedViewPending.length === 0) {
      applySealedViewUpdate(this.sealedView, update);
      return true;
    }
    this.sealedViewPending.push(update);
    return false;
  }

  /** The sealed view as it will be once the sealed offset reaches `offset` (not stored; for a manifest being written). */
  sealedViewAt(offset: number): SealedView {
    const view: SealedView = { ...this.sealedView, producers: new Map(this.sealedView.producers) };
    for (const update of this.sealedViewPending) {
      if (update.end > offset) break;
      applySealedViewUpdate(view, update);
    }
    return view;
  }

  /** Folds the pending changes that end at or below the sealed offset (after a seal). */
  foldSealedView(): void {
    let folded = 0;
    while (folded < this.sealedViewPending.length && this.sealedViewPending[folded].end <= this.sealedOffset) {
      applySealedViewUpdate(this.sealedView, this.sealedViewPending[folded]);
      folded++;
    }
    if (folded > 0) this.sealedViewPending.splice(0, folded);
  }

  /** Wakes every append waiting for a producer's earlier sequence number. */
  notifyProducerWaiters(): void {
    if (this.producerWaiters !== undefined) for (const wake of [...this.producerWaiters]) wake();
  }

  /** The state of producer `producerId`, if it ever appended. */
  producer(producerId: string): ProducerState | undefined {
    return this.#producers?.get(producerId);
  }

  setProducer(producerId: string, state: ProducerState): void {
    (this.#producers ??= new Map()).set(producerId, state);
  }

  /** Every producer's state (checkpoints). */
  producerStates(): IterableIterator<[string, ProducerState]> {
    return (this.#producers ?? EMPTY_PRODUCERS).entries();
  }

  /** Registers a live reader's wake-up; `removeWaiter` must follow when its wait ends. */
  addWaiter(wake: () => void): void {
    (this.#waiters ??= new Set()).add(wake);
  }

  removeWaiter(wake: () => void): void {
    if (this.#waiters === undefined) return;
    this.#waiters.delete(wake);
    if (this.#waiters.size === 0) this.#waiters = undefined;
  }

  /** True while a live reader or an append holding a producer sequence gap waits on this stream. */
  get hasWaiters(): boolean {
    return this.#waiters !== undefined || this.producerWaiters !== undefined;
  }

  /** Wakes every live reader waiting on this stream. */
  notify(): void {
    if (this.#waiters !== undefined) for (const wake of [...this.#waiters]) wake();
  }

  #notifyScheduled = false;

  /**
   * Wakes the live readers once the current turn of the event loop is done (setImmediate), at most
   * once per turn: the appends that made the bytes durable answer their writers first, and a
   * group commit of many appends to this stream wakes its readers once.
   */
  notifySoon(): void {
    if (this.#notifyScheduled || this.#waiters === undefined) return;
    this.#notifyScheduled = true;
    setImmediate(() => {
      this.#notifyScheduled = false;
      this.notify();
    });
  }
}

function applySealedViewUpdate(view: SealedView, update: SealedViewUpdate): void {
  if (update.producer !== undefined) view.producers.set(update.producer[0], { epoch: update.producer[1], lastSeq: update.producer[2] });
  if (update.streamSeq !== undefined) view.lastStreamSeq = update.streamSeq;
  if (update.close === true) {
    view.closed = true;
    view.closedBy = update.producer;
  }
}
