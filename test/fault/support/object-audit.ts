/**
 * Reads the filesystem object store of a crash-test data directory (`<data-dir>/objects`) on its
 * own, without Cairn's code, and checks it against the documented layout (src/manifest/
 * object-keys.ts, src/object-store/fs-store.ts) and the data the test knows was acknowledged:
 *
 *   objects/<hash2>~/<stream-id>~/<incarnation:016>-<node-id>~/<start:020>-<end:020>.seg
 *   objects/<hash2>~/<stream-id>~/<incarnation:016>-<node-id>~/manifest-<version:020>.json
 *
 * (directories carry a `~` suffix, names are percent-encoded; files in `objects/.tmp/` are
 * unpublished puts; `_cairn/` holds the startup overwrite probe). The scan may run while the server seals:
 * objects that vanish between the listing and the read are looked at again.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { CheckFailure, type Subject } from './crash-model.ts';

const SEGMENT_NAME = /^(\d{20})-(\d{20})\.seg$/;
const MANIFEST_NAME = /^manifest-(\d{20})\.json$/;
const PAGE_NAME = /^page-(\d+)-(\d{20})-(\d{20})\.json$/;
const STREAM_DIR = /^([0-9a-f]{2})\/([0-9a-f]{32})\/(\d{16})-([0-9a-f]{12})\/$/;
const TEMP_DIR = '.tmp';
const PROBE_PREFIX = '_cairn/';

export interface SegmentObject {
  key: string;
  file: string;
  start: number;
  end: number;
}

/** Everything stored under one stream incarnation's prefix. */
export interface PrefixObjects {
  /** `<hash2>/<stream-id>/<incarnation>-<node-id>/` */
  prefix: string;
  streamId: string;
  incarnation: number;
  nodeId: string;
  /** Ascending by start. */
  segments: SegmentObject[];
  /** Versions, ascending, with their files. */
  manifests: { version: number; file: string }[];
  /** Manifest pages (immutable; a long history's older segments). */
  pages: { key: string; file: string }[];
}

export interface ObjectScan {
  prefixes: Map<string, PrefixObjects>;
  /** Unpublished puts left by a crash (keys of their directories). */
  temps: string[];
  /** Anything else (a layout change, or a bug). */
  foreign: string[];
}

/** Lists every object under `objectsDir` (an absent directory is an empty store). */
export async function scanObjects(objectsDir: string): Promise<ObjectScan> {
  const scan: ObjectScan = { prefixes: new Map(), temps: [], foreign: [] };
  const walk = async (dir: string, keyPrefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // pruned while we looked
      throw error;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && keyPrefix === '' && entry.name === TEMP_DIR) {
        for (const temp of await readdir(full).catch(() => [])) scan.temps.push(`${TEMP_DIR}/${temp}`);
        continue;
      }
      if (entry.isDirectory()) {
        if (!entry.name.endsWith('~')) {
          scan.foreign.push(`${keyPrefix}${entry.name}/ (directory without the ~ suffix)`);
          continue;
        }
        await walk(full, `${keyPrefix}${decodeURIComponent(entry.name.slice(0, -1))}/`);
      } else {
        record(scan, `${keyPrefix}${decodeURIComponent(entry.name)}`, full);
      }
    }
  };
  await walk(objectsDir, '');
  for (const objects of scan.prefixes.values()) {
    objects.segments.sort((a, b) => a.start - b.start || a.end - b.end);
    objects.manifests.sort((a, b) => a.version - b.version);
  }
  return scan;
}

function record(scan: ObjectScan, key: string, file: string): void {
  if (key.startsWith(PROBE_PREFIX)) return;
  const slash = key.lastIndexOf('/');
  const prefix = key.slice(0, slash + 1);
  const name = key.slice(slash + 1);
  const dir = STREAM_DIR.exec(prefix);
  if (dir === null || !dir[2].startsWith(dir[1])) {
    scan.foreign.push(key);
    return;
  }
  let objects = scan.prefixes.get(prefix);
  if (objects === undefined) {
    objects = { prefix, streamId: dir[2], incarnation: Number(dir[3]), nodeId: dir[4], segments: [], manifests: [], pages: [] };
    scan.prefixes.set(prefix, objects);
  }
  const segment = SEGMENT_NAME.exec(name);
  const manifest = MANIFEST_NAME.exec(name);
  if (segment !== null) objects.segments.push({ key, file, start: Number(segment[1]), end: Number(segment[2]) });
  else if (manifest !== null) objects.manifests.push({ version: Number(manifest[1]), file });
  else if (PAGE_NAME.test(name)) objects.pages.push({ key, file });
  else scan.foreign.push(key);
}

