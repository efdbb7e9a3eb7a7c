/** Plain-text tables for benchmark output: the first `leftAlignedCount` columns left-aligned, the rest right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[], leftAlignedCount = 1): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column < leftAlignedCount ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function formatCount(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

export function formatMs(valueUs: number): string {
  if (!Number.isFinite(valueUs)) return '-';
  const ms = valueUs / 1000;
  return ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0);
}

export function formatPercent(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value)}%` : '-';
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value < 10 ? value.toFixed(2) : value.toFixed(1)}x` : '-';
}

/** Microseconds: one decimal below 100, whole above. */
export function formatUs(value: number): string {
  return Number.isFinite(value) ? (value < 100 ? value.toFixed(1) : value.toFixed(0)) : '-';
}

/** A fraction (0.25) as a percentage with one decimal (`25.0%`). */
export function formatShare(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : '-';
}
