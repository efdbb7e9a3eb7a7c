/**
 * The protocol's headers as the CDN must treat them (PROTOCOL.md §5, §13.2; Cairn's CORS lists in
 * src/http/app.ts). test/infra/cdk.test.ts checks EXPOSED_RESPONSE_HEADERS against what a running
 * Cairn sends in `Access-Control-Expose-Headers`, so the two lists cannot drift apart.
 */

/** Response headers a browser script may read: the `Stream-*`, `Producer-*` and Cairn headers. */
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
] as const;

/** Request headers a browser may send (CORS preflight), PROTOCOL.md §13.2. */
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

/**
 * The query strings that select a read's response (PROTOCOL.md §5.6–5.8, §10.1): the CDN cache key
 * holds exactly these, so that unrelated parameters cannot split the cache or poison it.
 */
export const CACHE_KEY_QUERY_STRINGS = ['offset', 'live', 'cursor'] as const;
