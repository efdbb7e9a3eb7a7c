/**
 * The per-stream manifest (DESIGN.md vocabulary): the list of a stream incarnation's segments plus
 * its metadata, stored as JSON under `manifest-<version>.json` (object-keys.ts). Each seal or
 * retention trim writes the next version create-if-absent, so the manifest doubles as a fence: a
 * version that already exists with other content means another writer (DESIGN.md invariants).
 */

/** One sealed segment `[start, end)` of a stream, in logical byte positions. */
export interface SegmentRef {
  start: number;
  end: number;
  /**
   * Ends of the segment's read units, ascending, the last equal to `end`. A catch-up response
   * only ends on a unit end (or the hot tail), so every reader walks the same URLs: fixed steps
   * of the maximum chunk size in byte streams, whole messages in JSON streams.
   */
  unitEnds: number[];
  /** When the segment was sealed (ms since the epoch); retention by age uses it. */
  sealedAtMs: number;
  /**
   * Integrity: per read unit (same order as `unitEnds`), the first 16 hex digits of the SHA-256
   * of the unit's bytes (docs/storage-layout.md "Checksums"). Absent in manifests written before
   * checksums; verified on every read from the object store when present.
   */
  unitSha256?: string[];
}

/**
 * What a stream is, beyond its bytes, as of the manifest's sealed offset (docs/storage-layout.md):
 * enough to serve the stream and take writes again from the object store alone.
 */
export interface StoredStreamMeta {
  createdAtMs: number;
  ttlSeconds?: number;
  expiresAtMs?: number;
  retentionMs?: number;
  retentionBytes?: number;
  /** End of the sealed bytes (retention may have dropped every segment below it). */
  sealedOffset: number;
  /** Closed as of `sealedOffset`, and the producer tuple `[id, epoch, seq]` that closed it. */
  closed: boolean;
  closedBy?: [string, number, number];
  lastStreamSeq?: string;
  /** `[producerId, epoch, lastSeq]` of every producer as of `sealedOffset`. */
  producers: [string, number, number][];
  /** `soft`: deleted while forks still read it (410 at its path); `hard`: a tombstone, the objects go next. */
  deleted?: 'soft' | 'hard';
  /** Cluster mode: the slot epoch under which the owner wrote this version (docs/cluster.md "Fencing in storage"). */
  ownerEpoch?: number;
}

/**
 * A reference from a manifest (or a higher page) to an immutable manifest page covering segments
 * `[start, end)` (manifest-pages.ts): its key is derived from `level`, `start` and `end`.
 */
export interface PageRef {
  /** 1: the page lists segments; L ≥ 2: it lists level L−1 references. */
  level: number;
  start: number;
  end: number;
  /** Segments under the page (at most `MANIFEST_PAGE_ENTRIES ** level`). */
  segmentCount: number;
}

export interface Manifest {
  /** 1: `segments` lists every segment; 2: older segments are in `pages`. */
  format: 1 | 2;
  path: string;
  incarnation: number;
  nodeId: string;
  contentType: string;
  version: number;
  /** First retained position: reads below it answer 410 Gone (retention). */
  retainedStart: number;
  /**
   * Fork source incarnation and fork position; the source's own manifest lists those bytes. `path`
   * and `nodeId` (the node id in the source's key prefix) are written since stream metadata is
   * stored, so a node without the local disk can find the source.
   * `hostPath` is the path of the fork chain's root (the first stream that is not a fork): in
   * cluster mode a fork lives with its sources in the slot of that path (docs/cluster.md "Forks").
   */
  fork?: { incarnation: number; position: number; path?: string; nodeId?: string; hostPath?: string };
  /**
   * The recent segments (format 2: those not yet in a page), ascending and contiguous, after
   * `pages`.
   */
  segments: SegmentRef[];
  /** Format 2: references to manifest pages holding the older segments, ascending and contiguous. */
  pages?: PageRef[];
  /** Stream metadata (absent in manifests written before it was stored). */
  stream?: StoredStreamMeta;
}

/** A stored manifest could not be decoded. A bug or a foreign writer: never guessed around. */
export class ManifestCorruptError extends Error {
  readonly key: string;
  constructor(key: string, reason: string) {
    super(`manifest ${key} is corrupt: ${reason}`);
    this.name = 'ManifestCorruptError';
    this.key = key;
  }
}

export function encodeManifest(manifest: Manifest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(manifest));
}

/** @throws ManifestCorruptError when `bytes` is not a format-1 or -2 manifest with contiguous pages and segments. */
export function decodeManifest(key: string, bytes: Uint8Array): Manifest {
  let value: Manifest;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes)) as Manifest;
  } catch (error) {
    throw new ManifestCorruptError(key, (error as Error).message);
  }
  if (value === null || typeof value !== 'object' || (value.format !== 1 && value.format !== 2) || !Array.isArray(value.segments)) {
    throw new ManifestCorruptError(key, 'not a format-1 manifest (nor a format-2 one)');
  }
  if (value.format === 2) {
    const pages = value.pages;
    if (!Array.isArray(pages)) throw new ManifestCorruptError(key, 'not a format-1 manifest, and a format-2 one without pages');
    pages.forEach((page, i) => {
      const { level, start, end, segmentCount } = page ?? {};
      if (!Number.isSafeInteger(level) || level < 1 || !Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start >= end || !Number.isSafeInteger(segmentCount)) {
        throw new ManifestCorruptError(key, `page ${i}: bad reference`);
      }
      if (i > 0 && start !== pages[i - 1].end) throw new ManifestCorruptError(key, 'pages are not contiguous');
    });
    const firstSegment = value.segments[0];
    if (pages.length > 0 && firstSegment !== undefined && firstSegment.start !== pages[pages.length - 1].end) {
      throw new ManifestCorruptError(key, 'segments do not continue the pages');
    }
  }
  value.segments.forEach((segment, i) => {
    const problem = segmentProblem(segment);
    if (problem !== undefined) throw new ManifestCorruptError(key, `segment ${i}: ${problem}`);
    if (i > 0 && segment.start !== value.segments[i - 1].end) throw new ManifestCorruptError(key, 'segments are not contiguous');
  });
  return value;
}

function segmentProblem(segment: SegmentRef): string | undefined {
  if (segment === null || typeof segment !== 'object') return 'not an object';
  const { start, end, unitEnds, sealedAtMs } = segment;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start >= end) return 'bad range';
  if (!Number.isSafeInteger(sealedAtMs)) return 'bad sealedAtMs';
  if (!Array.isArray(unitEnds) || unitEnds.length === 0 || unitEnds.at(-1) !== end) return 'unit ends must finish at the segment end';
  const sums = segment.unitSha256;
  if (sums !== undefined && (!Array.isArray(sums) || sums.length !== unitEnds.length || sums.some((sum) => !/^[0-9a-f]{16}$/.test(sum)))) {
    return 'unit checksums must be 16 hex digits, one per unit';
  }
  let previous = start;
  for (const unitEnd of unitEnds) {
    if (!Number.isSafeInteger(unitEnd) || unitEnd <= previous) return 'unit ends must increase inside the segment';
    previous = unitEnd;
  }
  return undefined;
}

/** True when two manifests say the same thing (a refused put of an identical manifest is ours). */
export function sameManifest(a: Manifest, b: Manifest): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