/** The stream id of the key layout: the first 32 hex digits of SHA-256 of the stream path. */
export function streamIdOf(streamPath: string): string {
  return createHash('sha256').update(streamPath).digest('hex').slice(0, 32);
}

interface ManifestSegment {
  start: number;
  end: number;
  unitEnds: number[];
}

/** A decoded manifest, as far as the test relies on it. */
export interface ManifestView {
  version: number;
  path: string;
  incarnation: number;
  nodeId: string;
  retainedStart: number;
  segments: ManifestSegment[];
}

function isWholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Reads and shape-checks one manifest file; undefined if it vanished (superseded and collected). */
export async function readManifest(file: string, key: string): Promise<ManifestView | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new CheckFailure(`manifest ${key} is not JSON (${(error as Error).message}): a torn or partial object`);
  }
  if (value.format === 2) {
    // Older segments are in manifest pages beside the manifest (src/manifest/manifest-pages.ts).
    value.segments = [...(await pageSegments(path.dirname(file), value.pages, key)), ...(value.segments as ManifestSegment[])];
    value.format = 1;
  }
  const segments = value.segments;
  if (
    value.format !== 1 ||
    !isWholeNumber(value.version) ||
    typeof value.path !== 'string' ||
    !isWholeNumber(value.incarnation) ||
    typeof value.nodeId !== 'string' ||
    !isWholeNumber(value.retainedStart) ||
    !Array.isArray(segments) ||
    !segments.every(
      (s: ManifestSegment) =>
        isWholeNumber(s?.start) && isWholeNumber(s.end) && Array.isArray(s.unitEnds) && s.unitEnds.every((u) => isWholeNumber(u)),
    )
  ) {
    throw new CheckFailure(`manifest ${key} does not have the format-1 shape: ${text.slice(0, 300)}`);
  }
  return value as unknown as ManifestView;
}

/** The segments under manifest page references `refs`, read from the page files in `dir`. */
async function pageSegments(dir: string, refs: unknown, key: string): Promise<ManifestSegment[]> {
  if (!Array.isArray(refs)) throw new CheckFailure(`manifest ${key} is format 2 without pages`);
  const out: ManifestSegment[] = [];
  for (const ref of refs as { level: number; start: number; end: number }[]) {
    const name = `page-${ref.level}-${String(ref.start).padStart(20, '0')}-${String(ref.end).padStart(20, '0')}.json`;
    let page: { segments?: ManifestSegment[]; pages?: unknown };
    try {
      page = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as typeof page;
    } catch (error) {
      throw new CheckFailure(`manifest ${key} references page ${name}, which cannot be read: ${(error as Error).message}`);
    }
    if (ref.level === 1) out.push(...(page.segments ?? []));
    else out.push(...(await pageSegments(dir, page.pages, key)));
  }
  return out;
}

/** Which prefix and newest manifest belong to each subject; every other prefix is a problem. */
export interface StreamAudit {
  subject: Subject;
  objects: PrefixObjects;
  /** The newest stored manifest (undefined: nothing sealed and published yet). */
  manifest: ManifestView | undefined;
  /** Segment objects the newest manifest does not list. */
  unlisted: SegmentObject[];
}

export interface AuditOptions {
  objectsDir: string;
  nodeId: string;
  subjects: Subject[];
  /** `--chunk-bytes-max`: read units inside byte-stream segments are fixed steps of it. */
  chunkBytesMax: number;
  /** Largest `--segment-size-bytes` the server ran with (byte-stream segments are at most this). */
  segmentSizeBytesMax: number;
}

export interface Audit {
  streams: StreamAudit[];
  scan: ObjectScan;
  /** Manifest versions older than the newest still stored (superseded, not collected). */
  staleManifests: number;
}

