/**
 * The CORS header lists of the protocol's browser use (PROTOCOL.md §13.2), in one dependency-free
 * module: the Fastify app (src/http/app.ts) and the CDN configuration (infra/cdk) both use them,
 * so the server and its CDN cannot drift apart.
 */

/**
 * Request headers a browser may send (CORS preflight, PROTOCOL.md §13.2): exactly the protocol's
 * and Cairn's stream headers. `X-Request-Id` is not among them: browsers get a generated id.
 */
export const ALLOWED_REQUEST_HEADERS = [
  'Content-Type',
  'Authorization',
  'If-None-Match',
  'Stream-TTL',
  'Stream-Expires-At',
  'Stream-Closed',
  'Stream-Seq',
  'Stream-Forked-From',
  'Stream-Fork-Offset',
  'Stream-Fork-Sub-Offset',
  'Cairn-Retention-Ms',
  'Cairn-Retention-Bytes',
  'Producer-Id',
  'Producer-Epoch',
  'Producer-Seq',
] as const;

/** Response headers a browser script may read (`Access-Control-Expose-Headers`; the CDN's response headers policy too). */
export const EXPOSED_RESPONSE_HEADERS = [
  'Stream-Next-Offset',
  'Stream-Cursor',
  'Stream-Up-To-Date',
  'Stream-Closed',
  'Stream-TTL',
  'Stream-Expires-At',
  'Stream-SSE-Data-Encoding',
  'Producer-Epoch',
  'Producer-Seq',
  'Producer-Expected-Seq',
  'Producer-Received-Seq',
  'ETag',
  'Cairn-Retention-Ms',
  'Cairn-Retention-Bytes',
  'Cairn-Sealed-Offset',
  'Cairn-Earliest-Offset',
  'Location',
  'Content-Type',
  'Retry-After',
  'X-Request-Id',
] as const;

/**
 * What the durable proxy adds when it is on (the Proxy Protocol v0.1 §10.2; README "Durable
 * proxy"): its request headers, and the headers its answers carry.
 */
export const PROXY_ALLOWED_REQUEST_HEADERS = ['Upstream-URL', 'Upstream-Method', 'Upstream-Authorization'] as const;
export const PROXY_EXPOSED_RESPONSE_HEADERS = ['Upstream-Content-Type', 'Upstream-Status', 'Cairn-Proxy-Outcome'] as const;
