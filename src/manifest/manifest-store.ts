/**
 * The manifest store: how a stream incarnation's segments and manifest versions reach the object
 * store, and how a restart finds what an earlier process stored (DESIGN.md invariants, "The
 * object store is the truth"). Used by the sealer (seals and retention trims) and, for keys, by
 * the read path and the object collector (`naming`).
 *
 * - **The fence.** Every object is written create-if-absent through `putCreateIfAbsent`
 *   (src/object-store/overwrite-check.ts, the one read-back-and-compare): a refused put whose
 *   stored bytes equal ours is our own earlier attempt and counts as stored; other bytes mean a
 *   second writer, and `StreamFencedError` stops this process from writing the stream again.
 *   Manifest version n+1 is stored only after its segments, so a stored manifest lists only
 *   stored segments.
 * - **Restart adoption** (`reconcile`): the first seal after a restart (or after a failed
 *   attempt whose put may have landed) lists the stream's prefix. A newer manifest the WAL never
 *   heard of is adopted — its segments and then the manifest itself are put again through the
 *   same create-if-absent path, so the store confirms (and makes durable) exactly the bytes the
 *   WAL holds before the caller commits them; segment objects no manifest lists are deleted.
 */
import { listAll, ObjectAlreadyExistsError, putCreateIfAbsent, type ObjectBody, type ObjectInfo, type ObjectStore } from '../object-store/index.ts';
import { decodeManifest, encodeManifest, type Manifest, type SegmentRef, type StoredStreamMeta } from './manifest.ts';
import { encodePage, nextLayout, pageKeysUnder, segmentsFrom, type HeadLayout } from './manifest-pages.ts';
import { manifestKey, pageKey, parseStreamObjectKey } from './object-keys.ts';
import type { ObjectNaming, StreamIdentity } from './object-naming.ts';

/** A fork's source as the manifest store sees it (a `StreamState` is one). */
export interface ForkSourceSubject {
  readonly incarnation: number;
  readonly path?: string;
  readonly objectNodeId?: string | undefined;
  readonly fork?: { readonly source: ForkSourceSubject } | undefined;
}

/** The stream as the manifest store sees it (a `StreamState` is one). */
export interface ManifestSubject extends StreamIdentity {
  readonly contentType: string;
  readonly fork:
    | { readonly source: ForkSourceSubject; readonly position: number }
    | undefined;
  /** Latest manifest version this process knows is stored (0 = none). */
  readonly manifestVersion: number;
}

/** A stream after recovery: what its WAL holds, for `reconcile`. */
export interface ReconcileSubject extends ManifestSubject {
  /** End of the bytes the WAL knows are in segments. */
  readonly sealedOffset: number;
  /** End of the bytes the WAL holds durably. */
  readonly durableOffset: number;
}

/** What `reconcile` found and did. */
export interface Reconciliation {
  /**
   * A stored manifest newer than the WAL knows, whose segments above the sealed offset were
   * confirmed against the WAL's bytes: the caller commits each segment (in order) and then a
   * trim to `retainedStart`, all as `version`. Undefined when there is nothing to adopt.
   */
  adopt: { version: number; retainedStart: number; segments: SegmentRef[]; key: string } | undefined;
  /** Stored manifests ahead of the WAL's bytes, deleted (only possible with `--durability memory`). */
  discardedKeys: string[];
  /** Manifest versions superseded by the one now current: for the object collector. */
  supersededKeys: string[];
  /** Segment objects and manifest pages no manifest lists (an interrupted seal's), deleted. */
  orphanKeys: string[];
}

/** A create-if-absent put was refused and the stored object differs: another writer exists. */
export class StreamFencedError extends Error {
  readonly key: string;
  constructor(key: string, reason: string) {
    super(`object ${key} ${reason}: another writer is using this stream's keys; sealing of the stream stops`);
    this.name = 'StreamFencedError';
    this.key = key;
  }
}

export interface ManifestStoreOptions {
  /** The store as the server uses it (retries included). */
  store: ObjectStore;
  naming: ObjectNaming;
}

export class ManifestStore {
  readonly naming: ObjectNaming;
  readonly #store: ObjectStore;
  /** The pages and recent segments of the newest version this process stored or read, per stream. */
  readonly #layouts = new WeakMap<ManifestSubject, { version: number; layout: HeadLayout }>();

  constructor(options: ManifestStoreOptions) {
    this.#store = options.store;
    this.naming = options.naming;
  }

  /**
   * Stores segment `[segment.start, segment.end)` of `stream` holding `body` (one buffer, or the
   * hot tail's slices in order: the store writes them without joining them where it can),
   * create-if-absent.
   * @returns its key. @throws StreamFencedError (the key holds other bytes); store errors.
   */
  async putSegment(stream: StreamIdentity, segment: Pick<SegmentRef, 'start' | 'end'>, body: ObjectBody): Promise<string> {
    const key = this.naming.segment(stream, segment);
    await this.#putFenced(key, body);
    return key;
  }

