/**
 * `cairn recover` (docs/storage-layout.md): rebuilds a node's local state from the object store
 * ahead of traffic, instead of lazily on first use. Recovers the data directory's WAL as a start
 * would (checkpoint + replay), walks every stream incarnation under a key prefix, and for each
 * live or soft-deleted one whose path the WAL does not hold, writes a load record (fork sources
 * first). The next `cairn serve` replays them. Never run it while a server uses the data directory.
 * The hash shards are listed and the manifests read RECOVER_REQUESTS_MAX requests at a time, and
 * load records are group-committed (bench/recover.ts measures it).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { systemClock } from './clock.ts';
import { RECOVER_LOADS_IN_FLIGHT_MAX, RECOVER_REQUESTS_MAX } from './config/limits.ts';
import type { ServeConfig } from './config/serve-config.ts';
import { parseIncarnationDir, parseStreamObjectKey, streamObjectPrefix } from './manifest/object-keys.ts';
import { readExpandedManifest, type FoundIncarnation } from './manifest/stream-lookup.ts';
import { listAll, MeteredObjectStore } from './object-store/index.ts';
import { openBaseStore } from './server.ts';
import type { StreamRecord } from './stream/records.ts';
import { StreamRegistry, type RegistrySnapshot } from './stream/registry.ts';
import { storedLoadRecord } from './tiering/stream-finder.ts';
import { openWal } from './wal/index.ts';

/** What `onProgress` counts: key-prefix shards listed, then newest manifests read. */
export type RecoverPhase = 'list' | 'read';

export interface RecoverReport {
  /** Stream incarnations found with a manifest. */
  incarnations: number;
  /** Load records written (fork sources included). */
  loaded: number;
  /** Paths the WAL already held, tombstones and superseded incarnations: left alone. */
  skipped: number;
  /** Object-store requests made: LIST pages and GETs (manifests and manifest pages). */
  requests: { list: number; get: number };
}

/**
 * @param keyPrefix only incarnations under this key prefix ('' = all).
 * @param onProgress told after each shard listed (`list`) and each manifest read (`read`): done, total.
 * @throws object-store, WAL and manifest errors.
 */
