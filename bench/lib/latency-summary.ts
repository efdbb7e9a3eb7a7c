/**
 * Percentiles of a set of latency samples, the way the live benchmarks report them.
 */

export interface LatencySummary {
  /** Number of samples. */
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/**
 * Nearest-rank percentiles of `samplesMs` (milliseconds; NaN entries are ignored). An empty set
 * gives count 0 and NaN percentiles.
 */
export function summariseLatencies(samplesMs: Iterable<number>): LatencySummary {
  const sorted = Float64Array.from([...samplesMs].filter((value) => !Number.isNaN(value))).sort();
  const rank = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(quantile * sorted.length) - 1))] ?? Number.NaN;
  return { count: sorted.length, p50Ms: rank(0.5), p99Ms: rank(0.99), maxMs: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN) };
}

