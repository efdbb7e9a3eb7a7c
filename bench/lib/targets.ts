/**
 * The performance targets of the bench suite (issue 4's table) and how a benchmark reports a
 * measured value against one. Every benchmark's `main()` resolves with a {@link BenchOutcome};
 * `npm run bench` (the whole suite, bench/run.ts) prints all of them as one measured/target table
 * and stores them in its JSON file.
 */

/** `at-least`: higher is better (throughput); `at-most`: lower is better (latency, memory, cost). */
export type TargetDirection = 'at-least' | 'at-most';

export interface TargetCheck {
  /** The suite's workload number and name, e.g. `1. small appends, one stream, 64 writers, durable`. */
  workload: string;
  /** What was measured and its unit, e.g. `appends/s`, `p99 ms`, `MB/s`. */
  metric: string;
  /** Cairn's value in `metric`'s unit; NaN when the cell failed or did not run. */
  measured: number;
  direction: TargetDirection;
  /** The threshold in `metric`'s unit. */
  threshold: number;
  /** True when measured meets the threshold; false when it does not or was not measured. */
  met: boolean;
  /** Free text next to the row, e.g. `24.8x ref-file` or `generator saturated?`. */
  note?: string;
}

export interface BenchOutcome {
  /** The benchmark's raw JSON results file. */
  resultsPath: string;
  targets: TargetCheck[];
}

/** Builds a check; `met` follows from the numbers. */
export function checkTarget(
  workload: string,
  metric: string,
  measured: number,
  direction: TargetDirection,
  threshold: number,
  note?: string,
): TargetCheck {
  const met = Number.isFinite(measured) && (direction === 'at-least' ? measured >= threshold : measured <= threshold);
  return note === undefined ? { workload, metric, measured, direction, threshold, met } : { workload, metric, measured, direction, threshold, met, note };
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toLocaleString('en-US');
  if (magnitude >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Rows for formatTable: workload, metric, measured, target, met?, note. */
export function targetRows(checks: readonly TargetCheck[]): string[][] {
  return checks.map((check) => [
    check.workload,
    check.metric,
    formatNumber(check.measured),
    `${check.direction === 'at-least' ? '≥' : '≤'} ${formatNumber(check.threshold)}`,
    check.met ? 'met' : Number.isFinite(check.measured) ? 'MISSED' : 'not measured',
    check.note ?? '',
  ]);
}

export const TARGET_HEADER = ['workload', 'metric', 'measured', 'target', '', 'note'] as const;
