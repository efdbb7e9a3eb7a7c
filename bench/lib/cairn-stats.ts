/**
 * The counters `bench/lib/cairn-with-stats.ts` reports for a running Cairn: its
 * `RunningServer.tiering.stats()` (object-store requests, segments, cache), read over a side
 * HTTP listener because Cairn has no metrics endpoint yet. Kept apart from the launcher so a
 * benchmark can read them without loading the server's modules.
 */

type ObjectStoreOperation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'deleteMany';

/** The part of `RunningServer.tiering.stats()` the benchmarks read. */
export interface TieringStats {
  segmentsWritten: number;
  sealedBytes: number;
  hotTailBytes: number;
  /** Per operation: requests the store saw (every retry attempt counts), body bytes moved. */
  objectStore: Record<ObjectStoreOperation, { requestCount: number; bodyBytes?: number; errorCount?: number }>;
  /** Segment cache: units served from memory, fetched (one GET each), joined to a GET in flight. */
  cache: { hits: number; misses: number; collapsed: number; bytes: number };
  /** Catch-up reads answered by joining an identical read in flight. */
  collapsedReads: number;
}

/** What `GET /stats` answers. */
export interface CairnStatsResponse {
  tiering: TieringStats;
}

/** Requests per object-store operation, e.g. `{ put: 65, get: 0, … }`. */
export type RequestCounts = Record<ObjectStoreOperation, number>;

const OPERATIONS: readonly ObjectStoreOperation[] = ['put', 'get', 'head', 'list', 'delete', 'deleteMany'];

/** Fetches the counters from a running launcher; rejects when it does not answer. */
export async function fetchCairnStats(statsPort: number): Promise<CairnStatsResponse> {
  const response = await fetch(`http://127.0.0.1:${statsPort}/stats`);
  if (response.status !== 200) throw new Error(`stats endpoint answered ${response.status}`);
  return (await response.json()) as CairnStatsResponse;
}

/** Object-store body bytes received by GETs between two snapshots. */
export function getBytesBetween(before: TieringStats, after: TieringStats): number {
  return (after.objectStore.get.bodyBytes ?? 0) - (before.objectStore.get.bodyBytes ?? 0);
}

/** Requests made since the server started, per operation. */
export function requestCountsOf(stats: TieringStats): RequestCounts {
  return Object.fromEntries(OPERATIONS.map((op) => [op, stats.objectStore[op]?.requestCount ?? 0])) as RequestCounts;
}

/** Requests made between two snapshots, per operation. */
export function requestCountsBetween(before: TieringStats, after: TieringStats): RequestCounts {
  const start = requestCountsOf(before);
  const end = requestCountsOf(after);
  return Object.fromEntries(OPERATIONS.map((op) => [op, end[op] - start[op]])) as RequestCounts;
}
