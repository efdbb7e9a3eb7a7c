/**
 * Runs `wrk` (a C HTTP load generator; one thread, epoll) with bench/lib/append.lua and returns
 * its counts, latency percentiles and its own CPU use, so a reader can tell when it saturates.
 */
import { spawnSync } from 'node:child_process';
import { runForResultLine } from './child-result.ts';
import { fileURLToPath } from 'node:url';

const APPEND_SCRIPT_PATH = fileURLToPath(new URL('./append.lua', import.meta.url));

/** wrk's default 2 s timeout would count fsync-bound queues as errors; appends are not that slow. */
const WRK_TIMEOUT_S = 10;

export interface WrkResult {
  durationUs: number;
  /** Completed responses, any status. */
  requests: number;
  bytes: number;
  /** `status` counts responses with status ≥ 400 (wrk's "Non-2xx or 3xx"); others are socket errors. */
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  /** wrk's process CPU time (user + system) over its whole run, in seconds. */
  cpuSeconds: number;
}

export interface WrkRun {
  baseUrl: string;
  connectionCount: number;
  durationS: number;
  bodyBytes: number;
  streamCount: number;
  /** Stream i is at `${pathPrefix}${i}`. */
  pathPrefix: string;
  /** Command prefix for CPU pinning, e.g. `['taskset', '-c', '1']`, or `[]`. */
  pin: readonly string[];
}

/** The `wrk` version line, or undefined when wrk is not on PATH. */
export function wrkVersion(): string | undefined {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined) return undefined;
  // e.g. "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer" → "wrk debian/4.1.0-3+b2 [epoll]"
  return `${probe.stdout}${probe.stderr}`.split('\n')[0]?.replace(/\s*Copyright.*$/, '').trim();
}

export const WRK_INSTALL_HINT = 'wrk is not installed. On Debian/Ubuntu: apt-get install -y wrk (as root, after apt-get update).';

/** Runs wrk for `durationS` whole seconds; rejects if wrk fails or prints no result line. */
export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = [
    ...run.pin,
    'wrk',
    '-t1',
    `-c${run.connectionCount}`,
    `-d${run.durationS}s`,
    `--timeout`,
    `${WRK_TIMEOUT_S}s`,
    '-s',
    APPEND_SCRIPT_PATH,
    run.baseUrl,
    '--',
    String(run.bodyBytes),
    String(run.streamCount),
    run.pathPrefix,
  ];
  const { code, result, output } = await runForResultLine(args, 'WRK_RESULT_JSON ');
  if (code !== 0 || result === undefined) throw new Error(`wrk exited with ${code}:\n${output}`);
  return result as WrkResult;
}
