/**
 * WAL records of subscriptions (PROTOCOL.md §6–7). They travel in the same WAL as the stream
 * records and are applied by one function (subscription-table.ts `apply`) live and at replay, so a
 * restart reproduces configuration, acked cursors and generations exactly. A record is queued
 * before its effect is applied and a response or a wake goes out only once it is durable, so an
 * acknowledged cursor never moves back and a generation is never issued twice (DESIGN.md
 * invariants, the same order as the stream registry's).
 *
 * Offsets are the streams' offset tokens (src/protocol/offset.ts), which sort lexicographically
 * across incarnations, so "the later cursor" is a string comparison.
 */
import type { SubscriptionConfig } from './subscription-config.ts';

/** `[path, offset token]`: a cursor position, or the tail a wake offered. */
export type PathOffset = [string, string];

/** One stream link's durable fields (§6.1). A glob-matched stream with no entry is linked at its start. */
export interface Link {
  explicit: boolean;
  /** Last processed offset token, inclusive; null: linked before the stream's first append. */
  acked: string | null;
}

/** The wake in flight (§7): generation, id, lease. */
export interface Wake {
  gen: number;
  wakeId: string;
  /** SHA-256 (hex) of the callback or claim token; null for an unclaimed pull wake. */
  tokenHash: string | null;
  /** Pull-wake worker holding the lease; null for webhooks and unclaimed pull wakes. */
  holder: string | null;
  /** Wall-clock lease deadline; null: not started (pull wake not claimed yet). */
  leaseUntilMs: number | null;
  /** The tails this wake offered (a webhook's `done` acks exactly these). */
  offered: PathOffset[];
}

/** The whole durable state of one subscription: what a checkpoint and the object store hold. */
export interface SubscriptionSnapshot {
  id: string;
  config: SubscriptionConfig;
  hash: string;
  createdAtMs: number;
  origin: string;
  links: [string, Link][];
  generation: number;
  wake: Wake | null;
  attempt: number;
  nextAttemptAtMs: number | null;
}

/** A subscription is created (§6.2), with the tails of the matching streams it was backfilled at. */
export interface SubscriptionPutRecord {
  t: 'sub.put';
  id: string;
  config: SubscriptionConfig;
  hash: string;
  createdAtMs: number;
  /** Origin of the create request (`https://host:port`): base of `callback_url` and `jwks_url`. */
  origin: string;
  acked: PathOffset[];
}

/** A subscription is deleted (§6.3): its in-flight wakes are fenced from now on. */
export interface SubscriptionDeleteRecord {
  t: 'sub.del';
  id: string;
}

/** Explicit links are added (§6.4), at the tails of the streams that exist (null: not yet). */
export interface SubscriptionAddRecord {
  t: 'sub.add';
  id: string;
  links: [string, string | null][];
}

/** An explicit link is removed (§6.4); a glob link to the same path stays. */
export interface SubscriptionRemoveRecord {
  t: 'sub.rm';
  id: string;
  path: string;
}

/**
 * A wake is issued: generation `gen` with id `wake` (§7). Webhook wakes carry the hash of their
 * callback token, the lease deadline and the tails offered (auto-ack on `done`); pull-wake wakes
 * carry neither token nor lease until claimed.
 */
export interface SubscriptionWakeRecord {
  t: 'sub.wake';
  id: string;
  gen: number;
  wake: string;
  tokenHash: string | null;
  leaseUntilMs: number | null;
  offered: PathOffset[];
}

/** A pull-wake worker claimed generation `gen` (issuing it if no wake was in flight, §7.2). */
export interface SubscriptionClaimRecord {
  t: 'sub.claim';
  id: string;
  gen: number;
  wake: string;
  holder: string;
  tokenHash: string;
  leaseUntilMs: number;
  offered: PathOffset[];
}

/**
 * Offsets acknowledged under generation `gen` (callback, ack, or a webhook's synchronous
 * `done`). `done` ends the wake; otherwise the lease runs until `leaseUntilMs` (heartbeat).
 */
export interface SubscriptionAckRecord {
  t: 'sub.ack';
  id: string;
  gen: number;
  acks: PathOffset[];
  done: boolean;
  leaseUntilMs: number | null;
}

/** A worker released generation `gen` without finishing it (§7.2). */
export interface SubscriptionReleaseRecord {
  t: 'sub.release';
  id: string;
  gen: number;
}

/** Webhook delivery of generation `gen` failed; the next attempt is due at `nextAttemptAtMs` (§7.1). */
export interface SubscriptionFailRecord {
  t: 'sub.fail';
  id: string;
  gen: number;
  attempt: number;
  nextAttemptAtMs: number;
}

/**
 * A subscription read from the object store that this node's WAL did not hold (a lost data
 * directory, or another node's): written before any other record names it (store-sync.ts).
 */
export interface SubscriptionLoadRecord {
  t: 'sub.load';
  id: string;
  snapshot: SubscriptionSnapshot;
}

/** Glob-link cursors of streams that no longer exist are dropped, so the link table does not grow with deleted streams. */
export interface SubscriptionPruneRecord {
  t: 'sub.prune';
  id: string;
  paths: string[];
}

export type SubscriptionRecord =
  | SubscriptionPutRecord
  | SubscriptionDeleteRecord
  | SubscriptionAddRecord
  | SubscriptionRemoveRecord
  | SubscriptionWakeRecord
  | SubscriptionClaimRecord
  | SubscriptionAckRecord
  | SubscriptionReleaseRecord
  | SubscriptionFailRecord
  | SubscriptionLoadRecord
  | SubscriptionPruneRecord;

/** True for the records of this module (their `t` starts with `sub.`); stream records never do. */
export function isSubscriptionRecord(record: unknown): record is SubscriptionRecord {
  const t = (record as { t?: unknown } | null)?.t;
  return typeof t === 'string' && t.startsWith('sub.');
}
