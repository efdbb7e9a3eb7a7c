/**
 * The version chain of each subscription in the object store (stored-format.ts,
 * docs/storage-layout.md "Subscriptions"), kept like a stream's manifests:
 *
 * - Version n+1 is written create-if-absent only after version n is stored, through
 *   `putCreateIfAbsent` (the one read-back-and-compare): a put whose answer was lost is retried
 *   with the same bytes before any newer version, so our own earlier write is recognised; other
 *   bytes under the key mean a second writer, and this process stops writing that subscription
 *   (`SubscriptionStoreFencedError`), as the sealer stops on a fenced stream.
 * - Once a version is stored the older ones are deleted (best effort; a later write or start
 *   tries again).
 * - A delete stores a tombstone version (the life it ends) and, once the WAL holds the delete,
 *   `purge` removes the older versions and then the tombstone, so no crash leaves a live version
 *   without a newer tombstone.
 *
 * Operations on one id run one at a time, in call order.
 */
import type { WallClock } from '../clock.ts';
import { SUBSCRIPTION_LOAD_LOOKUPS_MAX } from '../config/limits.ts';
import { listAll, ObjectAlreadyExistsError, putCreateIfAbsent, type ObjectStore } from '../object-store/index.ts';
import { eachLimited } from './each-limited.ts';
import type { SubscriptionSnapshot } from './records.ts';
import {
  decodeStoredSubscription,
  encodeStoredSubscription,
  parseSubscriptionKey,
  STORED_SUBSCRIPTION_FORMAT,
  subscriptionKey,
  SUBSCRIPTIONS_KEY_PREFIX,
  type StoredSubscription,
  type SubscriptionLife,
} from './stored-format.ts';

/** A version of this subscription exists with other content: another node writes it. */
export class SubscriptionStoreFencedError extends Error {
  readonly key: string;
  constructor(key: string) {
    super(`stored subscription ${key} already exists with other content: another node writes this subscription; this process stops storing it`);
    this.name = 'SubscriptionStoreFencedError';
    this.key = key;
  }
}

export interface SubscriptionStoreOptions {
  /** The store as the server uses it (retries included). */
  store: ObjectStore;
  /** This node's id (written into every version). */
  nodeId: string;
  clock: WallClock;
}

export class SubscriptionStore {
  readonly #store: ObjectStore;
  readonly #nodeId: string;
  readonly #clock: WallClock;
  /** Newest version known stored, per id (absent: none). */
  readonly #current = new Map<string, number>();
  /** Older versions known to exist, deleted once a newer one is stored. */
  readonly #stale = new Map<string, Set<number>>();
  /** A put whose outcome is unknown, retried with the same bytes before anything newer. */
  readonly #pending = new Map<string, { version: number; body: Uint8Array; content: string }>();
  readonly #fenced = new Set<string>();
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Versions put (counted once stored), for tests and metrics. */
  putCount = 0;

  constructor(options: SubscriptionStoreOptions) {
    this.#store = options.store;
    this.#nodeId = options.nodeId;
    this.#clock = options.clock;
  }