  /**
   * Stores manifest version `stream.manifestVersion + 1`: the current one plus `added` segments
   * (already stored), without those ending at or below `retainedStart`, create-if-absent — the
   * fence of a seal, a retention trim or a metadata change. Manifest pages completed by the
   * change are stored first (manifest-pages.ts), so the version written stays bounded in size.
   * @returns the version, its key, and (when retention let any go) the keys of the pages no
   *   longer referenced, for the object collector once the version is committed. @throws StreamFencedError (the version or a page exists
   *   with other content: a second writer); ManifestCorruptError; store errors (the caller
   *   retries after `reconcile`).
   */
  async storeNext(
    stream: ManifestSubject,
    added: readonly SegmentRef[],
    retainedStart: number,
    meta?: StoredStreamMeta,
  ): Promise<{ version: number; key: string; droppedPageKeys?: string[] }> {
    const version = stream.manifestVersion + 1;
    const key = this.naming.manifest(stream, version);
    const prefix = this.naming.prefix(stream);
    const previous = await this.#currentLayout(stream);
    const { layout, newPages } = nextLayout(previous, added, retainedStart);
    const droppedPageKeys = await pageKeysUnder(this.#store, prefix, previous.pages.filter((page) => page.end <= retainedStart));
    for (const page of newPages) await this.#putFenced(pageKey(prefix, page.level, page.start, page.end), encodePage(page));
    const manifest: Manifest = {
      format: layout.pages.length > 0 ? 2 : 1,
      path: stream.path,
      incarnation: stream.incarnation,
      nodeId: this.naming.nodeId,
      contentType: stream.contentType,
      version,
      retainedStart,
      segments: layout.segments,
    };
    if (layout.pages.length > 0) manifest.pages = layout.pages;
    if (stream.fork !== undefined) {
      const { source, position } = stream.fork;
      manifest.fork = { incarnation: source.incarnation, position };
      if (source.path !== undefined) Object.assign(manifest.fork, { path: source.path, nodeId: source.objectNodeId ?? this.naming.nodeId });
      let root: ForkSourceSubject = source;
      while (root.fork !== undefined) root = root.fork.source;
      if (root.path !== undefined) manifest.fork.hostPath = root.path;
    }
    if (meta !== undefined) manifest.stream = meta;
    await this.#putFenced(key, encodeManifest(manifest));
    this.#layouts.set(stream, { version, layout });
    return droppedPageKeys.length > 0 ? { version, key, droppedPageKeys } : { version, key };
  }

  /** Pages and recent segments of `stream`'s current version: remembered, or read from the store (one GET). */
  async #currentLayout(stream: ManifestSubject): Promise<HeadLayout> {
    if (stream.manifestVersion === 0) return { pages: [], segments: [] };
    const known = this.#layouts.get(stream);
    if (known?.version === stream.manifestVersion) return known.layout;
    const key = this.naming.manifest(stream, stream.manifestVersion);
    const manifest = decodeManifest(key, (await this.#store.get(key)).body);
    return { pages: manifest.pages ?? [], segments: manifest.segments };
  }

  /**
   * Before a removed incarnation's objects are deleted: stores a tombstone, the next manifest
   * version marked `deleted: 'hard'` with no segments, so a node without the local disk never
   * serves the stream again even if the deletion stops half-way (docs/storage-layout.md).
   * @returns the tombstone's key, or undefined when the prefix holds no manifest (nothing to hide).
   * @throws ManifestCorruptError; store errors (the caller retries).
   */
  async storeTombstone(prefix: string): Promise<string | undefined> {
    const newest = await newestManifestKey(this.#store, prefix);
    if (newest === undefined) return undefined;
    const manifest = decodeManifest(newest.key, (await this.#store.get(newest.key)).body);
    if (manifest.stream?.deleted === 'hard') return newest.key;
    const tombstone: Manifest = { ...manifest, format: 1, version: newest.version + 1, nodeId: this.naming.nodeId, segments: [] };
    delete tombstone.pages;
    tombstone.stream = { ...(manifest.stream ?? { createdAtMs: 0, sealedOffset: manifest.retainedStart, closed: false, producers: [] }), deleted: 'hard' };
    const key = manifestKey(prefix, tombstone.version);
    try {
      await putCreateIfAbsent(this.#store, key, encodeManifest(tombstone));
    } catch (error) {
      // Another version landed meanwhile (a seal racing the delete): tombstone after it.
      if (error instanceof ObjectAlreadyExistsError) return this.storeTombstone(prefix);
      throw error;
    }
    return key;
  }

  /** Deletes objects of a stream that nothing will reference (a seal that lost its stream). */
  async deleteObjects(keys: readonly string[]): Promise<void> {
    await this.#store.deleteMany(keys);
  }

  /**
   * Reconciles `stream`'s stored objects with what its WAL knows (module doc, restart adoption).
   * `walBytes(start, end)` returns the WAL's bytes `[start, end)` of the stream, within
   * `[sealedOffset, durableOffset)`. Stores again (create-if-absent) what it adopts and deletes
   * discarded manifests and orphan segments; the caller commits `adopt` and hands
   * `supersededKeys` to the object collector.
   * @throws StreamFencedError (a manifest of another incarnation or node, or a stored object
   *   that differs from the WAL's bytes); ManifestCorruptError; store errors.
   */
  async reconcile(stream: ReconcileSubject, walBytes: (start: number, end: number) => ObjectBody): Promise<Reconciliation> {
    const prefix = this.naming.prefix(stream);
    const objects: ObjectInfo[] = [];
    for await (const object of listAll(this.#store, prefix)) objects.push(object);
    const manifests: { key: string; version: number }[] = [];
    const segments: { key: string; end: number }[] = [];
    for (const object of objects) {
      const parsed = parseStreamObjectKey(prefix, object.key);
      if (parsed?.kind === 'manifest') manifests.push({ key: object.key, version: parsed.version });
      // A page ending above the sealed offset holds segments of an interrupted seal, as an orphan segment does.
      else if (parsed?.kind === 'segment' || parsed?.kind === 'page') segments.push({ key: object.key, end: parsed.end });
    }
    const newer = manifests.filter((m) => m.version > stream.manifestVersion);
    const newest = newer.reduce<(typeof newer)[number] | undefined>((a, b) => (a === undefined || b.version > a.version ? b : a), undefined);
    let adopt: Reconciliation['adopt'];
    let discardedKeys: string[] = [];
    if (newest !== undefined) {
      const storedBytes = (await this.#store.get(newest.key)).body;
      const manifest = decodeManifest(newest.key, storedBytes);
      // A stream loaded from the store lives under another node's prefix: any writer of that prefix is its own lineage.
      const foreignWriter = manifest.nodeId !== this.naming.nodeId && stream.objectNodeId === undefined;
      if (manifest.incarnation !== stream.incarnation || foreignWriter) {
        throw new StreamFencedError(newest.key, 'belongs to another incarnation or node');
      }
      const adoptable = (await segmentsFrom(this.#store, prefix, manifest, stream.sealedOffset)).filter((segment) => segment.start >= stream.sealedOffset);
      const fits =
        adoptable.length === 0 ||
        (adoptable[0].start === stream.sealedOffset && adoptable[adoptable.length - 1].end <= stream.durableOffset);
      if (fits) {
        // Through the same create-if-absent path as a seal: the store confirms each object holds
        // the WAL's bytes (and makes it durable) before the caller publishes it.
        for (const segment of adoptable) await this.putSegment(stream, segment, walBytes(segment.start, segment.end));
        await this.#putFenced(newest.key, storedBytes);
        adopt = { version: manifest.version, retainedStart: manifest.retainedStart, segments: adoptable, key: newest.key };
      } else {
        discardedKeys = newer.map((m) => m.key);
        await this.#store.deleteMany(discardedKeys);
      }
    }
    // Every other version is superseded: its deletion may have been queued only in memory when a
    // crash came (the collector's queue is kept in checkpoints, not per seal).
    const currentVersion = adopt?.version ?? stream.manifestVersion;
    const supersededKeys = manifests.filter((m) => m.version < currentVersion).map((m) => m.key);
    const sealedOffset = adopt?.segments.at(-1)?.end ?? stream.sealedOffset;
    const orphanKeys = segments.filter((segment) => segment.end > sealedOffset).map((segment) => segment.key);
    if (orphanKeys.length > 0) await this.#store.deleteMany(orphanKeys);
    return { adopt, discardedKeys, supersededKeys, orphanKeys };
  }

  /** `putCreateIfAbsent`, with a refusal over other bytes turned into the fence. */
  async #putFenced(key: string, body: ObjectBody): Promise<void> {
    try {
      await putCreateIfAbsent(this.#store, key, body);
    } catch (error) {
      if (error instanceof ObjectAlreadyExistsError) throw new StreamFencedError(key, 'already exists with other content');
      throw error;
    }
  }
}

/** The newest manifest version under `prefix` (an incarnation's), by listing `manifest-` keys only. */
export async function newestManifestKey(store: ObjectStore, prefix: string): Promise<{ key: string; version: number } | undefined> {
  let newest: { key: string; version: number } | undefined;
  for await (const object of listAll(store, `${prefix}manifest-`)) {
    const parsed = parseStreamObjectKey(prefix, object.key);
    if (parsed?.kind === 'manifest' && (newest === undefined || parsed.version > newest.version)) newest = { key: object.key, version: parsed.version };
  }
  return newest;
}
