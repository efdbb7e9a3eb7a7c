/** A small line chart in SVG: the last points of one series, its latest value and its peak. */

export interface ChartProps {
  title: string;
  /** Points oldest first; undefined = no value in that interval (a gap). */
  values: (number | undefined)[];
  format: (value: number) => string;
  /** Lowest top of the y axis, so a flat near-zero series does not fill the chart. */
  floor?: number;
}

const WIDTH = 240;
const HEIGHT = 60;

export function Chart({ title, values, format, floor = 1 }: ChartProps) {
  const known = values.filter((value): value is number => value !== undefined);
  const top = Math.max(floor, ...known);
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  let path = '';
  values.forEach((value, i) => {
    if (value === undefined) return;
    const x = (i * step).toFixed(1);
    const y = (HEIGHT - (value / top) * (HEIGHT - 4) - 2).toFixed(1);
    path += `${path === '' || values[i - 1] === undefined ? 'M' : 'L'}${x},${y} `;
  });
  const latest = known.at(-1);
  return (
    <figure class="chart">
      <figcaption>
        {title}: <strong data-testid="chart-value">{latest === undefined ? '–' : format(latest)}</strong>
        <span class="peak">peak {known.length === 0 ? '–' : format(Math.max(...known))}</span>
      </figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} width={WIDTH} height={HEIGHT} role="img" aria-label={title}>
        <rect x="0" y="0" width={WIDTH} height={HEIGHT} class="chart-bg" />
        <path d={path} class="chart-line" />
      </svg>
    </figure>
  );
}
