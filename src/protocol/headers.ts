/**
 * Parsing of the protocol's request headers (PROTOCOL.md §5). Every function throws
 * BadRequestError with a one-line reason for a malformed value.
 */
import { BadRequestError } from './errors.ts';
import { parseOffsetToken, type OffsetToken } from './offset.ts';

/** Largest integer the protocol accepts in producer headers (2^53 − 1, §5.2.1). */
export const PRODUCER_INTEGER_MAX = Number.MAX_SAFE_INTEGER;

type HeaderValue = string | string[] | undefined;

/** The single value of a header, rejecting repeated headers. */
export function singleHeader(value: HeaderValue, name: string): string | undefined {
  if (Array.isArray(value)) {
    if (value.length > 1) throw new BadRequestError(`header ${name} must appear once`);
    return value[0];
  }
  return value;
}

/** `Stream-Closed` is set only when its value is exactly `true`, case-insensitively (§4.1). */
export function parseClosedFlag(value: HeaderValue): boolean {
  const text = Array.isArray(value) ? value[0] : value;
  return text !== undefined && text.trim().toLowerCase() === 'true';
}

/** `Stream-TTL`: a non-negative decimal integer of seconds without sign or leading zeros (§5.1). */
export function parseTtlSeconds(value: HeaderValue): number | undefined {
  const text = singleHeader(value, 'Stream-TTL');
  if (text === undefined) return undefined;
  if (!/^(0|[1-9]\d{0,14})$/.test(text.trim())) {
    throw new BadRequestError('Stream-TTL must be a non-negative integer number of seconds without sign or leading zeros');
  }
  return Number(text.trim());
}

/**
 * Cairn's retention extension headers on create (`Cairn-Retention-Ms`, `Cairn-Retention-Bytes`):
 * a positive integer. Not part of the protocol; other servers ignore them.
 */
export function parseRetention(value: HeaderValue, name: string): number | undefined {
  const text = singleHeader(value, name);
  if (text === undefined) return undefined;
  if (!/^[1-9]\d{0,14}$/.test(text.trim())) throw new BadRequestError(`${name} must be a positive integer without sign or leading zeros`);
  return Number(text.trim());
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** `Stream-Expires-At`: an RFC 3339 timestamp; returns milliseconds since the epoch (§5.1). */
export function parseExpiresAtMs(value: HeaderValue): number | undefined {
  const text = singleHeader(value, 'Stream-Expires-At');
  if (text === undefined) return undefined;
  const trimmed = text.trim();
  const ms = RFC3339.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (!Number.isFinite(ms)) throw new BadRequestError('Stream-Expires-At must be an RFC 3339 timestamp');
  return ms;
}

/** Idempotent producer identity and position (§5.2.1). */
export interface ProducerHeaders {
  producerId: string;
  epoch: number;
  seq: number;
}

function parseProducerInteger(text: string, name: string): number {
  const trimmed = text.trim();
  if (!/^\d{1,16}$/.test(trimmed) || Number(trimmed) > PRODUCER_INTEGER_MAX) {
    throw new BadRequestError(`${name} must be a non-negative integer no larger than 2^53-1`);
  }
  return Number(trimmed);
}

/** All three producer headers or none (§5.2.1). */
export function parseProducerHeaders(id: HeaderValue, epoch: HeaderValue, seq: HeaderValue): ProducerHeaders | undefined {
  const idText = singleHeader(id, 'Producer-Id');
  const epochText = singleHeader(epoch, 'Producer-Epoch');
  const seqText = singleHeader(seq, 'Producer-Seq');
  if (idText === undefined && epochText === undefined && seqText === undefined) return undefined;
  if (idText === undefined || epochText === undefined || seqText === undefined) {
    throw new BadRequestError('Producer-Id, Producer-Epoch and Producer-Seq must be sent together');
  }
  if (idText.trim() === '') throw new BadRequestError('Producer-Id must not be empty');
  return {
    producerId: idText,
    epoch: parseProducerInteger(epochText, 'Producer-Epoch'),
    seq: parseProducerInteger(seqText, 'Producer-Seq'),
  };
}

/** `Stream-Fork-Offset`: a token previously returned by the server (§4.2). */
export function parseForkOffset(value: HeaderValue): OffsetToken | undefined {
  const text = singleHeader(value, 'Stream-Fork-Offset');
  if (text === undefined) return undefined;
  const token = parseOffsetToken(text.trim());
  if (token === undefined) throw new BadRequestError('Stream-Fork-Offset is not a valid offset');
  return token;
}

/** `Stream-Fork-Sub-Offset`: a non-negative integer (§4.2). */
export function parseForkSubOffset(value: HeaderValue): number | undefined {
  const text = singleHeader(value, 'Stream-Fork-Sub-Offset');
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text.trim())) throw new BadRequestError('Stream-Fork-Sub-Offset must be a non-negative integer');
  return Number(text.trim());
}
