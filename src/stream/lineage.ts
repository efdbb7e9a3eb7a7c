/**
 * Stream lineage: a fork reads its source's bytes below its fork point and shares its source's
 * offsets there (PROTOCOL.md §4.2 forks, §6 offsets). Pure functions of the in-memory state: which
 * stream holds a position, what an offset token names, the first position still readable under
 * retention, and where a fork diverges (which may need one read of sealed data).
 */
import { BadRequestError, GoneError } from '../protocol/errors.ts';
import { storedMessagesLength } from '../protocol/json-mode.ts';
import { formatOffset, ZERO_INCARNATION, type OffsetToken } from '../protocol/offset.ts';
import type { StreamState } from './stream-state.ts';

/** The stream and its fork sources, nearest first (`[stream, source, source's source, …]`). */
export function lineage(stream: StreamState): StreamState[] {
  const chain = [stream];
  for (let at = stream.fork?.source; at !== undefined; at = at.fork?.source) chain.push(at);
  return chain;
}

/** Formats the offset token of `position` (bytes) on `stream`: its incarnation and the position. */
export function offsetOf(stream: StreamState, position: number): string {
  return formatOffset(stream.incarnation, position);
}

/**
 * First readable position of `stream` (what offset `-1` means): its own retained start, or, while
 * it has dropped none of its own bytes, the earliest position its fork source still retains.
 */
export function earliestPosition(stream: StreamState): number {
  if (stream.fork === undefined || stream.retainedStart > stream.basePosition) return stream.retainedStart;
  return Math.min(earliestPosition(stream.fork.source), stream.basePosition);
}

/**
 * The logical position (bytes) an offset token names on `stream` (forks share their source's
 * offsets below the fork point). Positions up to `durableOffset` are readable.
 * @throws BadRequestError when the token is past the readable tail or does not belong to the
 *   stream; GoneError when it is below the earliest retained position or belongs to an earlier
 *   incarnation of the path.
 */
export function resolvePosition(stream: StreamState, token: OffsetToken): number {
  if (token.incarnation === ZERO_INCARNATION && token.position === 0) return earliestPosition(stream);
  let limit = stream.durableOffset;
  for (const at of lineage(stream)) {
    if (token.incarnation === at.incarnation) {
      if (token.position > limit) throw new BadRequestError('offset is beyond the tail of the stream');
      if (token.position < earliestPosition(stream)) {
        throw new GoneError('offset is before the earliest retained position of the stream (retention)');
      }
      return token.position;
    }
    if (at.fork !== undefined) limit = Math.min(limit, at.fork.position);
  }
  if (token.incarnation < stream.incarnation) {
    throw new GoneError('offset belongs to an earlier incarnation of this stream');
  }
  throw new BadRequestError('offset does not belong to this stream');
}

/** The stream in `stream`'s lineage whose own bytes hold `position` (forks read their sources below the fork point). */
export function ownerOf(stream: StreamState, position: number): StreamState {
  let owner = stream;
  while (owner.fork !== undefined && position < owner.basePosition) owner = owner.fork.source;
  return owner;
}

/**
 * Where `owner`'s bytes stop being `stream`'s: the lowest fork point between them (∞ when `owner`
 * is `stream` itself). `owner` must be in `stream`'s lineage.
 */
export function childBase(stream: StreamState, owner: StreamState): number {
  let limit = Number.POSITIVE_INFINITY;
  for (let at = stream; at !== owner && at.fork !== undefined; at = at.fork.source) limit = Math.min(limit, at.basePosition);
  return limit;
}

/** Reads the rest of the sealed read unit holding `position` of `owner` (the read path implements it). */
export type SealedUnitReader = (owner: StreamState, position: number) => Promise<Buffer>;

/**
 * Resolves a fork point on `source` (PROTOCOL.md §4.2 forks): the position `offset` names (default:
 * the source's durable tail) plus `subOffset`, which may not run past the next data boundary (the
 * end of the append entry at that position, or of the read unit when it lies in sealed data; in
 * JSON mode `subOffset` counts messages, otherwise bytes).
 * @throws BadRequestError (the offset, see `resolvePosition`, or a sub-offset past the boundary),
 *   GoneError; Error when the position lies in sealed data and no `readSealedUnit` is given.
 */
export async function forkPosition(
  source: StreamState,
  offset: OffsetToken | undefined,
  subOffset: number,
  readSealedUnit: SealedUnitReader | undefined,
): Promise<number> {
  const anchor = offset === undefined ? source.durableOffset : resolvePosition(source, offset);
  if (subOffset === 0) return anchor;
  const entry = await entryRest(source, anchor, readSealedUnit);
  const length = source.isJson ? storedMessagesLength(entry, subOffset) : subOffset <= entry.length ? subOffset : undefined;
  if (length === undefined) throw new BadRequestError('Stream-Fork-Sub-Offset is past the next data boundary');
  return anchor + length;
}

/** The rest of the data boundary holding `position` in the stream's lineage (§4.2 sub-offsets). */
async function entryRest(stream: StreamState, position: number, readSealedUnit: SealedUnitReader | undefined): Promise<Buffer> {
  const owner = ownerOf(stream, position);
  if (position < owner.sealedOffset) {
    if (readSealedUnit === undefined) throw new Error('no sealed-unit reader: cannot fork inside sealed data');
    return readSealedUnit(owner, position);
  }
  const { parts } = owner.hotTail.read(position, owner.tailOffset, 1, true);
  return parts[0] ?? Buffer.alloc(0);
}