  /**
   * Lists every stored subscription (one LIST of `_cairn/subscriptions/`, paged by 1,000) and
   * reads each one's newest version (one GET each, SUBSCRIPTION_LOAD_LOOKUPS_MAX at once); older
   * versions found are deleted by `deleteStaleVersions`.
   * @returns the newest version of each id, live or tombstone.
   * @throws StoredSubscriptionCorruptError; store errors.
   */
  async loadAll(): Promise<Map<string, StoredSubscription>> {
    const versions = new Map<string, number[]>();
    for await (const object of listAll(this.#store, SUBSCRIPTIONS_KEY_PREFIX)) {
      const named = parseSubscriptionKey(object.key);
      if (named === undefined) continue;
      const list = versions.get(named.id) ?? [];
      list.push(named.version);
      versions.set(named.id, list);
    }
    const newest = new Map<string, StoredSubscription>();
    await eachLimited(versions, SUBSCRIPTION_LOAD_LOOKUPS_MAX, async ([id, list]) => {
      const top = Math.max(...list);
      this.#current.set(id, top);
      this.#stale.set(id, new Set(list.filter((version) => version !== top)));
      const key = subscriptionKey(id, top);
      newest.set(id, decodeStoredSubscription(key, (await this.#store.get(key)).body));
    });
    // In key order, whatever order the reads finished in.
    return new Map([...newest].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** The newest version known stored for `id` (0: none). */
  versionOf(id: string): number {
    return this.#current.get(id) ?? 0;
  }

  /** Stores the next version of a live subscription. @throws SubscriptionStoreFencedError; store errors (retry later). */
  storeState(state: SubscriptionSnapshot): Promise<void> {
    return this.#serial(state.id, () => this.#putNext(state.id, { state, ended: null }));
  }

  /** Stores a tombstone version ending `life`. @throws as `storeState` */
  storeTombstone(id: string, life: SubscriptionLife): Promise<void> {
    return this.#serial(id, () => this.#putNext(id, { state: null, ended: life }));
  }

  /**
   * Deletes every version of `id`, the newest (the tombstone) last. Call only once the WAL holds
   * the delete. @throws store errors (call again).
   */
  purge(id: string): Promise<void> {
    return this.#serial(id, async () => {
      const current = this.#current.get(id);
      const pending = this.#pending.get(id);
      // A put with a lost answer may have stored its version: it goes too (before the newest).
      if (pending !== undefined) await this.#store.delete(subscriptionKey(id, pending.version));
      await this.#deleteStale(id);
      if (current !== undefined) await this.#store.delete(subscriptionKey(id, current));
      this.#current.delete(id);
      this.#stale.delete(id);
      this.#pending.delete(id);
    });
  }

  /** Deletes the versions older than the newest (after `loadAll`); errors are left for a later write. */
  async deleteStaleVersions(): Promise<void> {
    for (const id of [...this.#stale.keys()]) await this.#serial(id, () => this.#deleteStale(id)).catch(() => {});
  }

  async #putNext(id: string, content: Pick<StoredSubscription, 'state' | 'ended'>): Promise<void> {
    const pending = this.#pending.get(id);
    const text = JSON.stringify(content);
    if (pending !== undefined) {
      await this.#put(id, pending.version, pending.body);
      // The retried version already holds this content: nothing newer to store.
      if (pending.content === text) return;
    }
    const version = this.versionOf(id) + 1;
    const stored: StoredSubscription = {
      format: STORED_SUBSCRIPTION_FORMAT,
      id,
      version,
      nodeId: this.#nodeId,
      storedAtMs: this.#clock.nowMs(),
      ...content,
    };
    const body = encodeStoredSubscription(stored);
    this.#pending.set(id, { version, body, content: text });
    await this.#put(id, version, body);
    await this.#deleteStale(id).catch(() => {});
  }

  async #put(id: string, version: number, body: Uint8Array): Promise<void> {
    const key = subscriptionKey(id, version);
    if (this.#fenced.has(id)) throw new SubscriptionStoreFencedError(key);
    try {
      await putCreateIfAbsent(this.#store, key, body);
    } catch (error) {
      if (error instanceof ObjectAlreadyExistsError) {
        this.#fenced.add(id);
        throw new SubscriptionStoreFencedError(key);
      }
      throw error;
    }
    this.#pending.delete(id);
    this.putCount++;
    const previous = this.#current.get(id);
    if (previous !== undefined) {
      const stale = this.#stale.get(id) ?? new Set<number>();
      stale.add(previous);
      this.#stale.set(id, stale);
    }
    this.#current.set(id, version);
  }

  async #deleteStale(id: string): Promise<void> {
    const stale = this.#stale.get(id);
    if (stale === undefined || stale.size === 0) return;
    const versions = [...stale];
    await this.#store.deleteMany(versions.map((version) => subscriptionKey(id, version)));
    for (const version of versions) stale.delete(version);
  }

  /** Runs `operation` after every earlier operation on `id` settled. */
  #serial<T>(id: string, operation: () => Promise<T>): Promise<T> {
    const previous = this.#chains.get(id) ?? Promise.resolve();
    const next = previous.then(operation, operation);
    const settled = next.catch(() => {});
    this.#chains.set(id, settled);
    void settled.then(() => {
      if (this.#chains.get(id) === settled) this.#chains.delete(id);
    });
    return next;
  }
}
