/**
 * Lazy lookup of a stream in the object store by its path alone (docs/storage-layout.md "Lazy
 * lookup"): the key prefix of a path is deterministic (`<hash2>/<stream-id>/`), so one LIST finds
 * its incarnations and one GET reads the newest manifest of the newest one (plus its manifest
 * pages, for a history longer than a page). A LIST that ends in an
 * incarnation's segments skips to that incarnation's manifests (`startAfter`), so a stream with a
 * long history still costs a LIST per incarnation directory, not per thousand segments.
 */
import { LOOKUP_VANISHED_ATTEMPTS_MAX } from '../config/limits.ts';
import { ObjectNotFoundError, type ObjectStore } from '../object-store/index.ts';
import { decodeManifest, type Manifest } from './manifest.ts';
import { segmentsFrom } from './manifest-pages.ts';
import { newestManifestKey } from './manifest-store.ts';
import { afterPageKeys, parseIncarnationDir, parseStreamObjectKey, streamObjectPrefix, streamPathPrefix } from './object-keys.ts';

/** An incarnation found in the store and its newest manifest. */
export interface FoundIncarnation {
  prefix: string;
  incarnation: number;
  /** Node id in the incarnation's keys. */
  nodeId: string;
  /** Its pages read: `segments` lists every retained segment, `pages` is absent. */
  manifest: Manifest;
}

/**
 * Reads manifest `key` of the incarnation under `prefix` with its pages expanded: `segments` lists
 * every segment ending above the retained start (one GET, plus one per page for a long history).
 * @throws ManifestCorruptError; store errors (a referenced page missing: ObjectNotFoundError).
 */
export async function readExpandedManifest(store: ObjectStore, prefix: string, key: string): Promise<Manifest> {
  const manifest = decodeManifest(key, (await store.get(key)).body);
  if (manifest.pages === undefined) return manifest;
  const segments = await segmentsFrom(store, prefix, manifest, manifest.retainedStart);
  const expanded: Manifest = { ...manifest, segments };
  delete expanded.pages;
  return expanded;
}

export interface PathLookup {
  /** The newest incarnation holding a manifest, if any (it may be a tombstone: `manifest.stream.deleted`). */
  found: FoundIncarnation | undefined;
  /** Highest incarnation with any object at this path (0 = none): a new incarnation must be above it. */
  highestIncarnation: number;
}

/**
 * Looks `path` up; a manifest superseded and deleted between the LIST and its GET makes it list
 * again (at most LOOKUP_VANISHED_ATTEMPTS_MAX times).
 * @throws ManifestCorruptError; object-store errors (ObjectStoreUnavailableError…).
 */
export function lookUpPath(store: ObjectStore, path: string): Promise<PathLookup> {
  return retryVanished(() => lookUpPathOnce(store, path));
}

/** Runs `read` again when an object it listed was deleted before it read it. */
async function retryVanished<T>(read: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (!(error instanceof ObjectNotFoundError) || attempt >= LOOKUP_VANISHED_ATTEMPTS_MAX) throw error;
    }
  }
}

async function lookUpPathOnce(store: ObjectStore, path: string): Promise<PathLookup> {
  const base = streamPathPrefix(path);
  const dirs = new Map<string, { incarnation: number; nodeId: string; newest?: { key: string; version: number } }>();
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix: base, startAfter });
    for (const object of page.objects) {
      const at = parseIncarnationDir(base, object.key);
      if (at === undefined) continue;
      let dir = dirs.get(at.dir);
      if (dir === undefined) dirs.set(at.dir, (dir = { incarnation: at.incarnation, nodeId: at.nodeId }));
      const parsed = parseStreamObjectKey(at.dir, object.key);
      if (parsed?.kind === 'manifest' && (dir.newest === undefined || parsed.version > dir.newest.version)) {
        dir.newest = { key: object.key, version: parsed.version };
      }
    }
    if (page.nextStartAfter === undefined) break;
    const last = page.objects.at(-1);
    const lastDir = last === undefined ? undefined : parseIncarnationDir(base, last.key);
    const lastKind = lastDir === undefined ? undefined : parseStreamObjectKey(lastDir.dir, last?.key ?? '')?.kind;
    // Still in an incarnation's segments: jump to its manifests ('manifest-' sorts after them); in
    // its manifest pages: past them, to the next incarnation.
    if (lastDir !== undefined && lastKind === 'segment') startAfter = `${lastDir.dir}manifest-`;
    else if (lastDir !== undefined && lastKind === 'page') startAfter = afterPageKeys(lastDir.dir);
    else startAfter = page.nextStartAfter;
  }
  let highestIncarnation = 0;
  let best: { dir: string; incarnation: number; nodeId: string; newest: { key: string; version: number } } | undefined;
  for (const [dir, info] of dirs) {
    highestIncarnation = Math.max(highestIncarnation, info.incarnation);
    if (info.newest !== undefined && (best === undefined || info.incarnation > best.incarnation)) best = { dir, ...info, newest: info.newest };
  }
  if (best === undefined) return { found: undefined, highestIncarnation };
  const manifest = await readExpandedManifest(store, best.dir, best.newest.key);
  return { found: { prefix: best.dir, incarnation: best.incarnation, nodeId: best.nodeId, manifest }, highestIncarnation };
}

/**
 * Reads one known incarnation (a fork's source): one LIST of its manifests, one GET (listed again
 * as `lookUpPath` when the manifest vanished meanwhile).
 * @returns undefined when it holds no manifest. @throws ManifestCorruptError; store errors.
 */
export function readIncarnation(store: ObjectStore, path: string, incarnation: number, nodeId: string): Promise<FoundIncarnation | undefined> {
  const prefix = streamObjectPrefix(path, incarnation, nodeId);
  return retryVanished(async () => {
    const newest = await newestManifestKey(store, prefix);
    if (newest === undefined) return undefined;
    const manifest = await readExpandedManifest(store, prefix, newest.key);
    return { prefix, incarnation, nodeId, manifest };
  });
}
