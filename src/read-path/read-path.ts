/**
 * The read path (DESIGN.md layers: resolve offset → hot tail or segment): builds catch-up
 * responses across a stream's lineage, its sealed segments and its hot tail.
 *
 * Boundaries are deterministic (issue 3 §3): a response starting in sealed data takes the rest of
 * the read unit holding its offset, then whole following units while they fit in its budget
 * (`catchUpBytesMax` for catch-up responses, `chunkBytesMax` for SSE data events), and may run on
 * into the hot tail. A response that never touched the hot tail
 * and stopped because the next (existing) unit did not fit, or at the end of a closed stream, can
 * never change: it is `immutable`. Identical concurrent reads that start in sealed data (same
 * incarnation and offset) share one in-flight response. A response that stopped in sealed data
 * starts fetching the next unit (read-ahead), so a reader walking history overlaps its GETs.
 */
import { READ_AHEAD_CACHE_CHUNKS_MIN, READ_AHEAD_UNITS } from '../config/limits.ts';
import { streamBody, type BodyPiece, type LazyUnit } from './read-body.ts';
import { GoneError } from '../protocol/errors.ts';
import { jsonArrayBody } from '../protocol/json-mode.ts';
import { ObjectNotFoundError } from '../object-store/index.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import { childBase } from '../stream/lineage.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import type { ObjectNaming } from '../manifest/object-naming.ts';
import type { SegmentCache } from './segment-cache.ts';

export interface ReadResult {
  /**
   * The response body in order, as views of the hot tail and cached segment units (not copies):
   * raw bytes, or in JSON mode one buffer holding the JSON array. At least one element.
   */
  body: Buffer[];
  /** Total length of `body` in bytes. */
  bodyBytes: number;
  /** Position after the last byte returned (Stream-Next-Offset). */
  end: number;
  /** Wholly sealed and ending on a deterministic boundary: `Cache-Control: immutable`. */
  immutable: boolean;
}

/** A catch-up response whose body is produced while it is written (ReadPath.open). */
export interface CatchUpResult {
  /**
   * The body as an iterable of buffers, produced on demand: sealed units after the first are
   * fetched (through the segment cache) up to READ_AHEAD_UNITS ahead of the one being written,
   * and small hot-tail appends are joined in runs of at most 1 MiB. Each call starts a new pass;
   * errors of a later unit's fetch (ObjectStoreUnavailableError, GoneError) surface from the
   * iterator.
   */
  body(): AsyncIterable<Buffer>;
  /** Total length of the body in bytes (Content-Length). */
  bodyBytes: number;
  /** Position after the last byte returned (Stream-Next-Offset). */
  end: number;
  /** Wholly sealed and ending on a deterministic boundary: `Cache-Control: immutable`. */
  immutable: boolean;
}

export interface ReadPathOptions {
  registry: StreamRegistry;
  cache: SegmentCache;
  naming: ObjectNaming;
  /** Read-unit size inside segments and the budget of `read` (SSE data events), bytes. */
  chunkBytesMax: number;
  /** Budget of a catch-up response (`open`), bytes; default `chunkBytesMax`. */
  catchUpBytesMax?: number;
}

interface Plan {
  pieces: BodyPiece[];
  bodyBytes: number;
  end: number;
  immutable: boolean;
  json: boolean;
}

export class ReadPath {
  readonly #o: ReadPathOptions;
  readonly #inFlight = new Map<string, Promise<unknown>>();
  /** Reads answered by joining an identical one in flight. */
  collapsedReads = 0;
  /** Responses assembled (each collapsed group counts once). */
  responsesBuilt = 0;

  constructor(options: ReadPathOptions) {
    this.#o = options;
  }

  /**
   * A catch-up response of `stream` from `from` (a resolved position ≤ durableOffset).
   * @throws GoneError when `from` (or a segment under it) fell to retention meanwhile;
   *   ObjectStoreUnavailableError (503 + Retry-After) when the object store cannot be reached.
   */
  read(stream: StreamState, from: number): Promise<ReadResult> {
    return this.#collapsed(stream, from, 'read', () => this.#plan(stream, from, this.#o.chunkBytesMax, true).then(materialise));
  }

