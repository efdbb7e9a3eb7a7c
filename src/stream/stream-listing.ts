/**
 * One page of the streams a node holds, in path order (`GET /v1/streams`, README "Listing
 * streams"). Paging is keyset-based: a page holds the `limit` smallest paths after `afterPath`, so
 * a stream created or deleted between two pages never shifts the others (no skipped or repeated
 * entries for the paths that stay). The scan is O(streams held) per page; the page itself is
 * bounded by the caller (STREAM_LIST_PAGE_SIZE_MAX).
 */
import type { StreamState } from './stream-state.ts';

export interface StreamListQuery {
  /** Only paths starting with this (plain string prefix, not a pattern); '' for all. */
  prefix: string;
  /** Only paths sorting after this one (the previous page's last path); undefined: from the start. */
  afterPath: string | undefined;
  /** Entries per page, ≥ 1. */
  limit: number;
  /** Whether the caller may see this path (its read grants); the page is filled with visible ones only. */
  visible: (path: string) => boolean;
}

export interface StreamListPage {
  /** At most `limit` streams, ascending by path (UTF-16 code unit order, as JavaScript compares). */
  streams: StreamState[];
  /** True when more visible streams follow the last one. */
  more: boolean;
}

/**
 * Selects one page from `candidates`, which must already be the live streams (durable, not
 * expired, not soft-deleted).
 */
export function selectStreamPage(candidates: Iterable<StreamState>, query: StreamListQuery): StreamListPage {
  const { prefix, afterPath, limit, visible } = query;
  // Keeps the limit+1 smallest matches: sorted insertion into a short array beats sorting every
  // match when a prefix matches millions of streams and the page is small.
  const best: StreamState[] = [];
  for (const stream of candidates) {
    const path = stream.path;
    if (!path.startsWith(prefix) || (afterPath !== undefined && path <= afterPath)) continue;
    if (best.length > limit && path >= best[best.length - 1]!.path) continue;
    if (!visible(path)) continue;
    let at = best.length;
    while (at > 0 && best[at - 1]!.path > path) at--;
    best.splice(at, 0, stream);
    if (best.length > limit + 1) best.pop();
  }
  const more = best.length > limit;
  if (more) best.pop();
  return { streams: best, more };
}
