/**
 * Keeps the object store's copy of each subscription close behind the WAL (docs/storage-layout.md
 * "Subscriptions"): a change marks the subscription due — within `--metadata-flush-ms` for its
 * definition (create, explicit links), within `--subscription-cursor-flush-ms` for cursors,
 * generation, lease and retry schedule — and every tick stores the due ones (at most
 * SUBSCRIPTION_STORE_WRITES_MAX at once), each as one new version of its current state. Creates
 * are stored before they are answered and deletes store their tombstone first
 * (subscriptions.ts), so only cursor-level changes younger than the budget can be lost with a disk.
 */
import type { Clock } from '../clock.ts';
import { SUBSCRIPTION_STORE_RETRY_MS, SUBSCRIPTION_STORE_WRITES_MAX } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { eachLimited } from './each-limited.ts';
import { linkViews } from './links.ts';
import type { SubscriptionRecord, SubscriptionSnapshot } from './records.ts';
import { reconcileStored, type Reconciled, type StreamFinding } from './store-reconcile.ts';
import { SubscriptionStoreFencedError, type SubscriptionStore } from './subscription-store.ts';
import { snapshotOf, type Subscription, type SubscriptionTable } from './subscription-table.ts';

/** Which budget a change falls under. */
export type ChangeKind = 'definition' | 'cursor';

export interface StoreSyncOptions {
  store: SubscriptionStore;
  clock: Clock;
  /** Budget of definition changes, ms (`--metadata-flush-ms`). */
  definitionFlushMs: number;
  /** Budget of cursor changes, ms (`--subscription-cursor-flush-ms`). */
  cursorFlushMs: number;
  /** What to store for `id` now; undefined once it is deleted (its tombstone is stored by the delete). */
  stateOf(id: string): SubscriptionSnapshot | undefined;
  onBackgroundError(error: unknown): void;
}

/**
 * What the object store should hold for `sub`: its durable state plus, for a glob, an entry
 * (cursor null: from the start) for each matching stream without one, so a node without this
 * data directory knows which streams to look up. Links in path order, so equal states store
 * equal bytes. O(streams held) for a glob.
 */
export function storedStateOf(registry: StreamRegistry, sub: Subscription): SubscriptionSnapshot {
  const state = snapshotOf(sub);
  if (sub.glob !== null) {
    for (const view of linkViews(registry, sub)) if (!sub.links.has(view.path)) state.links.push([view.path, { explicit: false, acked: null }]);
  }
  state.links.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return state;
}

export class StoreSync {
  readonly #o: StoreSyncOptions;
  /** Subscriptions with unstored changes: id → when they are due (monotonic ms). */
  readonly #due = new Map<string, number>();
  readonly #writing = new Map<string, Promise<void>>();
  /** Ids whose delete has begun: no live version may follow their tombstone (until created again). */
  readonly #deleting = new Set<string>();

  constructor(options: StoreSyncOptions) {
    this.#o = options;
  }

  /** The version chains (tombstones and purges go to it directly). */
  get store(): SubscriptionStore {
    return this.#o.store;
  }

  /** Reconciles the held subscriptions with the stored ones at start (store-reconcile.ts). @throws as `reconcileStored` */
  reconcile(held: { registry: StreamRegistry; finder: StreamFinding; table: SubscriptionTable; commit(record: SubscriptionRecord): Promise<unknown> }): Promise<Reconciled> {
    return reconcileStored({
      store: this.#o.store,
      registry: held.registry,
      finder: held.finder,
      held: (id) => held.table.get(id),
      allHeld: () => held.table.all(),
      commit: held.commit,
      stateOf: this.#o.stateOf,
      changed: (id, kind) => this.changed(id, kind),
    });
  }

  /** The subscription's stored copy is behind: store it within the budget of `kind`. */
  changed(id: string, kind: ChangeKind): void {
    if (this.#deleting.has(id)) return;
    const budget = kind === 'definition' ? this.#o.definitionFlushMs : this.#o.cursorFlushMs;
    const due = this.#o.clock.monotonicMs() + budget;
    const known = this.#due.get(id);
    if (known === undefined || due < known) this.#due.set(id, due);
  }

  /** Subscriptions with unstored changes. */
  get dirtyCount(): number {
    return this.#due.size;
  }

  /** Starts the writes that are due (called every subscription tick). */
  tick(): void {
    const now = this.#o.clock.monotonicMs();
    for (const [id, due] of this.#due) {
      if (this.#writing.size >= SUBSCRIPTION_STORE_WRITES_MAX) return;
      if (due > now || this.#writing.has(id)) continue;
      this.#start(id).catch(() => {});
    }
  }

  /**
   * Stores `id`'s current state now (after any write of it in flight).
   * @throws SubscriptionStoreFencedError; store errors (it stays due and is retried).
   */
  async storeNow(id: string): Promise<void> {
    await this.#writing.get(id);
    await this.#start(id, true);
  }

  /** Stores every subscription with unstored changes and waits for the writes in flight (graceful shutdown, checkpoints). */
  async drain(): Promise<void> {
    await eachLimited([...this.#due.keys()], SUBSCRIPTION_STORE_WRITES_MAX, async (id) => {
      await this.#writing.get(id);
      await this.#start(id).catch(() => {});
    });
    await Promise.allSettled([...this.#writing.values()]);
  }

  /**
   * A delete of `id` begins: its pending changes are dropped and no live version is written after
   * its tombstone (a crash while the older versions are purged would otherwise leave one).
   */
  deleting(id: string): void {
    this.#deleting.add(id);
    this.#due.delete(id);
  }

  /**
   * Begins the delete of `sub`: stores its tombstone. On failure (nothing deleted) the
   * subscription, if `stillHeld()`, is stored again, after the tombstone if that landed.
   * @throws SubscriptionStoreFencedError; store errors.
   */
  async storeTombstone(sub: Subscription, stillHeld: () => boolean): Promise<void> {
    this.deleting(sub.id);
    try {
      await this.#o.store.storeTombstone(sub.id, { createdAtMs: sub.createdAtMs, hash: sub.hash });
    } catch (error) {
      if (stillHeld()) {
        this.created(sub.id);
        this.changed(sub.id, 'definition');
      }
      throw error;
    }
  }

  /** `id` is created (again): its changes are stored from now on. */
  created(id: string): void {
    this.#deleting.delete(id);
  }

  /** Writes `id`'s current state; a failure is reported in the background unless `caller` handles it. */
  #start(id: string, caller = false): Promise<void> {
    this.#due.delete(id);
    const state = this.#deleting.has(id) ? undefined : this.#o.stateOf(id);
    if (state === undefined) return Promise.resolve();
    const write = this.#o.store.storeState(state).catch((error: unknown) => {
      // A fenced subscription is not stored again by this process; anything else is retried.
      if (!(error instanceof SubscriptionStoreFencedError)) this.#retryLater(id);
      if (!caller) this.#o.onBackgroundError(error);
      throw error;
    });
    const settled: Promise<void> = write
      .catch(() => {})
      .finally(() => {
        if (this.#writing.get(id) === settled) this.#writing.delete(id);
      });
    this.#writing.set(id, settled);
    return write;
  }

  #retryLater(id: string): void {
    const due = this.#o.clock.monotonicMs() + SUBSCRIPTION_STORE_RETRY_MS;
    const known = this.#due.get(id);
    if (known === undefined || due < known) this.#due.set(id, due);
  }
}
