/**
 * The inspector's only way to the server: same-origin fetches of the public API, with the token
 * from the token field (kept in sessionStorage, so it ends with the tab). The inspector sees
 * exactly what the API shows that token.
 */

const TOKEN_KEY = 'cairn-inspector-token';

export function storedToken(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function storeToken(token: string): void {
  if (token === '') sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** A response that was not 2xx: its status and the server's one-line message. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(`${status}: ${message}`);
    this.status = status;
  }
}

/** `/v1/stream/<path>` with each segment percent-encoded. */
export function streamUrl(path: string): string {
  return `/v1/stream/${path.split('/').map(encodeURIComponent).join('/')}`;
}

export async function call(url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = storedToken();
  if (token !== '') headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(url, { ...init, headers, cache: 'no-store' });
  if (!response.ok) throw new ApiError(response.status, (await response.text()) || response.statusText);
  return response;
}

export interface StreamListEntry {
  path: string;
  contentType: string;
  nextOffset: string;
  closed: boolean;
}

export interface StreamListPage {
  streams: StreamListEntry[];
  nextCursor: string | null;
}

export async function listStreams(prefix: string, cursor: string | null, limit: number): Promise<StreamListPage> {
  const query = new URLSearchParams({ prefix, limit: String(limit) });
  if (cursor !== null) query.set('cursor', cursor);
  return (await call(`/v1/streams?${query}`)).json();
}

export interface StreamMeta {
  path: string;
  incarnation: number;
  contentType: string;
  closed: boolean;
  ttlSeconds: number | null;
  expiresAt: string | null;
  retentionMs: number | null;
  retentionBytes: number | null;
  offsets: { tail: string; durable: string; sealed: string; earliest: string };
  hotTailBytes: number;
  fork: { sourcePath: string | null; offset: string } | null;
  forkCount: number;
  manifestVersion: number;
  segmentCount: number;
  segments: { startOffset: string; endOffset: string; bytes: number; sealedAt: string }[];
  producerCount: number;
  producers: { producerId: string; epoch: number; lastSeq: number }[];
}

/** HEAD's headers (the protocol's view) and the metadata endpoint (what HEAD does not carry). */
export async function describeStream(path: string): Promise<{ head: Record<string, string>; meta: StreamMeta }> {
  const headResponse = await call(streamUrl(path), { method: 'HEAD' });
  const head: Record<string, string> = {};
  headResponse.headers.forEach((value, name) => {
    if (name.startsWith('stream-') || name.startsWith('cairn-') || name === 'content-type' || name === 'etag') head[name] = value;
  });
  const meta: StreamMeta = await (await call(`/v1/streams/meta?${new URLSearchParams({ path })}`)).json();
  return { head, meta };
}

export async function appendToStream(path: string, contentType: string, body: string): Promise<void> {
  await call(streamUrl(path), { method: 'POST', headers: { 'content-type': contentType }, body });
}

export async function closeStream(path: string): Promise<void> {
  await call(streamUrl(path), { method: 'POST', headers: { 'stream-closed': 'true' } });
}

export async function forkStream(sourcePath: string, forkPath: string): Promise<void> {
  await call(streamUrl(forkPath), { method: 'PUT', headers: { 'stream-forked-from': streamUrl(sourcePath) } });
}

export async function deleteStream(path: string): Promise<void> {
  await call(streamUrl(path), { method: 'DELETE' });
}
