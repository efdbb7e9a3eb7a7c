/**
 * Starting, stopping and crashing a server on a data directory that outlives it, for the
 * benchmarks that time restarts (bench/scale.ts, bench/recovery.ts): Cairn through
 * bench/lib/cairn-with-stats.ts (the same flags and `startServer` as `cairn serve`, plus its
 * tiering counters), or the reference server in file or memory mode. The server is pinned to the
 * server core when taskset works; restarts are timed from spawn until the server answers HTTP.
 * Servers are stopped by PID only, and an interrupted run kills them before removing their data.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pinTo, SERVER_CORE, trackServerPid, untrackServerPid, type ServerName } from './bench-server.ts';
import { fetchCairnStats } from './cairn-stats.ts';
import type { Machine } from './machine.ts';
import { freePort, startServer, type RunningServer } from './server-process.ts';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The stats listener opens just after the server itself; it never takes long. */
const STATS_READY_TIMEOUT_MS = 5_000;
/** How long a graceful stop may take before the server is killed; an exit 0 within it writes a --cpu-prof profile. */
const STOP_GRACE_MS = 60_000;
const STOP_POLL_MS = 20;
export interface LaunchOptions {
  server: ServerName;
  /** Data directory (ignored by ref-memory). */
  dataDir: string;
  machine: Machine;
  /** Extra `cairn serve` flags (Cairn only), e.g. `['--seal-idle-ms', '0']`. */
  cairnFlags?: readonly string[];
  /** Spawn to answering HTTP may take this long before the start counts as failed, in ms. */
  readyTimeoutMs: number;
  /** A path on the server that answers (any status) once it listens, e.g. `/v1/stream/x-ready-probe`. */
  readyPath: string;
  /** When set, Cairn runs under `node --cpu-prof` and writes `<dir>/<name>` when it exits gracefully. */
  cpuProfile?: { dir: string; name: string };
}

/** What Cairn logs once it has loaded its checkpoint and replayed its WAL (log line `recovered`). */
export interface CairnRecoveryLog {
  streams: number;
  replayedRecords: number;
  /** From opening the object store to the end of WAL replay, in ms (inside the process; excludes Node's own start). */
  recoveryMs: number;
  /** Log line `WAL replayed`: time spent reading and decoding WAL files, in ms. */
  walReplayMs?: number;
}

export interface Launched {
  server: ServerName;
  running: RunningServer;
  baseUrl: string;
  /** Cairn's side listener for tiering counters (bench/lib/cairn-stats.ts); undefined for the reference. */
  statsPort: number | undefined;
  /** From spawn until the server answered HTTP, in ms. */
  startMs: number;
  /** Cairn's own recovery report, when its log line was seen. */
  recovery?: CairnRecoveryLog;
}

function command(options: LaunchOptions, port: number, statsPort: number): string[] {
  const node = process.execPath;
  switch (options.server) {
    case 'cairn': {
      const profile =
        options.cpuProfile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfile.dir}`, `--cpu-prof-name=${options.cpuProfile.name}`];
      return [
        node,
        ...profile,
        'bench/lib/cairn-with-stats.ts',
        '--stats-port',
        String(statsPort),
        '--',
        '--port',
        String(port),
        '--data-dir',
        options.dataDir,
        '--durability',
        'wal',
        // info, not warn: Cairn logs its recovery summary at info (no per-request logs at that level).
        '--log-level',
        'info',
        ...(options.cairnFlags ?? []),
      ];
    }
    case 'ref-file':
      return [node, 'bench/reference-server.ts', '--port', String(port), '--data-dir', options.dataDir];
    case 'ref-memory':
      return [node, 'bench/reference-server.ts', '--port', String(port)];
  }
}

/** Picks Cairn's `recovered` and `WAL replayed` log lines (pino JSON) out of its output. */
export function parseCairnRecoveryLog(output: string): CairnRecoveryLog | undefined {
  let recovery: CairnRecoveryLog | undefined;
  let walReplayMs: number | undefined;
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === 'recovered') {
        recovery = { streams: Number(entry.streams), replayedRecords: Number(entry.replayedRecords), recoveryMs: Number(entry.recoveryMs) };
      } else if (entry.msg === 'WAL replayed') {
        walReplayMs = Number(entry.durationMs);
      }
    } catch {
      // a partial line at the start of the kept output tail
    }
  }
  if (recovery !== undefined && walReplayMs !== undefined) recovery.walReplayMs = walReplayMs;
  return recovery;
}

/**
 * Starts a server on `options.dataDir` and waits until it answers HTTP (and, for Cairn, until its
 * stats listener does). Rejects when it exits or is not ready within `readyTimeoutMs` (it is then killed).
 */
export async function launch(options: LaunchOptions): Promise<Launched> {
  const port = await freePort();
  const statsPort = options.server === 'cairn' ? await freePort() : undefined;
  const baseUrl = `http://127.0.0.1:${port}`;
  const startedMs = performance.now();
  const running = await startServer({
    command: command(options, port, statsPort ?? 0),
    cwd: REPO_ROOT,
    pin: pinTo(options.machine, SERVER_CORE),
    readyUrl: `${baseUrl}${options.readyPath}`,
    readyTimeoutMs: options.readyTimeoutMs,
  });
  const startMs = performance.now() - startedMs;
  trackServerPid(running.pid);
  const launched: Launched = { server: options.server, running, baseUrl, statsPort, startMs };
  if (statsPort !== undefined) {
    const deadline = performance.now() + STATS_READY_TIMEOUT_MS;
    for (;;) {
      try {
        await fetchCairnStats(statsPort);
        break;
      } catch (error) {
        if (performance.now() > deadline) {
          await stopTimed(launched);
          throw new Error(`stats endpoint did not answer: ${(error as Error).message}`);
        }
        await sleep(50);
      }
    }
    const recovery = parseCairnRecoveryLog(running.outputTail());
    if (recovery !== undefined) launched.recovery = recovery;
  }
  return launched;
}

/** `kill -9` by PID, then waits until the process is gone (reaped). Resolves with its exit description. */
export async function crash(launched: Launched): Promise<string> {
  try {
    process.kill(launched.running.pid, 'SIGKILL');
  } catch {
    // already gone
  }
  // The child is not reaped before its exit event, so its PID cannot have been reused; stop() then
  // only waits for that event.
  const exit = await launched.running.stop();
  untrackServerPid(launched.running.pid);
  return exit;
}

/**
 * Graceful stop: SIGTERM, then up to `graceMs` for the server to exit by itself (a server with a
 * million streams and seals in flight takes longer than server-process.ts's 5 s), then
 * RunningServer.stop() (SIGTERM again, SIGKILL 5 s later). Resolves with the time until the
 * process was gone, in ms, and how it ended (`exit 0` when the shutdown was clean).
 */
export async function stopTimed(launched: Launched, graceMs = STOP_GRACE_MS): Promise<{ stopMs: number; exit: string }> {
  const startedMs = performance.now();
  const { running } = launched;
  if (!running.exitedEarly()) {
    try {
      process.kill(running.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    // Not reaped before its exit event: the PID is still this server's while exitedEarly() is false.
    while (!running.exitedEarly() && performance.now() - startedMs < graceMs) await sleep(STOP_POLL_MS);
  }
  const exit = await running.stop();
  untrackServerPid(running.pid);
  return { stopMs: performance.now() - startedMs, exit };
}
