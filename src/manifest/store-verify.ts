/**
 * A read-only consistency check of a whole store (or a key prefix of it), for `cairn verify`
 * (docs/storage-layout.md). Per stream incarnation, against its newest manifest: the manifest
 * decodes and belongs to its key prefix (path hash, incarnation); its manifest pages are present
 * and decode; every listed segment (above the retained start) is present
 * with its size and, read back, matches its unit checksums; segments are contiguous and end at
 * the stored sealed offset; a fork's source incarnation is present. Reported but not failures:
 * superseded manifest versions and segment objects no manifest lists (both collected later), and
 * tombstoned incarnations whose deletion has not finished.
 */
import { listAll, ObjectNotFoundError, type ObjectStore } from '../object-store/index.ts';
import { decodeManifest, ManifestCorruptError, type Manifest, type SegmentRef } from './manifest.ts';
import { segmentsFrom } from './manifest-pages.ts';
import { parseIncarnationDir, parseStreamObjectKey, segmentKey, streamObjectPrefix } from './object-keys.ts';
import { unitChecksum } from './unit-checksum.ts';

export interface VerifyReport {
  incarnations: number;
  segmentsChecked: number;
  bytesChecked: number;
  /** Inconsistencies: any one makes the store fail verification. */
  problems: string[];
  /** Manifest versions older than the newest of their incarnation. */
  supersededManifests: number;
  /** Segment objects no newest manifest lists. */
  orphanSegments: string[];
  /** Incarnations whose newest manifest is a tombstone (deletion under way). */
  tombstones: number;
}

interface Incarnation {
  dir: string;
  segments: Map<string, number>;
  manifests: { key: string; version: number }[];
}

/**
 * Walks every key under `prefix` ('' = the whole store) and checks each incarnation.
 * `onProgress(done, total)` is called after each incarnation. @throws object-store errors.
 */
export async function verifyStore(
  store: ObjectStore,
  prefix = '',
  onProgress: (done: number, total: number) => void = () => {},
): Promise<VerifyReport> {
  const incarnations = new Map<string, Incarnation>();
  for await (const object of listAll(store, prefix)) {
    const slash = object.key.indexOf('/');
    const second = slash === -1 ? -1 : object.key.indexOf('/', slash + 1);
    if (second === -1) continue; // not a stream key (the overwrite probe's, say)
    const at = parseIncarnationDir(object.key.slice(0, second + 1), object.key);
    if (at === undefined) continue;
    let incarnation = incarnations.get(at.dir);
    if (incarnation === undefined) incarnations.set(at.dir, (incarnation = { dir: at.dir, segments: new Map(), manifests: [] }));
    const parsed = parseStreamObjectKey(at.dir, object.key);
    if (parsed?.kind === 'segment') incarnation.segments.set(object.key, object.sizeBytes);
    else if (parsed?.kind === 'manifest') incarnation.manifests.push({ key: object.key, version: parsed.version });
  }
  const report: VerifyReport = {
    incarnations: incarnations.size,
    segmentsChecked: 0,
    bytesChecked: 0,
    problems: [],
    supersededManifests: 0,
    orphanSegments: [],
    tombstones: 0,
  };
  let done = 0;
  for (const incarnation of incarnations.values()) {
    await verifyIncarnation(store, incarnation, incarnations, prefix, report);
    onProgress(++done, incarnations.size);
  }
  return report;
}

async function verifyIncarnation(
  store: ObjectStore,
  at: Incarnation,
  all: Map<string, Incarnation>,
  prefix: string,
  report: VerifyReport,
): Promise<void> {
  const newest = at.manifests.reduce<{ key: string; version: number } | undefined>((a, b) => (a === undefined || b.version > a.version ? b : a), undefined);
  if (newest === undefined) {
    // Segments without any manifest: an interrupted first seal (or deletion); nothing serves them.
    report.orphanSegments.push(...at.segments.keys());
    return;
  }
  report.supersededManifests += at.manifests.length - 1;
  let manifest: Manifest;
  let segments: SegmentRef[];
  try {
    manifest = decodeManifest(newest.key, (await store.get(newest.key)).body);
    segments = manifest.pages === undefined ? manifest.segments : await segmentsFrom(store, at.dir, manifest, manifest.retainedStart);
  } catch (error) {
    if (error instanceof ManifestCorruptError) {
      report.problems.push(error.message);
      return;
    }
    if (error instanceof ObjectNotFoundError) {
      report.problems.push(`${newest.key}: references a manifest page that is missing (${error.message})`);
      return;
    }
    throw error;
  }
  const nodeId = /-([0-9a-f]+)\/$/.exec(at.dir)?.[1] ?? '';
  if (streamObjectPrefix(manifest.path, manifest.incarnation, nodeId) !== at.dir) {
    report.problems.push(`${newest.key}: names path ${JSON.stringify(manifest.path)} incarnation ${manifest.incarnation}, which belong elsewhere`);
    return;
  }
  if (manifest.stream?.deleted === 'hard') {
    report.tombstones++;
    return;
  }
  const listed = new Set<string>();
  for (const segment of segments) {
    const key = segmentKey(at.dir, segment.start, segment.end);
    listed.add(key);
    const size = at.segments.get(key);
    if (size === undefined) {
      report.problems.push(`${newest.key}: lists segment ${key}, which is missing`);
      continue;
    }
    if (size !== segment.end - segment.start) {
      report.problems.push(`${key}: holds ${size} bytes, the manifest says ${segment.end - segment.start}`);
      continue;
    }
    if (segment.unitSha256 !== undefined) {
      const body = (await store.get(key)).body;
      let unitStart = segment.start;
      segment.unitEnds.forEach((unitEnd, i) => {
        const sum = unitChecksum(body.subarray(unitStart - segment.start, unitEnd - segment.start));
        if (sum !== segment.unitSha256?.[i]) report.problems.push(`${key}: bytes [${unitStart}, ${unitEnd}) do not match their checksum`);
        unitStart = unitEnd;
      });
      report.bytesChecked += body.length;
    }
    report.segmentsChecked++;
  }
  const last = segments.at(-1);
  if (manifest.stream !== undefined && last !== undefined && last.end !== manifest.stream.sealedOffset) {
    report.problems.push(`${newest.key}: segments end at ${last.end}, the sealed offset is ${manifest.stream.sealedOffset}`);
  }
  if (segments.length > 0 && segments[0].end <= manifest.retainedStart) {
    report.problems.push(`${newest.key}: lists segment [${segments[0].start}, ${segments[0].end}) below the retained start ${manifest.retainedStart}`);
  }
  const fork = manifest.fork;
  if (fork?.path !== undefined && fork.nodeId !== undefined) {
    const sourceDir = streamObjectPrefix(fork.path, fork.incarnation, fork.nodeId);
    const source = all.get(sourceDir);
    // A source outside the verified prefix was not listed: not checked.
    if (sourceDir.startsWith(prefix) && (source === undefined || source.manifests.length === 0)) {
      report.problems.push(`${newest.key}: fork source ${JSON.stringify(fork.path)} incarnation ${fork.incarnation} is missing`);
    }
  }
  for (const key of at.segments.keys()) if (!listed.has(key)) report.orphanSegments.push(key);
}
