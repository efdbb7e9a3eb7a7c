/**
 * Offset tokens (PROTOCOL.md §8).
 *
 * A token is `<incarnation>_<position><slack>`: the stream incarnation and the logical byte position,
 * each 16 zero-padded decimal digits so that tokens sort lexicographically, then one slack digit.
 * Incarnations come from one server-wide counter that only grows, so:
 * - a path deleted and created again mints tokens that never equal its earlier incarnation's, and
 *   cached URLs (`?offset=…`) of the old incarnation can never be served for the new one;
 * - a fork is always created after its source, so its own tokens sort after every inherited token.
 * Tokens contain only digits and `_`: URL-safe, and never the sentinels `-1` or `now`.
 *
 * The slack digit: Cairn mints it as `0` and ignores it when parsing. Some clients treat the part
 * after `_` as a counter and add 1 to it to mean "just after this offset" (y-durable-streams 0.2.7
 * resumes after a Yjs snapshot that way), which §8 does not allow but the reference server
 * tolerates because a read from inside a message returns the whole message there. With the slack
 * digit that `+1` turns `…0` into `…1`: the same position, so the read is exact in every content
 * type, hot or sealed, and needs no knowledge of append boundaries (byte streams keep none once
 * sealed: their read units are fixed steps, and a response may end inside an append, so "round
 * down to the append start" would repeat bytes to a reader resuming there). ETags are built from
 * positions, so both spellings get the same ETag; they are two cache keys for the same bytes.
 * Tokens of the earlier 16-digit form (no slack digit) are still accepted, so offsets saved by
 * clients before the slack digit existed keep working.
 *
 * The all-zero token (incarnation 0, position 0) names the start of any stream, like `-1`: it is
 * the zero offset of the upstream reference server's format, which clients (and the upstream
 * conformance suite) use to fork at the very start.
 */

export const INCARNATION_DIGITS = 16;
export const POSITION_DIGITS = 16;
/** Largest position a token can carry exactly: 2^53 − 1 bytes (8 PiB), within 16 digits. */
export const POSITION_MAX = Number.MAX_SAFE_INTEGER;

/** Incarnation, position and the optional slack digit (absent in tokens minted before it existed). */
const TOKEN_PATTERN = /^(\d{16})_(\d{16})\d?$/;

/** The slack digit as minted; any digit there parses to the same position. */
const SLACK_DIGIT = '0';

/** Incarnation of the universal zero offset. */
export const ZERO_INCARNATION = 0;

/** A decoded offset: which incarnation minted it and the byte position it names. */
export interface OffsetToken {
  incarnation: number;
  position: number;
}

/** A parsed `offset` query value: a sentinel or a token. */
export type OffsetQuery = { kind: 'start' } | { kind: 'now' } | { kind: 'token'; token: OffsetToken };

/** Formats a token (with the slack digit `0`); `position` is a byte count ≥ 0. */
export function formatOffset(incarnation: number, position: number): string {
  return `${String(incarnation).padStart(INCARNATION_DIGITS, '0')}_${String(position).padStart(POSITION_DIGITS, '0')}${SLACK_DIGIT}`;
}

/**
 * Parses a token, with or without its slack digit (whose value is ignored); returns undefined
 * when the text is not a well-formed token.
 */
export function parseOffsetToken(text: string): OffsetToken | undefined {
  const match = TOKEN_PATTERN.exec(text);
  if (match === null) return undefined;
  return { incarnation: Number(match[1]), position: Number(match[2]) };
}

/**
 * Parses the `offset` query parameter. An absent parameter means the stream start (§5.6).
 * Returns undefined for a malformed value (the caller answers 400).
 */
export function parseOffsetQuery(text: string | undefined): OffsetQuery | undefined {
  if (text === undefined || text === '-1') return { kind: 'start' };
  if (text === 'now') return { kind: 'now' };
  const token = parseOffsetToken(text);
  return token === undefined ? undefined : { kind: 'token', token };
}
