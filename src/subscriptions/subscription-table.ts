/**
 * Subscriptions held in memory and the one state-transition function (`apply`) used for live
 * changes and at WAL replay (records.ts). `apply` is synchronous and deterministic given the
 * record; it validates nothing a client sent (subscriptions.ts did before writing the record).
 * `snapshot`/`restore` carry the whole state through a WAL checkpoint (and are the shape an
 * object-store copy would store).
 */
import { compileGlob, type SubscriptionConfig } from './subscription-config.ts';
import type { Link, SubscriptionRecord, SubscriptionSnapshot, Wake } from './records.ts';

export type { Link, Wake, SubscriptionSnapshot } from './records.ts';

export interface Subscription {
  readonly id: string;
  readonly config: SubscriptionConfig;
  readonly hash: string;
  readonly createdAtMs: number;
  readonly origin: string;
  readonly glob: RegExp | null;
  readonly links: Map<string, Link>;
  /** Highest generation issued (§7.3); 0 before the first wake. */
  generation: number;
  wake: Wake | null;
  /** Failed webhook attempts in a row, and when the next one is due (§7.1); 0/null when healthy. */
  attempt: number;
  nextAttemptAtMs: number | null;
}

export class SubscriptionTable {
  readonly #byId = new Map<string, Subscription>();

  get size(): number {
    return this.#byId.size;
  }

  get(id: string): Subscription | undefined {
    return this.#byId.get(id);
  }

  all(): IterableIterator<Subscription> {
    return this.#byId.values();
  }

  /** Applies one record; returns the subscription it touched (undefined after a delete). */
  apply(record: SubscriptionRecord): Subscription | undefined {
    if (record.t === 'sub.put') {
      const sub: Subscription = {
        id: record.id,
        config: record.config,
        hash: record.hash,
        createdAtMs: record.createdAtMs,
        origin: record.origin,
        glob: compileGlob(record.config.pattern),
        links: new Map(),
        generation: 0,
        wake: null,
        attempt: 0,
        nextAttemptAtMs: null,
      };
      for (const path of record.config.streams) sub.links.set(path, { explicit: true, acked: null });
      for (const [path, offset] of record.acked) advance(sub, path, offset);
      this.#byId.set(record.id, sub);
      return sub;
    }
    if (record.t === 'sub.load') {
      const sub = fromSnapshot(record.snapshot);
      this.#byId.set(record.id, sub);
      return sub;
    }
    const sub = this.#byId.get(record.id);
    if (sub === undefined) throw new Error(`subscription record ${record.t} names missing subscription ${record.id}`);
    switch (record.t) {
      case 'sub.del':
        this.#byId.delete(record.id);
        return undefined;
      case 'sub.add':
        for (const [path, offset] of record.links) {
          const link = sub.links.get(path);
          if (link === undefined) sub.links.set(path, { explicit: true, acked: offset });
          else link.explicit = true;
        }
        return sub;
      case 'sub.rm': {
        const link = sub.links.get(record.path);
        if (link === undefined) return sub;
        // The cursor stays while the glob still matches (§6.4); otherwise the link is gone.
        if (sub.glob?.test(record.path) === true) link.explicit = false;
        else sub.links.delete(record.path);
        return sub;
      }
      case 'sub.wake':
        sub.generation = record.gen;
        sub.wake = { gen: record.gen, wakeId: record.wake, tokenHash: record.tokenHash, holder: null, leaseUntilMs: record.leaseUntilMs, offered: record.offered };
        sub.nextAttemptAtMs = null;
        return sub;
      case 'sub.claim':
        sub.generation = record.gen;
        sub.wake = {
          gen: record.gen,
          wakeId: record.wake,
          tokenHash: record.tokenHash,
          holder: record.holder,
          leaseUntilMs: record.leaseUntilMs,
          offered: record.offered,
        };
        return sub;
      case 'sub.ack':
        for (const [path, offset] of record.acks) advance(sub, path, offset);
        sub.attempt = 0;
        sub.nextAttemptAtMs = null;
        if (sub.wake?.gen === record.gen) {
          if (record.done) sub.wake = null;
          else if (record.leaseUntilMs !== null) sub.wake.leaseUntilMs = record.leaseUntilMs;
        }
        return sub;
      case 'sub.release':
        if (sub.wake?.gen === record.gen) sub.wake = null;
        return sub;
      case 'sub.prune':
        for (const path of record.paths) {
          if (sub.links.get(path)?.explicit === false) sub.links.delete(path);
        }
        return sub;
      case 'sub.fail':
        if (sub.wake?.gen === record.gen) sub.wake = null;
        sub.attempt = record.attempt;
        sub.nextAttemptAtMs = record.nextAttemptAtMs;
        return sub;
    }
  }

  snapshot(): SubscriptionSnapshot[] {
    return [...this.#byId.values()].map(snapshotOf);
  }

  /** Loads a checkpoint into an empty table (before WAL replay). */
  restore(snapshot: readonly SubscriptionSnapshot[]): void {
    for (const saved of snapshot) this.#byId.set(saved.id, fromSnapshot(saved));
  }
}

/** A copy of `sub`'s durable state (nothing shared with the live subscription). */
export function snapshotOf(sub: Subscription): SubscriptionSnapshot {
  return {
    id: sub.id,
    config: sub.config,
    hash: sub.hash,
    createdAtMs: sub.createdAtMs,
    origin: sub.origin,
    links: [...sub.links].map(([path, link]) => [path, { ...link }]),
    generation: sub.generation,
    wake: sub.wake === null ? null : { ...sub.wake, offered: [...sub.wake.offered] },
    attempt: sub.attempt,
    nextAttemptAtMs: sub.nextAttemptAtMs,
  };
}

function fromSnapshot(saved: SubscriptionSnapshot): Subscription {
  return {
    ...saved,
    glob: compileGlob(saved.config.pattern),
    links: new Map(saved.links.map(([path, link]) => [path, { ...link }])),
    wake: saved.wake === null ? null : { ...saved.wake, offered: [...saved.wake.offered] },
  };
}

/** Moves a cursor forward only: an older or equal offset leaves it (acked cursors never go back). */
function advance(sub: Subscription, path: string, offset: string): void {
  const link = sub.links.get(path);
  if (link === undefined) sub.links.set(path, { explicit: false, acked: offset });
  else if (link.acked === null || offset > link.acked) link.acked = offset;
}