  /**
   * A catch-up response of `stream` from `from` (a resolved position ≤ durableOffset), up to
   * `catchUpBytesMax`, whose body streams: only the first sealed unit is fetched before this
   * resolves (so a store outage or retention still answers with a status), the rest while the
   * body is written. Memory per response: the unit being written plus those fetched ahead.
   * @throws as `read`.
   */
  open(stream: StreamState, from: number): Promise<CatchUpResult> {
    const budget = this.#o.catchUpBytesMax ?? this.#o.chunkBytesMax;
    return this.#collapsed(stream, from, 'open', () =>
      this.#plan(stream, from, budget, false).then((plan) => ({
        body: () => streamBody(plan.pieces, plan.json, (unit) => this.#unitSlice(unit), READ_AHEAD_UNITS),
        bodyBytes: plan.bodyBytes,
        end: plan.end,
        immutable: plan.immutable,
      })),
    );
  }

  /** Identical concurrent reads that start in sealed data share one `build()`. */
  #collapsed<T>(stream: StreamState, from: number, kind: string, build: () => Promise<T>): Promise<T> {
    if (from >= this.#o.registry.ownerOf(stream, from).sealedOffset) return build();
    const key = `${kind}:${stream.incarnation}:${from}`;
    const joined = this.#inFlight.get(key) as Promise<T> | undefined;
    if (joined !== undefined) {
      this.collapsedReads++;
      return joined;
    }
    const read = build().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, read);
    return read;
  }

  /** The rest of the sealed read unit holding `position` of `owner` (fork sub-offsets, §4.2). */
  async unitRest(owner: StreamState, position: number): Promise<Buffer> {
    const segment = owner.segments[owner.segmentIndexAt(position)];
    const unit = unitAt(segment, position);
    return (await this.#unit(owner, segment, unit.start, unit.end)).subarray(position - unit.start);
  }

  /**
   * Where a response from `from` ends within `budget` bytes, and its pieces: hot-tail views and
   * sealed unit slices, fetched now when `fetchAll` is set, else only the first (the rest lazily).
   */
  async #plan(stream: StreamState, from: number, budgetBytes: number, fetchAll: boolean): Promise<Plan> {
    this.responsesBuilt++;
    const registry = this.#o.registry;
    const to = stream.durableOffset;
    const closed = stream.durableClosed;
    const wholeEntries = stream.isJson;
    const pieces: BodyPiece[] = [];
    let at = from;
    let budget = budgetBytes;
    let touchedHot = false;
    let fetchedUnit = false;
    let full = false;
    while (at < to && !full) {
      const owner = registry.ownerOf(stream, at);
      const ownerEnd = Math.min(to, childBase(stream, owner));
      if (at < owner.retainedStart) throw new GoneError('offset is before the earliest retained position of the stream (retention)');
      if (at < owner.sealedOffset) {
        const segment = owner.segments[owner.segmentIndexAt(at)];
        const unit = unitAt(segment, at);
        const end = Math.min(unit.end, ownerEnd);
        if (pieces.length > 0 && end - at > budget) {
          full = true; // the next unit exists and does not fit: a deterministic end
          break;
        }
        const lazy: LazyUnit = { owner, segment, unitStart: unit.start, unitEnd: unit.end, from: at, to: end };
        if (fetchAll || !fetchedUnit) {
          pieces.push(await this.#unitSlice(lazy));
          fetchedUnit = true;
        } else {
          pieces.push(lazy);
        }
        budget -= end - at;
        at = end;
        full = budget <= 0;
        continue;
      }
      touchedHot = true;
      const hot = owner.hotTail.read(at, ownerEnd, budget, wholeEntries);
      if (pieces.length > 0 && hot.end - at > budget) break; // a whole JSON entry that does not fit
      pieces.push(...hot.parts);
      budget -= hot.end - at;
      full = hot.end < ownerEnd || budget <= 0;
      at = hot.end;
    }
    if (full && !touchedHot) this.#readAhead(registry.ownerOf(stream, at), at);
    const immutable = !touchedHot && at > from && (full || (at === to && closed));
    const stored = at - from;
    const bodyBytes = wholeEntries ? (stored === 0 ? 2 : stored + 1) : stored;
    return { pieces, bodyBytes, end: at, immutable, json: wholeEntries };
  }

  /** The bytes of a unit slice, through the cache. */
  async #unitSlice(unit: LazyUnit): Promise<Buffer> {
    const bytes = await this.#unit(unit.owner, unit.segment, unit.unitStart, unit.unitEnd);
    return bytes.subarray(unit.from - unit.unitStart, unit.to - unit.unitStart);
  }

  /**
   * After a response that stopped in sealed data, fetch the unit at `at` (where the reader's next
   * request starts) into the cache. Kept only when the cache holds at least
   * `READ_AHEAD_CACHE_CHUNKS_MIN` responses' worth, so a read-ahead is not evicted before it is read.
   */
  #readAhead(owner: StreamState, at: number): void {
    if (at < owner.retainedStart || at >= owner.sealedOffset) return;
    const segment = owner.segments[owner.segmentIndexAt(at)];
    const unit = unitAt(segment, at);
    const whole = unit.start === segment.start && unit.end === segment.end;
    const range = whole ? undefined : { startByte: unit.start - segment.start, endByte: unit.end - segment.start };
    const keepBytesMin = READ_AHEAD_CACHE_CHUNKS_MIN * this.#o.chunkBytesMax;
    this.#o.cache.prefetch(this.#o.naming.segment(owner, segment), range, keepBytesMin, unitChecksumOf(segment, unit.end));
  }

  /** One read unit of a segment, through the cache. */
  async #unit(owner: StreamState, segment: SegmentRef, start: number, end: number): Promise<Buffer> {
    const key = this.#o.naming.segment(owner, segment);
    const whole = start === segment.start && end === segment.end;
    try {
      const range = whole ? undefined : { startByte: start - segment.start, endByte: end - segment.start };
      return await this.#o.cache.read(key, range, unitChecksumOf(segment, end));
    } catch (error) {
      if (error instanceof ObjectNotFoundError && start < owner.retainedStart) {
        throw new GoneError('offset is before the earliest retained position of the stream (retention)');
      }
      throw error;
    }
  }
}

