/**
 * The server page's numbers, from /metrics (Prometheus text format, parsed here): each scrape is
 * turned into one point per chart by differencing counters against the previous scrape.
 */

/** Samples of one scrape: `name{labels}` → value (labels kept as written). */
export type Scrape = Map<string, number>;

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([^ ]+)/;

export function parsePrometheusText(text: string): Scrape {
  const samples: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (match === null) continue;
    samples.set(match[1]! + (match[2] ?? ''), Number(match[3]));
  }
  return samples;
}

/** Sum of every sample of `name` whose labels contain all of `labels` (`key="value"` strings). */
export function sumOf(scrape: Scrape, name: string, ...labels: string[]): number {
  let total = 0;
  for (const [key, value] of scrape) {
    const brace = key.indexOf('{');
    const sampleName = brace === -1 ? key : key.slice(0, brace);
    if (sampleName !== name || !labels.every((label) => key.includes(label))) continue;
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

/** One point of every chart, between two scrapes `elapsedMs` apart. */
export interface MetricsPoint {
  appendsPerSecond: number;
  /** Mean fsync duration over the interval, ms (undefined: no fsync in it). */
  fsyncMs: number | undefined;
  /** Unsealed bytes held in memory: how far sealing is behind the tail. */
  sealLagMs: number;
  /** Segment cache hits / (hits + misses) over the interval (undefined: no segment reads). */
  cacheHitRatio: number | undefined;
  objectStoreErrorsPerSecond: number;
}

export function pointBetween(previous: Scrape, current: Scrape, elapsedMs: number): MetricsPoint {
  const seconds = Math.max(elapsedMs / 1000, 0.001);
  const delta = (name: string, ...labels: string[]) => Math.max(0, sumOf(current, name, ...labels) - sumOf(previous, name, ...labels));
  const fsyncCount = delta('cairn_wal_fsync_duration_seconds_count');
  const hits = delta('cairn_segment_cache_hits_total');
  const misses = delta('cairn_segment_cache_misses_total');
  return {
    appendsPerSecond: delta('cairn_http_request_duration_seconds_count', 'operation="append"') / seconds,
    fsyncMs: fsyncCount === 0 ? undefined : (delta('cairn_wal_fsync_duration_seconds_sum') / fsyncCount) * 1000,
    sealLagMs: sumOf(current, 'cairn_seal_lag_seconds') * 1000,
    cacheHitRatio: hits + misses === 0 ? undefined : hits / (hits + misses),
    objectStoreErrorsPerSecond: delta('cairn_object_store_errors_total') / seconds,
  };
}
