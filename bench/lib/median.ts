/**
 * The median of a benchmark's per-cell values, NaN and ±∞ left out (a failed cell's missing
 * measurement); NaN when none is left. An even count gives the mean of the two middle values.
 */
export function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((left, right) => left - right);
  if (finite.length === 0) return Number.NaN;
  const middle = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? (finite[middle] as number) : ((finite[middle - 1] as number) + (finite[middle] as number)) / 2;
}
