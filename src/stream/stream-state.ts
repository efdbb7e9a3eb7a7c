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