/**
 * Checks the store against the layout and the newest manifests (structure only, no bytes):
 * every prefix belongs to a subject (path hash, node id, one incarnation per stream), manifests
 * decode and name their own key, the newest lists contiguous, non-overlapping segments from the
 * retained start, with well-formed read units, each present as an object of the right size.
 * Unlisted segment objects are returned, not judged: mid-crash they are expected.
 * @throws CheckFailure
 */
export async function auditObjects(options: AuditOptions): Promise<Audit> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await auditOnce(options);
    } catch (error) {
      // A manifest or segment vanished between the listing and the read: the server moved on.
      if (error instanceof VanishedError && attempt < 20) continue;
      throw error;
    }
  }
}

class VanishedError extends Error {}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

async function auditOnce(options: AuditOptions): Promise<Audit> {
  const scan = await scanObjects(options.objectsDir);
  if (scan.foreign.length > 0) throw new CheckFailure(`objects outside the key layout: ${scan.foreign.slice(0, 5).join(', ')}`);
  const bySubject = new Map(options.subjects.map((subject) => [streamIdOf(subject.streamPath), subject]));
  const streams: StreamAudit[] = [];
  let staleManifests = 0;
  for (const objects of scan.prefixes.values()) {
    const subject = bySubject.get(objects.streamId);
    if (subject === undefined) throw new CheckFailure(`objects under ${objects.prefix} belong to no stream of the test`);
    if (objects.nodeId !== options.nodeId) throw new CheckFailure(`objects under ${objects.prefix} name node ${objects.nodeId}, not ${options.nodeId}`);
    if (streams.some((s) => s.subject === subject)) {
      throw new CheckFailure(`${subject.name}: objects under two prefixes (incarnations), the stream was never deleted`);
    }
    const newest = objects.manifests.at(-1);
    staleManifests += Math.max(0, objects.manifests.length - 1);
    let manifest: ManifestView | undefined;
    if (newest !== undefined) {
      const key = `${objects.prefix}manifest-${String(newest.version).padStart(20, '0')}.json`;
      manifest = await readManifest(newest.file, key);
      if (manifest === undefined) throw new VanishedError(key);
      checkManifest(subject, objects, key, newest.version, manifest, options);
    }
    const listed = new Set((manifest?.segments ?? []).map((s) => `${s.start}-${s.end}`));
    const unlisted = objects.segments.filter((s) => !listed.has(`${s.start}-${s.end}`));
    for (const segment of manifest?.segments ?? []) {
      if (objects.segments.some((s) => s.start === segment.start && s.end === segment.end)) continue;
      // readdir may miss a file created while it runs (the segment is written before the manifest).
      const name = `${String(segment.start).padStart(20, '0')}-${String(segment.end).padStart(20, '0')}.seg`;
      const file = path.join(path.dirname(newest!.file), name);
      if (!(await exists(file))) {
        throw new CheckFailure(`${subject.name}: manifest v${manifest?.version} lists segment [${segment.start}, ${segment.end}) but no such object is stored`);
      }
      objects.segments.push({ key: `${objects.prefix}${name}`, file, start: segment.start, end: segment.end });
      objects.segments.sort((a, b) => a.start - b.start || a.end - b.end);
    }
    streams.push({ subject, objects, manifest, unlisted });
  }
  return { streams, scan, staleManifests };
}

