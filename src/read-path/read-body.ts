/**
 * Streaming catch-up bodies (ReadPath.open): a response may span many sealed read units, so its
 * bytes are produced while it is written instead of being gathered first. Memory per response is
 * bounded by the unit being written, the ones fetched ahead (READ_AHEAD_UNITS) and one run of
 * joined small appends, however large the response.
 */
import type { SegmentRef } from '../manifest/manifest.ts';
import type { StreamState } from '../stream/stream-state.ts';

/** A slice `[from, to)` of the sealed read unit `[unitStart, unitEnd)` of `owner`'s `segment`, not fetched yet. */
export interface LazyUnit {
  owner: StreamState;
  segment: SegmentRef;
  unitStart: number;
  unitEnd: number;
  from: number;
  to: number;
}

/** A piece of a response body: bytes in hand (hot-tail views, the first unit) or a unit to fetch. */
export type BodyPiece = Buffer | LazyUnit;

/**
 * Consecutive pieces smaller than this are joined into one buffer (up to RUN_BYTES_MAX), so a
 * response of many small appends is a few large socket writes rather than thousands of tiny ones.
 */
const SMALL_PIECE_BYTES = 64 * 1024;
/** Largest joined run: the copy a response holds at once for small appends. */
const RUN_BYTES_MAX = 1024 * 1024;

const JSON_OPEN = Buffer.from('[');
const JSON_CLOSE = Buffer.from(']');
const JSON_EMPTY = Buffer.from('[]');

/**
 * The body of `pieces` in order; in JSON mode (`json`) wrapped as an array: stored messages each
 * end with `,`, and the last comma becomes `]` (protocol/json-mode.ts storage format). `fetch`
 * reads a lazy unit slice; once the current unit is in hand, up to `aheadUnits` (≥ 1) following
 * lazy units are requested while it is written, so the object store's latency overlaps with
 * sending.
 */
export async function* streamBody(
  pieces: readonly BodyPiece[],
  json: boolean,
  fetch: (unit: LazyUnit) => Promise<Buffer>,
  aheadUnits = 1,
): AsyncGenerator<Buffer> {
  if (json && pieces.length === 0) {
    yield JSON_EMPTY;
    return;
  }
  if (json) yield JSON_OPEN;
  let run: Buffer[] = [];
  let runBytes = 0;
  const flush = (): Buffer | undefined => {
    if (run.length === 0) return undefined;
    const joined = run.length === 1 ? run[0] : Buffer.concat(run, runBytes);
    run = [];
    runBytes = 0;
    return joined;
  };
  /** Fetches requested ahead, by piece index; the next lazy piece not requested yet is at `unrequested` or later. */
  const ahead = new Map<number, Promise<Buffer>>();
  let unrequested = 0;
  const requestAhead = (current: number) => {
    unrequested = Math.max(unrequested, current + 1);
    while (ahead.size < aheadUnits) {
      const index = nextLazyIndex(pieces, unrequested);
      if (index === undefined) return;
      const fetched = fetch(pieces[index] as LazyUnit);
      fetched.catch(() => {}); // reported when awaited
      ahead.set(index, fetched);
      unrequested = index + 1;
    }
  };
  for (let i = 0; i < pieces.length; i++) {
    const piece = pieces[i];
    let bytes: Buffer;
    if (Buffer.isBuffer(piece)) {
      requestAhead(i);
      bytes = piece;
    } else {
      const fetched = ahead.get(i) ?? fetch(piece);
      ahead.delete(i);
      bytes = await fetched;
      requestAhead(i);
    }
    if (json && i === pieces.length - 1) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length < SMALL_PIECE_BYTES && runBytes + bytes.length <= RUN_BYTES_MAX) {
      run.push(bytes);
      runBytes += bytes.length;
      continue;
    }
    const joined = flush();
    if (joined !== undefined) yield joined;
    if (bytes.length < SMALL_PIECE_BYTES) {
      run.push(bytes);
      runBytes = bytes.length;
    } else if (bytes.length > 0) {
      yield bytes;
    }
  }
  const joined = flush();
  if (joined !== undefined) yield joined;
  if (json) yield JSON_CLOSE;
}

/** The index of the first lazy unit at or after `index`, if it comes before the end. */
function nextLazyIndex(pieces: readonly BodyPiece[], index: number): number | undefined {
  for (let i = index; i < pieces.length; i++) if (!Buffer.isBuffer(pieces[i])) return i;
  return undefined;
}
