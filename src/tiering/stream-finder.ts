/**
 * Lazy lookup (docs/storage-layout.md): before a request for a path this node does not hold is
 * handled, the path is looked up in the object store (src/manifest/stream-lookup.ts: one LIST, one
 * GET) and, when a live or soft-deleted incarnation is stored there, installed in the registry as
 * sealed-only state (sealed offset = tail, producers and closure as of it), with its fork sources.
 * A node started on an empty data directory over an existing store thus serves every sealed
 * stream at once, without a scan at start-up. Absent paths are remembered briefly
 * (LOOKUP_ABSENT_TTL_MS, at most LOOKUP_ABSENT_PATHS_MAX); concurrent lookups of one path share
 * one trip to the store. Every lookup also raises the next incarnation above any stored at the path.
 * Loaded streams left idle are forgotten again (src/tiering/idle-eviction.ts: it hears of every
 * stream installed here and every request that names a path).
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import { LOOKUP_ABSENT_PATHS_MAX, LOOKUP_ABSENT_TTL_MS, LOOKUP_HOSTED_ELSEWHERE_PATHS_MAX } from '../config/limits.ts';
import type { Manifest } from '../manifest/manifest.ts';
import { StoredDataCorruptError } from '../manifest/unit-checksum.ts';
import { lookUpPath, readIncarnation, type FoundIncarnation } from '../manifest/stream-lookup.ts';
import type { ObjectStore } from '../object-store/index.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { LoadRecord } from '../stream/records.ts';
import type { StreamState } from '../stream/stream-state.ts';
import { LoadedStreamEviction, type LoadedStreamLimits } from './idle-eviction.ts';

export interface StreamFinderOptions {
  store: ObjectStore;
  registry: StreamRegistry;
  clock: Clock;
  /** True while this node is deleting the incarnation's objects (its tombstone may not be stored yet). */
  isDeleting: (incarnation: number) => boolean;
  /**
   * Cluster mode: whether this node hosts streams of host path `hostPath` (owns its slot). A fork
   * stored with a host elsewhere is not installed; `find` names its host instead. Default: all.
   */
  hostsLocally?: (hostPath: string) => boolean;
  /** True while a seal, trim or metadata write of the incarnation runs (it is not evicted then); default never. */
  isSealing?: (incarnation: number) => boolean;
  /** Bounds on the streams loaded here (src/tiering/idle-eviction.ts); defaults from limits.ts. */
  loadedLimits?: LoadedStreamLimits;
}


export class StreamFinder {
  readonly #o: StreamFinderOptions;
  readonly #absent: LRUCache<string, true>;
  readonly #inFlight = new Map<string, Promise<string | undefined>>();
  /** Cluster mode: paths known to be forks hosted by another node, and their host path. */
  readonly #hostedElsewhere: LRUCache<string, string>;
  /** Lookups that went to the object store. */
  lookups = 0;
  /** Streams installed from the object store (fork sources included). */
  loaded = 0;
  /** Forgets idle loaded streams (`start()` runs its sweep; `close()` stops it). */
  readonly eviction: LoadedStreamEviction;

