/**
 * What the demo reports from the server's tiering counters (`RunningServer.tiering.stats()`):
 * object-store requests and segment-cache lookups over the whole run, and per read pass the
 * difference between two snapshots.
 */
import type { TieringStats } from '../src/server.ts';

export interface ObjectStoreSummary {
  putCount: number;
  putBytes: number;
  getCount: number;
  getBytes: number;
  /** HEAD, LIST and DELETE requests. */
  otherRequestCount: number;
  /** Failed requests by error code (e.g. `OBJECT_NOT_FOUND` from start-up probes). */
  errorCountByCode: Record<string, number>;
}

export interface CacheSummary {
  hits: number;
  misses: number;
  /** Lookups that joined a fetch of the same segment already in flight. */
  collapsed: number;
  /** Hits over lookups; undefined without lookups. */
  hitRatio: number | undefined;
}

/** What one read pass cost the object store and the cache. */
export interface ReadPassCost {
  getCount: number;
  getBytes: number;
  cache: CacheSummary;
  /** Catch-up reads answered by joining an identical read in flight. */
  collapsedReads: number;
  /** Segments sealed while the pass ran (0: the hot tail it read stayed hot). */
  segmentsWritten: number;
}

export function objectStoreSummary(stats: TieringStats): ObjectStoreSummary {
  const store = stats.objectStore;
  const errorCountByCode: Record<string, number> = {};
  let requestCount = 0;
  for (const operation of Object.values(store)) {
    requestCount += operation.requestCount;
    for (const [code, count] of Object.entries(operation.errorCountByCode)) errorCountByCode[code] = (errorCountByCode[code] ?? 0) + count;
  }
  return {
    putCount: store.put.requestCount,
    putBytes: store.put.bodyBytes,
    getCount: store.get.requestCount,
    getBytes: store.get.bodyBytes,
    otherRequestCount: requestCount - store.put.requestCount - store.get.requestCount,
    errorCountByCode,
  };
}

export function cacheSummary(hits: number, misses: number, collapsed: number): CacheSummary {
  const lookups = hits + misses;
  return { hits, misses, collapsed, hitRatio: lookups === 0 ? undefined : hits / lookups };
}

export function readPassCost(before: TieringStats, after: TieringStats): ReadPassCost {
  return {
    getCount: after.objectStore.get.requestCount - before.objectStore.get.requestCount,
    getBytes: after.objectStore.get.bodyBytes - before.objectStore.get.bodyBytes,
    cache: cacheSummary(
      after.cache.hits - before.cache.hits,
      after.cache.misses - before.cache.misses,
      after.cache.collapsed - before.cache.collapsed,
    ),
    collapsedReads: after.collapsedReads - before.collapsedReads,
    segmentsWritten: after.segmentsWritten - before.segmentsWritten,
  };
}
