/**
 * Stream paths: `/v1/stream/<path>` → `<path>` (PROTOCOL.md §3 leaves the URL shape to servers;
 * §12.2 asks for validation against traversal).
 */
import { STREAM_PATH_BYTES_MAX_DEFAULT } from '../config/limits.ts';
import { BadRequestError } from './errors.ts';

export const STREAM_PREFIX = '/v1/stream/';
/** Base URL of the durable proxy (the Proxy Protocol v0.1 leaves the URL shape to servers). */
export const PROXY_PREFIX = '/v1/proxy';
/** Longest stream path accepted by default, in bytes of its decoded form (`--stream-path-bytes-max`). */
export const STREAM_PATH_BYTES_MAX = STREAM_PATH_BYTES_MAX_DEFAULT;

/**
 * The decoded stream path of a request URL (query removed).
 * @param maxBytes longest decoded path accepted, in bytes (`--stream-path-bytes-max`).
 * @throws BadRequestError for an empty path, bad percent-encoding, control characters, `.`/`..`
 *   segments, or a path longer than `maxBytes`.
 */
export function streamPathOf(url: string, maxBytes: number = STREAM_PATH_BYTES_MAX): string {
  const queryAt = url.indexOf('?');
  const raw = (queryAt === -1 ? url : url.slice(0, queryAt)).slice(STREAM_PREFIX.length);
  return validateStreamPath(raw, true, maxBytes);
}

/** Validates a path given in a header (e.g. Stream-Forked-From), with or without the prefix. */
export function streamPathOfHeader(value: string, maxBytes: number = STREAM_PATH_BYTES_MAX): string {
  let raw = value.trim();
  if (raw.startsWith(STREAM_PREFIX)) raw = raw.slice(STREAM_PREFIX.length);
  else if (raw.startsWith('/')) raw = raw.slice(1);
  return validateStreamPath(raw, true, maxBytes);
}

function validateStreamPath(raw: string, decode: boolean, maxBytes: number): string {
  let path: string;
  try {
    path = decode ? decodeURIComponent(raw) : raw;
  } catch {
    throw new BadRequestError('stream path is not valid percent-encoding');
  }
  if (path.length === 0) throw new BadRequestError('stream path is empty');
  if (Buffer.byteLength(path) > maxBytes) {
    throw new BadRequestError(`stream path is longer than ${maxBytes} bytes`);
  }
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new BadRequestError('stream path contains control characters');
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new BadRequestError('stream path must not contain . or .. segments');
  }
  return path;
}
