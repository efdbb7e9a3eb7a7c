/**
 * The persisted key layout of the object store, in one place (DESIGN.md "Object keys").
 *
 * ```
 * <hash2>/<stream-id>/<incarnation:016>-<node-id>/<start:020>-<end:020>.seg   a segment
 * <hash2>/<stream-id>/<incarnation:016>-<node-id>/manifest-<version:020>.json a manifest version
 * <hash2>/<stream-id>/<incarnation:016>-<node-id>/page-<level>-<start:020>-<end:020>.json
 *                                                                            a manifest page
 * ```
 * - `stream-id` is the first 32 hex digits of SHA-256 of the stream path (paths may hold any
 *   character and be long; the manifest records the path itself); `hash2` is its first two
 *   digits, spreading keys over S3 partitions.
 * - `node-id` names the data directory that wrote the objects (random, kept in
 *   `<data-dir>/node-id`): two data directories sharing a bucket never write the same key, so a
 *   refused create-if-absent put always means this node's own earlier attempt, or a second
 *   process on the same data directory.
 * - The incarnation is written as in offset tokens (16 decimal digits).
 * - Numbers are zero-padded so a LIST returns segments in offset order, then manifests in
 *   version order, then pages ('0'–'9' sort before 'm', 'm' before 'p').
 * The S3 key prefix (`--s3-prefix`) is added by the store, not here.
 */
import { createHash } from 'node:crypto';

/** Key prefix of everything one stream incarnation stores, ending in '/'. */
export function streamObjectPrefix(path: string, incarnation: number, nodeId: string): string {
  return `${streamPathPrefix(path)}${String(incarnation).padStart(16, '0')}-${nodeId}/`;
}

/** Key prefix of every incarnation of a path, ending in '/': what a lazy lookup lists. */
export function streamPathPrefix(path: string): string {
  const streamId = createHash('sha256').update(path).digest('hex').slice(0, 32);
  return `${streamId.slice(0, 2)}/${streamId}/`;
}

/** The incarnation directory a key under a path prefix is in (`<incarnation>-<node-id>/`), or undefined. */
export function parseIncarnationDir(pathPrefix: string, key: string): { dir: string; incarnation: number; nodeId: string } | undefined {
  if (!key.startsWith(pathPrefix)) return undefined;
  const match = /^((\d{16})-([0-9a-f]+)\/)/.exec(key.slice(pathPrefix.length));
  if (match === null) return undefined;
  return { dir: `${pathPrefix}${match[1]}`, incarnation: Number(match[2]), nodeId: match[3] };
}

/** Key of the segment `[start, end)` under a stream prefix. */
export function segmentKey(prefix: string, start: number, end: number): string {
  return `${prefix}${pad20(start)}-${pad20(end)}.seg`;
}

/** Key of manifest `version` under a stream prefix. */
export function manifestKey(prefix: string, version: number): string {
  return `${prefix}manifest-${pad20(version)}.json`;
}

/** Key of the manifest page of `level` covering `[start, end)` under a stream prefix (manifest-pages.ts). */
export function pageKey(prefix: string, level: number, start: number, end: number): string {
  return `${prefix}page-${level}-${pad20(start)}-${pad20(end)}.json`;
}

/** A key that sorts after every page key under a stream prefix (and before nothing else of it). */
export function afterPageKeys(prefix: string): string {
  return `${prefix}page.`;
}

/** What a key under a stream prefix names, or undefined for a foreign key. */
export function parseStreamObjectKey(
  prefix: string,
  key: string,
):
  | { kind: 'segment'; start: number; end: number }
  | { kind: 'manifest'; version: number }
  | { kind: 'page'; level: number; start: number; end: number }
  | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  const segment = /^(\d{20})-(\d{20})\.seg$/.exec(name);
  if (segment !== null) return { kind: 'segment', start: Number(segment[1]), end: Number(segment[2]) };
  const manifest = /^manifest-(\d{20})\.json$/.exec(name);
  if (manifest !== null) return { kind: 'manifest', version: Number(manifest[1]) };
  const page = /^page-(\d+)-(\d{20})-(\d{20})\.json$/.exec(name);
  if (page !== null) return { kind: 'page', level: Number(page[1]), start: Number(page[2]), end: Number(page[3]) };
  return undefined;
}

function pad20(value: number): string {
  return value.toString().padStart(20, '0');
}