  constructor(options: StreamFinderOptions) {
    this.#o = options;
    this.eviction = new LoadedStreamEviction({
      registry: options.registry,
      clock: options.clock,
      isSealing: options.isSealing ?? (() => false),
      ...options.loadedLimits,
    });
    this.#absent = new LRUCache<string, true>({
      max: LOOKUP_ABSENT_PATHS_MAX,
      ttl: LOOKUP_ABSENT_TTL_MS,
      perf: { now: () => options.clock.monotonicMs() },
    });
    this.#hostedElsewhere = new LRUCache<string, string>({ max: LOOKUP_HOSTED_ELSEWHERE_PATHS_MAX });
  }

  /** Cluster mode: `path` is a fork hosted with `hostPath` (a host's answer said so). */
  learnHost(path: string, hostPath: string): void {
    this.#absent.delete(path);
    this.#hostedElsewhere.set(path, hostPath);
  }

  /** Forgets what was cached of `path` (its host said it holds no such stream): the next `find` looks again. */
  forget(path: string): void {
    this.#absent.delete(path);
    this.#hostedElsewhere.delete(path);
  }

  /**
   * Makes sure the registry holds `path` if the object store does. Resolves at once when the path
   * is held or recently found absent.
   * @returns undefined, or in cluster mode the host path of a fork another node hosts (not installed).
   * @throws object-store errors (the request fails with 503 and may be retried);
   *   ManifestCorruptError; StoredDataCorruptError (a fork whose source is gone).
   */
  find(path: string): Promise<string | undefined> {
    if (this.#o.registry.holdsPath(path)) {
      this.eviction.used(path);
      return Promise.resolve(undefined);
    }
    if (this.#absent.has(path)) return Promise.resolve(undefined);
    const hostPath = this.#hostedElsewhere.get(path);
    if (hostPath !== undefined) return Promise.resolve(hostPath);
    let lookup = this.#inFlight.get(path);
    if (lookup === undefined) {
      lookup = this.#lookUp(path).finally(() => this.#inFlight.delete(path));
      this.#inFlight.set(path, lookup);
    }
    return lookup;
  }

  async #lookUp(path: string): Promise<string | undefined> {
    const { store, registry, isDeleting } = this.#o;
    this.lookups++;
    const { found, highestIncarnation } = await lookUpPath(store, path);
    registry.raiseNextIncarnation(highestIncarnation + 1);
    if (found === undefined || found.manifest.stream?.deleted === 'hard' || isDeleting(found.incarnation) || registry.holdsPath(path)) {
      if (!registry.holdsPath(path)) this.#absent.set(path, true);
      return undefined;
    }
    // Cluster mode: a stream whose host slot this node does not own is not installed (a fork's
    // host is remembered); the caller sends the request to the owner.
    const forkHost = found.manifest.fork?.hostPath;
    const hostPath = forkHost ?? path;
    const hostedElsewhere = (): boolean => this.#o.hostsLocally?.(hostPath) === false;
    if (hostedElsewhere()) {
      if (forkHost !== undefined) this.#hostedElsewhere.set(path, forkHost);
      return hostPath;
    }
    const chain: LoadRecord[] = [];
    for (let at: FoundIncarnation | undefined = found; at !== undefined; ) {
      chain.unshift(storedLoadRecord(at));
      const fork: Manifest['fork'] = at.manifest.fork;
      if (fork === undefined || registry.byIncarnation(fork.incarnation) !== undefined) break;
      const source: FoundIncarnation | undefined =
        fork.path === undefined || fork.nodeId === undefined ? undefined : await readIncarnation(store, fork.path, fork.incarnation, fork.nodeId);
      if (source === undefined) {
        throw new StoredDataCorruptError(at.prefix, `stream ${at.manifest.path} is a fork of incarnation ${fork.incarnation}, which the object store does not hold`);
      }
      registry.raiseNextIncarnation(source.incarnation + 1);
      at = source;
    }
    if (registry.holdsPath(path)) return undefined; // created here while we looked
    // Asked again with no wait before the install: the slot may have moved away while we read
    // (a copy installed now would be stale, and served if the slot ever came back).
    if (hostedElsewhere()) return hostPath;
    registry.install(chain);
    this.loaded += chain.length;
    const installed = chain.map((record) => registry.byIncarnation(record.inc)).filter((stream): stream is StreamState => stream?.unlogged === true);
    this.eviction.loaded(installed);
    return undefined;
  }
}

/** The load record of a stored incarnation: its state as of the manifest's sealed offset. */
export function storedLoadRecord(found: FoundIncarnation): LoadRecord {
  const m: Manifest = found.manifest;
  const base = m.fork?.position ?? 0;
  const meta = m.stream ?? { createdAtMs: 0, sealedOffset: m.segments.at(-1)?.end ?? Math.max(base, m.retainedStart), closed: false, producers: [] };
  const record: LoadRecord = {
    t: 'load',
    inc: m.incarnation,
    path: m.path,
    contentType: m.contentType,
    createdAtMs: meta.createdAtMs,
    objectNodeId: found.nodeId,
    segments: m.segments,
    sealedOffset: meta.sealedOffset,
    retainedStart: m.retainedStart,
    manifestVersion: m.version,
    closed: meta.closed,
    producers: meta.producers,
    softDeleted: meta.deleted === 'soft',
  };
  if (meta.ttlSeconds !== undefined) record.ttlSeconds = meta.ttlSeconds;
  if (meta.expiresAtMs !== undefined) record.expiresAtMs = meta.expiresAtMs;
  if (meta.retentionMs !== undefined) record.retentionMs = meta.retentionMs;
  if (meta.retentionBytes !== undefined) record.retentionBytes = meta.retentionBytes;
  if (meta.closedBy !== undefined) record.closedBy = meta.closedBy;
  if (meta.lastStreamSeq !== undefined) record.lastStreamSeq = meta.lastStreamSeq;
  if (m.fork !== undefined) record.fork = { inc: m.fork.incarnation, position: m.fork.position };
  return record;
}