function checkManifest(subject: Subject, objects: PrefixObjects, key: string, version: number, manifest: ManifestView, options: AuditOptions): void {
  const where = `${subject.name}: manifest ${key}`;
  if (manifest.version !== version) throw new CheckFailure(`${where} says version ${manifest.version}`);
  if (manifest.path !== subject.streamPath) throw new CheckFailure(`${where} names path '${manifest.path}'`);
  if (manifest.incarnation !== objects.incarnation || manifest.nodeId !== objects.nodeId) {
    throw new CheckFailure(`${where} names incarnation ${manifest.incarnation} of node ${manifest.nodeId}, its key another`);
  }
  if (manifest.retainedStart !== 0) throw new CheckFailure(`${where}: retained start ${manifest.retainedStart} without retention`);
  let at = manifest.retainedStart;
  for (const [i, segment] of manifest.segments.entries()) {
    const range = `segment #${i} [${segment.start}, ${segment.end})`;
    if (segment.start !== at) {
      throw new CheckFailure(`${where}: ${range} ${segment.start < at ? 'overlaps the one before' : `leaves a gap after ${at}`}`);
    }
    if (segment.end <= segment.start) throw new CheckFailure(`${where}: ${range} is empty`);
    if (!subject.json && segment.end - segment.start > options.segmentSizeBytesMax) {
      throw new CheckFailure(`${where}: ${range} is larger than any --segment-size-bytes used (${options.segmentSizeBytesMax})`);
    }
    const units = segment.unitEnds;
    if (units.length === 0 || units.at(-1) !== segment.end) throw new CheckFailure(`${where}: ${range} read units do not end at its end`);
    let unitStart = segment.start;
    for (const [u, unitEnd] of units.entries()) {
      if (unitEnd <= unitStart) throw new CheckFailure(`${where}: ${range} read unit ends are not ascending: ${units.join(',')}`);
      // Byte streams: fixed steps of the maximum chunk size from the segment start (deterministic URLs).
      const step = segment.start + (u + 1) * options.chunkBytesMax;
      if (!subject.json && (u < units.length - 1 ? unitEnd !== step : unitEnd > step)) {
        throw new CheckFailure(`${where}: ${range} read unit ${u} ends at ${unitEnd}, not at a step of ${options.chunkBytesMax}`);
      }
      unitStart = unitEnd;
    }
    at = segment.end;
  }
}

/**
 * Compares every segment the newest manifests list with the subjects' verified bytes (stored
 * form): object size, bytes, and in JSON streams whole messages in every segment and read unit.
 * Call with the server idle (no appends), after every subject's `verify`; or with `prefixOnly`
 * while the server is down after a kill (the stream may have grown past the verified bytes by
 * appends whose outcome is not known yet: segments beyond them are skipped).
 * @throws CheckFailure
 */
export async function checkSegmentBytes(audit: Audit, prefixOnly = false): Promise<{ segments: number; bytes: number }> {
  let segments = 0;
  let bytes = 0;
  for (const { subject, objects, manifest } of audit.streams) {
    if (manifest === undefined) continue;
    const stored = subject.stored();
    const sealedEnd = manifest.segments.at(-1)?.end ?? 0;
    if (sealedEnd > stored.length && !prefixOnly) {
      throw new CheckFailure(`${subject.name}: manifest v${manifest.version} covers [0, ${sealedEnd}), beyond the ${stored.length} verified bytes`);
    }
    for (const segment of manifest.segments) {
      if (segment.end > stored.length) break;
      const object = objects.segments.find((s) => s.start === segment.start && s.end === segment.end);
      if (object === undefined) throw new CheckFailure(`${subject.name}: segment [${segment.start}, ${segment.end}) vanished`);
      const body = await readFile(object.file);
      const range = `${subject.name}: segment [${segment.start}, ${segment.end}) of manifest v${manifest.version}`;
      if (body.length !== segment.end - segment.start) throw new CheckFailure(`${range} holds ${body.length} B`);
      if (!body.equals(stored.subarray(segment.start, segment.end))) {
        const differsAt = body.findIndex((byte, i) => byte !== stored[segment.start + i]);
        throw new CheckFailure(`${range} differs from the acknowledged data at byte ${segment.start + differsAt}`);
      }
      if (subject.json) {
        let unitStart = segment.start;
        for (const unitEnd of segment.unitEnds) {
          const unit = stored.subarray(unitStart, unitEnd);
          if (!wholeMessages(unit)) throw new CheckFailure(`${range}: read unit [${unitStart}, ${unitEnd}) is not whole JSON messages`);
          unitStart = unitEnd;
        }
      }
      segments++;
      bytes += body.length;
    }
  }
  return { segments, bytes };
}

/** Whether a stored JSON range is whole messages, each followed by ','. */
function wholeMessages(stored: Buffer): boolean {
  if (stored.length === 0 || stored[stored.length - 1] !== 0x2c) return false;
  try {
    JSON.parse(`[${stored.toString('utf8', 0, stored.length - 1)}]`);
    return true;
  } catch {
    return false;
  }
}