/** A plan whose pieces were all fetched, as a ReadResult (JSON mode: one buffer with the array). */
function materialise(plan: Plan): ReadResult {
  const parts = plan.pieces as Buffer[];
  const { end, immutable, bodyBytes } = plan;
  if (plan.json) return { body: [jsonArrayBody(parts)], bodyBytes, end, immutable };
  return { body: parts.length === 0 ? [Buffer.alloc(0)] : coalesceSmallParts(parts), bodyBytes, end, immutable };
}

/**
 * Parts of at least this many bytes are sent as they are (views); runs of smaller ones (small
 * appends in the hot tail) are joined into one buffer each, so a response is a few large writes
 * rather than thousands of tiny ones.
 */
const SMALL_PART_BYTES = 64 * 1024;

/** `parts` with each run of consecutive parts smaller than SMALL_PART_BYTES joined into one buffer. */
function coalesceSmallParts(parts: Buffer[]): Buffer[] {
  if (parts.length === 1) return parts;
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  const flush = () => {
    if (run.length > 0) out.push(run.length === 1 ? run[0] : Buffer.concat(run));
    run = [];
  };
  for (const part of parts) {
    if (part.length >= SMALL_PART_BYTES) {
      flush();
      out.push(part);
    } else {
      run.push(part);
    }
  }
  flush();
  return out;
}

/** The manifest checksum of `segment`'s unit ending at `end` (undefined for segments stored without). */
function unitChecksumOf(segment: SegmentRef, end: number): string | undefined {
  return segment.unitSha256?.[segment.unitEnds.indexOf(end)];
}

/** The read unit `[start, end)` of `segment` holding `position`. */
export function unitAt(segment: SegmentRef, position: number): { start: number; end: number } {
  let start = segment.start;
  for (const end of segment.unitEnds) {
    if (position < end) return { start, end };
    start = end;
  }
  throw new RangeError(`position ${position} is not inside segment [${segment.start}, ${segment.end})`);
}
