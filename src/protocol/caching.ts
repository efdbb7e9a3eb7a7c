/**
 * Cache validators and Cache-Control values (PROTOCOL.md §5.5, §10.1, §12.7).
 */

/** Catch-up and long-poll 200s of shared streams (§10.1). */
export const CACHE_CONTROL_SHARED = 'public, max-age=60, stale-while-revalidate=300';
/**
 * Catch-up responses wholly in sealed data that end on a deterministic boundary: their bytes and
 * headers can never change (DESIGN.md "Caching").
 */
export const CACHE_CONTROL_IMMUTABLE = 'public, max-age=31536000, immutable';
/** CACHE_CONTROL_SHARED for streams that may hold confidential data: browsers only (§10.1). */
export const CACHE_CONTROL_PRIVATE = 'private, max-age=60, stale-while-revalidate=300';
/** CACHE_CONTROL_IMMUTABLE for confidential data: the browser may keep it, shared caches not. */
export const CACHE_CONTROL_PRIVATE_IMMUTABLE = 'private, max-age=31536000, immutable';

/**
 * Cache-Control of a 200 read: with auth on, shared caches never see a response unless the
 * token's grant marks the path public (PROTOCOL.md §10.1, §12.2; README "Authentication").
 */
export function readCacheControl(immutable: boolean, sharedCachesAllowed: boolean): string {
  if (sharedCachesAllowed) return immutable ? CACHE_CONTROL_IMMUTABLE : CACHE_CONTROL_SHARED;
  return immutable ? CACHE_CONTROL_PRIVATE_IMMUTABLE : CACHE_CONTROL_PRIVATE;
}

/** HEAD, `offset=now`, 204s and anything describing the moving tail (§5.5, §8). */
export const CACHE_CONTROL_NO_STORE = 'no-store';

/**
 * ETag of a read response: stream incarnation, start and end positions, and `:c` when the
 * response carries the closure signal, so closing a stream changes the validator (§10.1).
 */
export function readEtag(incarnation: number, start: number, end: number, closed: boolean): string {
  return `"${incarnation}:${start}:${end}${closed ? ':c' : ''}"`;
}

/** True when an `If-None-Match` header value matches `etag` (list or `*`, weak or strong). */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((candidate) => {
    const trimmed = candidate.trim();
    return trimmed === '*' || trimmed === etag || trimmed === `W/${etag}`;
  });
}