export async function recoverFromStore(
  config: ServeConfig,
  logger: Logger,
  keyPrefix = '',
  onProgress: (done: number, total: number, phase: RecoverPhase) => void = () => {},
): Promise<RecoverReport> {
  if (config.durability === 'object-store') {
    throw new RangeError('with --durability object-store there is no local write-ahead log to rebuild: every start recovers from the object store, and a fresh node serves every stored stream at once');
  }
  const store = new MeteredObjectStore(await openBaseStore(config));
  const wal = await openWal({ dir: path.join(config.dataDir, 'wal'), durability: config.durability, logger });
  try {
    const registry = new StreamRegistry({ log: { append: (record: StreamRecord) => wal.writer.enqueue(record) }, clock: systemClock });
    if (wal.checkpoint !== undefined) registry.restore(wal.checkpoint as RegistrySnapshot);
    for await (const record of wal.replay()) registry.apply(record as StreamRecord);
    registry.markAllDurable();

    // The newest manifest of every incarnation directory; the hash shards are listed in parallel.
    const newest = new Map<string, { key: string; version: number; nodeId: string; incarnation: number }>();
    const shards = shardPrefixes(keyPrefix);
    let shardsListed = 0;
    await forEachBounded(shards, RECOVER_REQUESTS_MAX, async (shard) => {
      for await (const object of listAll(store, shard)) {
        const second = object.key.indexOf('/', object.key.indexOf('/') + 1);
        const at = second === -1 ? undefined : parseIncarnationDir(object.key.slice(0, second + 1), object.key);
        const parsed = at === undefined ? undefined : parseStreamObjectKey(at.dir, object.key);
        if (at === undefined || parsed?.kind !== 'manifest') continue;
        const known = newest.get(at.dir);
        if (known === undefined || parsed.version > known.version) newest.set(at.dir, { key: object.key, version: parsed.version, nodeId: at.nodeId, incarnation: at.incarnation });
      }
      onProgress(++shardsListed, shards.length, 'list');
    });
    const found = new Map<string, Promise<FoundIncarnation>>();
    const read = (dir: string): Promise<FoundIncarnation> | undefined => {
      const entry = newest.get(dir);
      if (entry === undefined) return undefined;
      let incarnation = found.get(dir);
      if (incarnation === undefined) {
        incarnation = readExpandedManifest(store, dir, entry.key).then((manifest) => ({ prefix: dir, incarnation: entry.incarnation, nodeId: entry.nodeId, manifest }));
        found.set(dir, incarnation);
      }
      return incarnation;
    };
    // Every newest manifest, RECOVER_REQUESTS_MAX GETs at a time; the highest incarnation per path
    // wins (older ones are being deleted or superseded).
    const byPath = new Map<string, FoundIncarnation>();
    let done = 0;
    await forEachBounded([...newest.keys()], RECOVER_REQUESTS_MAX, async (dir) => {
      const incarnation = await read(dir);
      onProgress(++done, newest.size, 'read');
      if (incarnation === undefined) return;
      registry.raiseNextIncarnation(incarnation.incarnation + 1);
      const held = byPath.get(incarnation.manifest.path);
      if (held === undefined || incarnation.incarnation > held.incarnation) byPath.set(incarnation.manifest.path, incarnation);
    });
    const report: RecoverReport = { incarnations: newest.size, loaded: 0, skipped: newest.size - byPath.size, requests: { list: 0, get: 0 } };
    // Load records are queued without waiting for each to be durable (group commit takes many per
    // fsync), at most RECOVER_LOADS_IN_FLIGHT_MAX streams' at a time.
    const persisting = new Set<Promise<void>>();
    for (const incarnation of byPath.values()) {
      if (incarnation.manifest.stream?.deleted === 'hard' || registry.holdsPath(incarnation.manifest.path)) {
        report.skipped++;
        continue;
      }
      const chain = [storedLoadRecord(incarnation)];
      for (let fork = incarnation.manifest.fork; fork !== undefined && registry.byIncarnation(fork.incarnation) === undefined; ) {
        const source = fork.path === undefined || fork.nodeId === undefined ? undefined : await read(streamObjectPrefix(fork.path, fork.incarnation, fork.nodeId));
        if (source === undefined) throw new Error(`${incarnation.prefix}: fork source incarnation ${fork.incarnation} is not in the store`);
        chain.unshift(storedLoadRecord(source));
        fork = source.manifest.fork;
      }
      const stream = registry.install(chain);
      if (stream !== undefined) {
        const durable = registry.persistLoaded(stream);
        persisting.add(durable);
        void durable.then(
          () => persisting.delete(durable),
          () => {}, // awaited below
        );
        if (persisting.size >= RECOVER_LOADS_IN_FLIGHT_MAX) await Promise.race(persisting);
      }
      report.loaded += chain.length;
    }
    await Promise.all(persisting);
    const requests = store.snapshot();
    report.requests = { list: requests.list.requestCount, get: requests.get.requestCount };
    return report;
  } finally {
    await wal.writer.close();
    await store.close();
  }
}

/**
 * The key prefixes to list for `keyPrefix`: every stream key starts with two hex digits of a hash
 * (src/manifest/object-keys.ts), so '' or one digit splits into the shards under it, listed in
 * parallel; a longer prefix is listed as it is.
 */
export function shardPrefixes(keyPrefix: string): string[] {
  if (!/^[0-9a-f]?$/.test(keyPrefix)) return [keyPrefix];
  const digits = '0123456789abcdef';
  const firsts = keyPrefix === '' ? [...digits] : [keyPrefix];
  return firsts.flatMap((first) => [...digits].map((second) => `${first}${second}/`));
}

/** Runs `task` for every item, at most `limit` at a time; rejects with the first failure (after the running ones settle). */
async function forEachBounded<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await task(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
