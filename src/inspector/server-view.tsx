/** The server page: /metrics scraped every few seconds, drawn as small charts. */
import { useEffect, useState } from 'preact/hooks';
import type { BrowserClock } from './browser-clock.ts';
import { Chart } from './chart.tsx';
import { parsePrometheusText, pointBetween, sumOf, type MetricsPoint, type Scrape } from './metrics.ts';

const SCRAPE_INTERVAL_MS = 2_000;
const POINTS_MAX = 90;

export function ServerView({ clock }: { clock: BrowserClock }) {
  const [points, setPoints] = useState<MetricsPoint[]>([]);
  const [latest, setLatest] = useState<Scrape | undefined>(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    let previous: { scrape: Scrape; atMs: number } | undefined;
    let stopped = false;
    const scrape = async () => {
      try {
        const response = await fetch('/metrics', { cache: 'no-store' });
        if (!response.ok) throw new Error(`/metrics answered ${response.status}`);
        const current = parsePrometheusText(await response.text());
        const atMs = clock.nowMs();
        if (stopped) return;
        if (previous !== undefined) {
          const point = pointBetween(previous.scrape, current, atMs - previous.atMs);
          setPoints((old) => [...old, point].slice(-POINTS_MAX));
        }
        previous = { scrape: current, atMs };
        setLatest(current);
        setError('');
      } catch (failure) {
        if (!stopped) setError((failure as Error).message);
      }
    };
    void scrape();
    const stop = clock.every(SCRAPE_INTERVAL_MS, () => void scrape());
    return () => {
      stopped = true;
      stop();
    };
  }, [clock]);
  const series = <K extends keyof MetricsPoint>(key: K) => points.map((point) => point[key]);
  return (
    <section>
      <h2>Server</h2>
      {error !== '' && <p class="error">{error}</p>}
      <p class="muted">
        From <code>/metrics</code> every {SCRAPE_INTERVAL_MS / 1000} s. Streams held: {latest === undefined ? '–' : sumOf(latest, 'cairn_streams')}; live
        connections: {latest === undefined ? '–' : sumOf(latest, 'cairn_live_connections')}.
      </p>
      <div class="charts" data-testid="charts">
        <Chart title="appends/s" values={series('appendsPerSecond')} format={(v) => v.toFixed(1)} />
        <Chart title="fsync latency (mean)" values={series('fsyncMs')} format={(v) => `${v.toFixed(2)} ms`} />
        <Chart title="seal lag (oldest unsealed byte)" values={series('sealLagMs')} format={formatMs} floor={1000} />
        <Chart title="segment cache hit ratio" values={series('cacheHitRatio')} format={(v) => `${(v * 100).toFixed(0)} %`} />
        <Chart title="object-store errors/s" values={series('objectStoreErrorsPerSecond')} format={(v) => v.toFixed(2)} />
      </div>
    </section>
  );
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
