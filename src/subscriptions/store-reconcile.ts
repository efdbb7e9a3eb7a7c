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
 * once. Then every held subscription's streams the node does not hold are looked up the same way
 * (one loaded read-only earlier has no WAL record), and glob-link cursors of paths still absent —
 * streams deleted while a prune record was not yet written — are pruned. Cursors above a stream's current tail (bytes lost with the unsealed tail) are lowered to
 * it, so events appended again at those offsets are not skipped; the wake in flight is dropped
 * and its work offered again under a new generation. Delivery is at-least-once: what was acked
 * after the last stored version is delivered again.
 */
import { SUBSCRIPTION_LOAD_LOOKUPS_MAX } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { eachLimited } from './each-limited.ts';
import { currentStream, tailOffset } from './links.ts';
import type { SubscriptionRecord, SubscriptionSnapshot } from './records.ts';
import type { SubscriptionConfig } from './subscription-config.ts';
import type { ChangeKind } from './store-sync.ts';
import { encodeStoredSubscription, type StoredSubscription } from './stored-format.ts';
import type { SubscriptionStore } from './subscription-store.ts';
import type { Subscription } from './subscription-table.ts';

/** Finds a stream path in the object store and installs it in the registry (src/tiering/stream-finder.ts). */
export interface StreamFinding {
  find(path: string): Promise<unknown>;
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
  pruned: string[];
}

/** @throws StoredSubscriptionCorruptError; store errors (the server does not start). */
export async function reconcileStored(o: ReconcileOptions): Promise<Reconciled> {
  const result: Reconciled = { loaded: [], deleted: [], purged: [], behind: [], pruned: [] };
  const stored = await o.store.loadAll();
  await eachLimited(stored, SUBSCRIPTION_LOAD_LOOKUPS_MAX, async ([id, newest]) => {
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
  });
  for (const sub of o.allHeld()) {
    if (!stored.has(sub.id)) {
      o.changed(sub.id, 'definition');
      result.behind.push(sub.id);
    }
  }
  await o.store.deleteStaleVersions();
  await pruneAbsent(o, result);
  return result;
}

/** Looks up the held subscriptions' streams the node does not hold, then prunes glob-link cursors of paths still absent. */
async function pruneAbsent(o: ReconcileOptions, result: Reconciled): Promise<void> {
  const subs = [...o.allHeld()];
  const paths = new Set<string>();
  for (const sub of subs) for (const path of namedPaths(sub.links.keys(), sub.config)) if (!o.registry.holdsPath(path)) paths.add(path);
  const unresolved = new Set<string>();
  await eachLimited(paths, SUBSCRIPTION_LOAD_LOOKUPS_MAX, (path) => o.finder.find(path).then(() => undefined, () => void unresolved.add(path)));
  for (const sub of subs) {
    const gone = [...sub.links].filter(([path, link]) => !link.explicit && !unresolved.has(path) && !o.registry.holdsPath(path)).map(([path]) => path);
    if (gone.length === 0) continue;
    await o.commit({ t: 'sub.prune', id: sub.id, paths: gone });
    result.pruned.push(sub.id);
  }
}

/** Every stream path a subscription names: links, explicit streams, the wake stream. */
function namedPaths(linkPaths: Iterable<string>, config: SubscriptionConfig): Set<string> {
  const paths = new Set<string>([...linkPaths, ...config.streams]);
  if (config.wakeStream !== null) paths.add(config.wakeStream);
  return paths;
}

function sameState(stored: StoredSubscription, local: SubscriptionSnapshot | undefined): boolean {
  if (local === undefined || stored.state === null) return false;
  const encode = (state: SubscriptionSnapshot) => Buffer.from(encodeStoredSubscription({ ...stored, state }));
  return Buffer.compare(encode(stored.state), encode(local)) === 0;
}

/** Looks up the streams `snapshot` names, lowers cursors above their tails, drops the wake in flight. */
async function prepareLoaded(o: ReconcileOptions, snapshot: SubscriptionSnapshot): Promise<SubscriptionSnapshot> {
  // A path that cannot be looked up now keeps its cursor as stored (not lowered, not pruned).
  await eachLimited(namedPaths(snapshot.links.map(([path]) => path), snapshot.config), SUBSCRIPTION_LOAD_LOOKUPS_MAX, (path) => o.finder.find(path).then(() => undefined, () => undefined));
  const links = snapshot.links.map(([path, link]): [string, typeof link] => {
    const stream = currentStream(o.registry, path);
    if (stream === undefined || link.acked === null) return [path, { ...link }];
    const tail = tailOffset(o.registry, stream);
    return [path, { ...link, acked: link.acked > tail ? tail : link.acked }];
  });
  return { ...snapshot, links, wake: null };
}
