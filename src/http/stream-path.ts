/**
 * Stream paths: `/v1/stream/<path>` → `<path>` (PROTOCOL.md §3 leaves the URL shape to servers;
 * §12.2 asks for validation against traversal).
 */
import { BadRequestError } from '../protocol/errors.ts';

export const STREAM_PREFIX = '/v1/stream/';
/** Longest stream path accepted, in bytes of its decoded form. */
export const STREAM_PATH_BYTES_MAX = 1024;

/**
 * The decoded stream path of a request URL (query removed).
 * @throws BadRequestError for an empty path, bad percent-encoding, control characters, `.`/`..`
 *   segments, or a path longer than STREAM_PATH_BYTES_MAX.
 */
export function streamPathOf(url: string): string {
  const queryAt = url.indexOf('?');
  const raw = (queryAt === -1 ? url : url.slice(0, queryAt)).slice(STREAM_PREFIX.length);
  return validateStreamPath(raw, true);
}

/** Validates a path given in a header (e.g. Stream-Forked-From), with or without the prefix. */
export function streamPathOfHeader(value: string): string {
  let raw = value.trim();
  if (raw.startsWith(STREAM_PREFIX)) raw = raw.slice(STREAM_PREFIX.length);
  else if (raw.startsWith('/')) raw = raw.slice(1);
  return validateStreamPath(raw, true);
}

function validateStreamPath(raw: string, decode: boolean): string {
  let path: string;
  try {
    path = decode ? decodeURIComponent(raw) : raw;
  } catch {
    throw new BadRequestError('stream path is not valid percent-encoding');
  }
  if (path.length === 0) throw new BadRequestError('stream path is empty');
  if (Buffer.byteLength(path) > STREAM_PATH_BYTES_MAX) {
    throw new BadRequestError(`stream path is longer than ${STREAM_PATH_BYTES_MAX} bytes`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) throw new BadRequestError('stream path contains control characters');
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new BadRequestError('stream path must not contain . or .. segments');
  }
  return path;
}
