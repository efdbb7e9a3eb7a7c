/**
 * Where a proxy stream lives and how its outcome is recorded (README "Durable proxy").
 *
 * A proxy stream `<id>` (a UUID) is two ordinary streams, written through the registry's normal
 * path (WAL, group commit, sealing, limits):
 * - `__proxy/<id>`: the upstream response body, byte for byte; closed when the pipe ends, whatever
 *   the outcome.
 * - `__proxy/<id>/meta` (JSON): first message `{"upstreamContentType": …}`; when the pipe ends,
 *   `{"outcome": …, "upstreamBytes": n}` is appended and the stream closed, BEFORE the body stream
 *   is closed, so a reader that sees the body closed always finds the outcome.
 *
 * After a crash (`kill -9`) a pipe cannot be resumed (that would re-request, and re-bill, the
 * upstream): at start, every proxy body stream still open is closed with outcome `interrupted`.
 */

/** How a pipe ended. */
export type ProxyOutcome =
  /** The upstream body ended normally (§8.2 "normal completion"). */
  | 'complete'
  /** The upstream connection failed mid-body (reset, malformed chunking). */
  | 'upstream-error'
  /** Aborted by the holder of the capability URL (PATCH `action=abort`, §4.3). */
  | 'aborted'
  /** No body chunk within `--proxy-idle-timeout-ms`, or past `--proxy-total-timeout-ms`. */
  | 'timed-out'
  /** The stream refused appends for longer than PROXY_STORAGE_RETRY_MS_MAX (disk or store down). */
  | 'storage-error'
  /** The server stopped (crash, kill -9, shutdown) while piping; found and closed at the next start. */
  | 'interrupted';

export const PROXY_PATH_PREFIX = '__proxy/';

/** A proxy stream id: a lower-case UUID. */
export const PROXY_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function bodyPath(id: string): string {
  return `${PROXY_PATH_PREFIX}${id}`;
}

export function metaPath(id: string): string {
  return `${PROXY_PATH_PREFIX}${id}/meta`;
}

/** The id of a proxy body stream path, or undefined for any other path. */
export function idOfBodyPath(path: string): string | undefined {
  if (!path.startsWith(PROXY_PATH_PREFIX)) return undefined;
  const id = path.slice(PROXY_PATH_PREFIX.length);
  return PROXY_ID.test(id) ? id : undefined;
}

/** The id of a proxy meta stream path, or undefined for any other path. */
export function idOfMetaPath(path: string): string | undefined {
  if (!path.startsWith(PROXY_PATH_PREFIX) || !path.endsWith('/meta')) return undefined;
  const id = path.slice(PROXY_PATH_PREFIX.length, -'/meta'.length);
  return PROXY_ID.test(id) ? id : undefined;
}

/** What readers learn besides the bytes: the upstream content type, and the outcome once ended. */
export interface ProxyInfo {
  upstreamContentType: string;
  outcome?: ProxyOutcome;
}

/**
 * The content type of every proxy body stream: `application/octet-stream`, whatever the upstream
 * sent. Bytes are stored exactly as received, and a stream typed `text/event-stream` would make
 * its catch-up responses look like live SSE responses to clients, which then parse the upstream's
 * events as the protocol's and drop them. Readers interpret the bytes by `Upstream-Content-Type`.
 */
export const BODY_CONTENT_TYPE = 'application/octet-stream';
