/**
 * Runs `wrk` (a C HTTP load generator; one thread, epoll) with one of the Lua scripts next to this
 * file and returns its counts, latency percentiles and its own CPU use, so a reader can tell when
 * it saturates.
 *
 * Scripts: bench/lib/append.lua (POSTs of a fixed body over N streams, {@link appendScript}) and
 * bench/lib/create.lua (a PUT to a new stream path per request, {@link createScript}) and
 * bench/lib/catch-up.lua (a GET from the start over N streams, {@link catchUpScript}). Each prints
 * one `WRK_RESULT_JSON {...}` line from its `done()` hook.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runForResultLine } from './child-result.ts';

/** wrk's default 2 s timeout would count fsync-bound queues as errors; appends are not that slow. */
const WRK_TIMEOUT_S = 10;
/** wrk stops itself after its duration; kill it if it is still running this long after that. */
const WRK_OVERRUN_KILL_MS = 30_000;

/** A wrk Lua script and the arguments after `--` on wrk's command line. */
export interface WrkScript {
  path: string;
  args: readonly string[];
}

/**
 * bench/lib/append.lua: POSTs of `bodyBytes` (application/octet-stream), request k going to stream
 * `${pathPrefix}${k mod streamCount}` (each connection takes the next request in turn); with
 * `streamIndices`, request k goes to `${pathPrefix}${streamIndices[k mod length]}` instead.
 */
export function appendScript(bodyBytes: number, streamCount: number, pathPrefix: string, streamIndices?: readonly number[]): WrkScript {
  const args = [String(bodyBytes), String(streamCount), pathPrefix];
  if (streamIndices !== undefined) args.push(streamIndices.join(','));
  return { path: fileURLToPath(new URL('./append.lua', import.meta.url)), args };
}

/**
 * bench/lib/create.lua: a `PUT` without body (application/octet-stream) to a new path per request,
 * `${pathPrefix}${thread}-${counter}`; use a different prefix for every wrk run against one server.
 * The result carries `statusCounts`.
 */
export function createScript(pathPrefix: string): WrkScript {
  return { path: fileURLToPath(new URL('./create.lua', import.meta.url)), args: [pathPrefix] };
}

/**
 * bench/lib/catch-up.lua: `GET ${pathPrefix}${k mod streamCount}?offset=-1`, a whole catch-up per
 * request when each stream fits one response (bench/cluster.ts).
 */
export function catchUpScript(streamCount: number, pathPrefix: string): WrkScript {
  return { path: fileURLToPath(new URL('./catch-up.lua', import.meta.url)), args: [String(streamCount), pathPrefix] };
}

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
  /** Responses per HTTP status, e.g. `{ "201": 51234 }`; only from scripts that count them (create.lua). */
  statusCounts?: Record<string, number>;
}

/** Several concurrent wrk runs as one: counts and CPU summed, the longest duration, each latency percentile the worst run's. */
export function combineWrkResults(results: readonly WrkResult[]): WrkResult {
  const sum = (pick: (result: WrkResult) => number) => results.reduce((total, result) => total + pick(result), 0);
  const max = (pick: (result: WrkResult) => number) => Math.max(...results.map(pick));
  return {
    durationUs: max((result) => result.durationUs),
    requests: sum((result) => result.requests),
    bytes: sum((result) => result.bytes),
    errors: {
      connect: sum((result) => result.errors.connect),
      read: sum((result) => result.errors.read),
      write: sum((result) => result.errors.write),
      status: sum((result) => result.errors.status),
      timeout: sum((result) => result.errors.timeout),
    },
    latencyUs: {
      min: Math.min(...results.map((result) => result.latencyUs.min)),
      mean: sum((result) => result.latencyUs.mean * result.requests) / Math.max(1, sum((result) => result.requests)),
      p50: max((result) => result.latencyUs.p50),
      p90: max((result) => result.latencyUs.p90),
      p99: max((result) => result.latencyUs.p99),
      p999: max((result) => result.latencyUs.p999),
      max: max((result) => result.latencyUs.max),
    },
    cpuSeconds: sum((result) => result.cpuSeconds),
  };
}

export interface WrkRun {
  baseUrl: string;
  connectionCount: number;
  durationS: number;
  script: WrkScript;
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

/**
 * Runs wrk for `durationS` whole seconds with one thread and `connectionCount` connections;
 * rejects if wrk fails, prints no result line, or overruns its duration by 30 s (then it is killed).
 */
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
    run.script.path,
    run.baseUrl,
    '--',
    ...run.script.args,
  ];
  const { code, result, output } = await runForResultLine(args, 'WRK_RESULT_JSON ', run.durationS * 1000 + WRK_OVERRUN_KILL_MS);
  if (code !== 0 || result === undefined) throw new Error(`wrk exited with ${code}:\n${output}`);
  return result as WrkResult;
}
