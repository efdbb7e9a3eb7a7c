/**
 * The protocol's headers as the CDN must treat them (PROTOCOL.md §5, §13.2; Cairn's CORS lists in
 * src/http/cors-headers.ts, shared with the server). test/infra/cdk.test.ts also checks the exposed
 * list against what a running Cairn sends in `Access-Control-Expose-Headers`.
 */

export { ALLOWED_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS } from '../../../src/http/cors-headers.ts';

/**
 * The query strings that select a read's response (PROTOCOL.md §5.6–5.8, §10.1): the CDN cache key
 * holds exactly these, so that unrelated parameters cannot split the cache or poison it.
 */
export const CACHE_KEY_QUERY_STRINGS = ['offset', 'live', 'cursor'] as const;
