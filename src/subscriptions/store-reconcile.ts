/**
 * At start, after WAL recovery: the subscriptions this node holds are reconciled with the object
 * store (docs/storage-layout.md "Subscriptions"). One LIST of `_cairn/subscriptions/` and one GET
 * per subscription, then per id:
 *
 * | stored newest | held locally | action |
 * |---|---|---|
 * | live | no | **load**: the node lost its data directory (or another node wrote it) |
 * | live | yes | store the local state if it differs (the WAL is newer) |
 * | tombstone of this life | yes | the delete was decided before a crash: delete locally, purge |
 * | tombstone of another life | yes | re-created since: store the local state |
 * | tombstone | no | finish the delete: purge |
 * | none | yes | store the local state |
 *
 * Loading writes a `sub.load` record (so later records of the subscription replay), after looking
 * up every stream it names (explicit links, stored cursors, the wake stream) so delivery resumes at
 * once. Cursors above a stream's current tail (bytes lost with the unsealed tail) are lowered to
 * it, so events appended again at those offsets are not skipped; the wake in flight is dropped
 * and its work offered again under a new generation. Delivery is at-least-once: what was acked
 * after the last stored version is delivered again.
 */
import { SUBSCRIPTION_LOAD_LOOKUPS_MAX } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { currentStream, tailOffset } from './links.ts';
import type { SubscriptionRecord, SubscriptionSnapshot } from './records.ts';
import type { ChangeKind } from './store-sync.ts';
import { encodeStoredSubscription, type StoredSubscription } from './stored-format.ts';
import type { SubscriptionStore } from './subscription-store.ts';
import type { Subscription } from './subscription-table.ts';

/** Finds a stream path in the object store and installs it in the registry (src/tiering/stream-finder.ts). */
export interface StreamFinding {
  find(path: string): Promise<void>;
}

export interface ReconcileOptions {
  store: SubscriptionStore;
  registry: StreamRegistry;
  finder: StreamFinding;
  held(id: string): Subscription | undefined;
  allHeld(): Iterable<Subscription>;
  commit(record: SubscriptionRecord): Promise<unknown>;
  /** What would be stored for `id` now (subscriptions.ts). */
  stateOf(id: string): SubscriptionSnapshot | undefined;
  changed(id: string, kind: ChangeKind): void;
}

/** What reconciliation did, by subscription id. */
export interface Reconciled {
  loaded: string[];
  deleted: string[];
  purged: string[];
  behind: string[];
}

/** @throws StoredSubscriptionCorruptError; store errors (the server does not start). */
export async function reconcileStored(o: ReconcileOptions): Promise<Reconciled> {
  const result: Reconciled = { loaded: [], deleted: [], purged: [], behind: [] };
  const stored = await o.store.loadAll();
  for (const [id, newest] of stored) {
    const local = o.held(id);
    if (newest.state === null) {
      if (local === undefined) {
        await o.store.purge(id);
        result.purged.push(id);
      } else if (newest.ended?.createdAtMs === local.createdAtMs && newest.ended.hash === local.hash) {
        await o.commit({ t: 'sub.del', id });
        await o.store.purge(id);
        result.deleted.push(id);
      } else {
        o.changed(id, 'definition');
        result.behind.push(id);
      }
    } else if (local === undefined) {
      await o.commit({ t: 'sub.load', id, snapshot: await prepareLoaded(o, newest.state) });
      result.loaded.push(id);
    } else if (!sameState(newest, o.stateOf(id))) {
      o.changed(id, 'cursor');
      result.behind.push(id);
    }
  }
  for (const sub of o.allHeld()) {
    if (!stored.has(sub.id)) {
      o.changed(sub.id, 'definition');
      result.behind.push(sub.id);
    }
  }
  await o.store.deleteStaleVersions();
  return result;
}

function sameState(stored: StoredSubscription, local: SubscriptionSnapshot | undefined): boolean {
  if (local === undefined || stored.state === null) return false;
  const encode = (state: SubscriptionSnapshot) => Buffer.from(encodeStoredSubscription({ ...stored, state }));
  return Buffer.compare(encode(stored.state), encode(local)) === 0;
}

/** Looks up the streams `snapshot` names, lowers cursors above their tails, drops the wake in flight. */
async function prepareLoaded(o: ReconcileOptions, snapshot: SubscriptionSnapshot): Promise<SubscriptionSnapshot> {
  const paths = new Set<string>([...snapshot.links.map(([path]) => path), ...snapshot.config.streams]);
  if (snapshot.config.wakeStream !== null) paths.add(snapshot.config.wakeStream);
  const queue = [...paths];
  await Promise.all(
    Array.from({ length: Math.min(SUBSCRIPTION_LOAD_LOOKUPS_MAX, queue.length) }, async () => {
      for (let path = queue.pop(); path !== undefined; path = queue.pop()) await o.finder.find(path);
    }),
  );
  const links = snapshot.links.map(([path, link]): [string, typeof link] => {
    const stream = currentStream(o.registry, path);
    if (stream === undefined || link.acked === null) return [path, { ...link }];
    const tail = tailOffset(o.registry, stream);
    return [path, { ...link, acked: link.acked > tail ? tail : link.acked }];
  });
  return { ...snapshot, links, wake: null };
}
