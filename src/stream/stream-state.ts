/**
 * The state of one stream incarnation. Two views are kept: the *assigned* state (every accepted
 * request, including those whose WAL record is not yet fsynced — used to validate the next
 * write) and the *durable* state (what readers may see: `durableOffset`, `durableClosed`).
 * Invariant: `sealedOffset ≤ durableOffset ≤ tailOffset`.
 */
import { HotTail } from './hot-tail.ts';
import { isJsonContentType } from '../protocol/content-type.ts';

export interface ProducerState {
  epoch: number;
  lastSeq: number;
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
  readonly producers = new Map<string, ProducerState>();

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
  lastCommit: Promise<void> = Promise.resolve();
  /** Live readers waiting for bytes past `durableOffset` or for closure. */
  readonly waiters = new Set<() => void>();

  constructor(options: {
    path: string;
    incarnation: number;
    contentType: string;
    ttlSeconds?: number;
    expiresAtMs?: number;
    fork?: { source: StreamState; position: number };
    nowMs: number;
  }) {
    this.path = options.path;
    this.incarnation = options.incarnation;
    this.contentType = options.contentType;
    this.isJson = isJsonContentType(options.contentType);
    this.ttlSeconds = options.ttlSeconds;
    this.expiresAtMs = options.expiresAtMs;
    this.fork = options.fork;
    const base = options.fork?.position ?? 0;
    this.hotTail = new HotTail(base);
    this.durableOffset = base;
    this.lastAccessMs = options.nowMs;
  }

  /** Next position to be assigned. */
  get tailOffset(): number {
    return this.hotTail.endPosition;
  }

  /** End of the bytes stored in segments (the next issue seals; until then the hot tail start). */
  get sealedOffset(): number {
    return this.hotTail.startPosition;
  }

  /** First position held by this stream itself (the fork point, or 0). */
  get basePosition(): number {
    return this.fork?.position ?? 0;
  }

  /** Absolute expiry instant in ms, from Stream-Expires-At or the sliding TTL; undefined = never. */
  expiryMs(): number | undefined {
    if (this.expiresAtMs !== undefined) return this.expiresAtMs;
    if (this.ttlSeconds !== undefined) return this.lastAccessMs + this.ttlSeconds * 1000;
    return undefined;
  }

  /** Wakes every live reader waiting on this stream. */
  notify(): void {
    for (const wake of [...this.waiters]) wake();
  }
}
