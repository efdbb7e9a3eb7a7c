/**
 * What a proxy create sends upstream (the Proxy Protocol v0.1 §4.1, §5): the methods allowed and
 * the headers forwarded. No I/O here, so the HTTP routes use it without loading the upstream
 * client (undici), which the server loads only when the proxy is on.
 */

/** Methods an `Upstream-Method` may name (§4.1). */
export const UPSTREAM_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type UpstreamMethod = (typeof UPSTREAM_METHODS)[number];

/**
 * Client headers never forwarded (§5.1, §5.2): hop-by-hop ones, the proxy's own, the client's
 * `Authorization` (proxy authentication), `Host` (set from the URL), `Content-Length` (recomputed
 * from the body), `Accept-Encoding`, so the upstream answers uncompressed (the stream stores
 * what readers decode, and readers never see a `Content-Encoding`), and `Cookie`: a browser sends
 * Cairn's cookies to Cairn, and they must not reach a third party (a deliberate narrowing of the
 * spec's "all other headers are forwarded").
 */
const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
  'host',
  'authorization',
  'upstream-url',
  'upstream-method',
  'upstream-authorization',
  'content-length',
  'accept-encoding',
  'expect',
  'cookie',
]);

/**
 * The headers sent upstream: the client's, less `NOT_FORWARDED` and whatever its `Connection`
 * header names (RFC 9110 §7.6.1), with `Upstream-Authorization` as `Authorization`.
 */
export function upstreamHeaders(client: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const named = new Set(
    String(client.connection ?? '')
      .split(',')
      .map((token) => token.trim().toLowerCase())
      .filter((token) => token.length > 0),
  );
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(client)) {
    const lower = name.toLowerCase();
    if (value === undefined || NOT_FORWARDED.has(lower) || named.has(lower)) continue;
    headers[lower] = value;
  }
  const authorization = client['upstream-authorization'];
  if (typeof authorization === 'string') headers.authorization = authorization;
  return headers;
}

export interface UpstreamRequest {
  url: string;
  method: UpstreamMethod;
  headers: Record<string, string | string[]>;
  body: Buffer | undefined;
}
