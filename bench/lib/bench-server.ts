/**
 * The servers a throughput benchmark compares, one fresh process per measurement ("cell"): Cairn
 * (`cairn serve --durability wal`, fsync before ack) and the upstream reference server
 * (bench/reference-server.ts) file-backed and in memory. {@link withServer} gives a cell a server
 * in a fresh temporary data directory, pinned to the server core, and always stops it (by PID) and
 * deletes the directory, also when the benchmark is interrupted.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Machine } from './machine.ts';
import { freePort, startServer, type RunningServer } from './server-process.ts';

export type ServerName = 'cairn' | 'ref-file' | 'ref-memory';
export const SERVER_NAMES: readonly ServerName[] = ['cairn', 'ref-file', 'ref-memory'];
export const SERVER_LABELS: Record<ServerName, string> = {
  cairn: 'cairn (wal)',
  'ref-file': 'reference (file)',
  'ref-memory': 'reference (memory)',
};

export const SERVER_CORE = '0';
export const GENERATOR_CORE = '1';
/** Generator CPU at or above this share of one core (%) means the numbers may be the generator's limit. */
export const GENERATOR_SATURATED_PERCENT = 90;
/**
 * CPU used by all other processes during a measurement, in % of one core, above which the row is
 * flagged: on 2 cores a neighbour this busy competes with the pinned server or generator.
 */
export const OTHER_CPU_BUSY_PERCENT = 15;
/** Cairn serves streams only under this prefix; the reference accepts any path, so both get the same URLs. */
export const STREAM_PATH_ROOT = '/v1/stream/';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Parses `--servers a,b`; throws on an unknown name. */
export function parseServers(text: string): ServerName[] {
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) {
    if (!SERVER_NAMES.includes(name as ServerName)) throw new Error(`unknown server "${name}"; choose from ${SERVER_NAMES.join(', ')}`);
  }
  return names as ServerName[];
}

/** `--<flag>`'s value `text` as a whole number in `[min, max]`; throws a message naming the flag otherwise. */
export function wholeNumberFlag(flag: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new Error(max === Number.MAX_SAFE_INTEGER ? `--${flag} must be a whole number >= ${min}` : `--${flag} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** `taskset -c <core>` when pinning works on this machine, else nothing. */
export function pinTo(machine: Machine, core: string): string[] {
  return machine.tasksetAvailable ? ['taskset', '-c', core] : [];
}

/** One line for a benchmark's header saying where server and generator run. */
export function describePinning(machine: Machine, generator: string): string {
  return machine.tasksetAvailable
    ? `server on core ${SERVER_CORE}, ${generator} on core ${GENERATOR_CORE} (taskset)`
    : 'none (taskset unavailable)';
}

export interface ServerSettings {
  /** Where the temporary data directory goes (its filesystem decides the fsync cost). */
  dataRoot: string;
  /**
   * Write a V8 CPU profile of the Cairn process to `<dir>/<name>` (ignored for the reference).
   * Without `name`, node names each profile by pid: forked workers (`--workers`) inherit the flags
   * and write one each.
   */
  cpuProfile?: { dir: string; name?: string };
  /** Extra `cairn serve` flags. */
  cairnFlags?: readonly string[];
  /** Pin the server to the server core (default true; a server with several workers needs every core). */
  pinned?: boolean;
}

function serverCommand(server: ServerName, port: number, dataDir: string, settings: ServerSettings): string[] {
  const node = process.execPath;
  switch (server) {
    case 'cairn': {
      const profile =
        settings.cpuProfile === undefined
          ? []
          : [
              '--cpu-prof',
              `--cpu-prof-dir=${settings.cpuProfile.dir}`,
              ...(settings.cpuProfile.name === undefined ? [] : [`--cpu-prof-name=${settings.cpuProfile.name}`]),
            ];
      return [
        node,
        ...profile,
        'src/cli/main.ts',
        'serve',
        '--port',
        String(port),
        '--data-dir',
        dataDir,
        '--durability',
        'wal',
        '--log-level',
        'warn',
        ...(settings.cairnFlags ?? []),
      ];
    }
    case 'ref-file':
      return [node, 'bench/reference-server.ts', '--port', String(port), '--data-dir', dataDir];
    case 'ref-memory':
      return [node, 'bench/reference-server.ts', '--port', String(port)];
  }
}

const liveDataDirs = new Set<string>();
const liveServerPids = new Set<number>();
let interruptHooksInstalled = false;
/** Removing a directory a just-killed server may still be writing into: attempts and pause between them. */
const EXIT_REMOVE_ATTEMPTS = 5;
const EXIT_REMOVE_PAUSE_MS = 50;

/** Kills the servers of running cells, then removes their data directories (runs inside an 'exit' hook: synchronous only). */
function removeLeftoversOnExit(): void {
  // Kill first: a live server (its sealer) would re-create files while the directory is removed.
  for (const pid of liveServerPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const dir of liveDataDirs) {
    for (let attempt = 0; attempt < EXIT_REMOVE_ATTEMPTS && existsSync(dir); attempt++) {
      if (attempt > 0) Atomics.wait(pause, 0, 0, EXIT_REMOVE_PAUSE_MS);
      try {
        rmSync(dir, { recursive: true, force: true });
      } catch {
        // a dying server created a file meanwhile: try again
      }
    }
  }
}

/**
 * Makes Ctrl-C / SIGTERM exit through `process.exit`, so the exit hooks stop the servers (here
 * and in bench/lib/server-process.ts) and remove the data directories still in use (made by
 * {@link makeDataDir} or passed to {@link trackDataDir}). Call once from a benchmark's `main`;
 * later calls do nothing.
 */
export function installInterruptCleanup(): void {
  if (interruptHooksInstalled) return;
  interruptHooksInstalled = true;
  process.once('exit', removeLeftoversOnExit);
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
}

/** A fresh temporary directory `<dataRoot>/cairn-bench-<name>-XXXXXX`, removed on exit if still there. */
export function makeDataDir(dataRoot: string, name: string): string {
  return trackDataDir(mkdtempSync(join(dataRoot, `cairn-bench-${name}-`)));
}

/** Removes `dir` on exit unless {@link removeDataDir} did first; returns `dir`. */
export function trackDataDir(dir: string): string {
  liveDataDirs.add(dir);
  return dir;
}

/** Removes a directory from {@link makeDataDir}; returns how long that took, in ms (millions of files take a while). */
export function removeDataDir(dir: string): number {
  const startedMs = performance.now();
  rmSync(dir, { recursive: true, force: true });
  liveDataDirs.delete(dir);
  return performance.now() - startedMs;
}

/** A server process to SIGKILL on exit (before its data directory is removed) until {@link untrackServerPid}. */
export function trackServerPid(pid: number): void {
  liveServerPids.add(pid);
}

export function untrackServerPid(pid: number): void {
  liveServerPids.delete(pid);
}

/** What a cell's body gets: the server's base URL (`http://127.0.0.1:<port>`), its process and data directory. */
export interface ServerHandle {
  baseUrl: string;
  running: RunningServer;
  dataDir: string;
}

/** The result of {@link withServer}: the body's value, or the failure text (with the server's output tail). */
export interface ServerOutcome<T> {
  value?: T;
  failure?: string;
  /** How the server process ended (`exit 0`, `signal SIGKILL`, …). */
  serverExit?: string;
}

/**
 * Starts `server` in a fresh data directory under `settings.dataRoot`, pinned to the server core
 * (unless `settings.pinned` is false),
 * waits until it answers (≤ 20 s), runs `use`, then stops it by PID (SIGTERM, SIGKILL after 5 s)
 * and deletes the directory. Never rejects: a failure to start, an error thrown by `use`, or a
 * server that exited during `use` comes back as `failure`.
 */
export async function withServer<T>(
  server: ServerName,
  machine: Machine,
  settings: ServerSettings,
  use: (handle: ServerHandle) => Promise<T>,
): Promise<ServerOutcome<T>> {
  const dataDir = makeDataDir(settings.dataRoot, server);
  const outcome: ServerOutcome<T> = {};
  let running: RunningServer | undefined;
  try {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    running = await startServer({
      command: serverCommand(server, port, dataDir, settings),
      cwd: REPO_ROOT,
      pin: settings.pinned === false ? [] : pinTo(machine, SERVER_CORE),
      readyUrl: `${baseUrl}${STREAM_PATH_ROOT}ready-probe`,
    });
    trackServerPid(running.pid);
    outcome.value = await use({ baseUrl, running, dataDir });
    if (running.exitedEarly()) outcome.failure = `server exited during the run:\n${running.outputTail()}`;
  } catch (error) {
    outcome.failure = (error as Error).message;
    if (running !== undefined) outcome.failure += `\n--- server output (tail) ---\n${running.outputTail()}`;
  } finally {
    if (running !== undefined) {
      outcome.serverExit = await running.stop();
      untrackServerPid(running.pid);
    }
    removeDataDir(dataDir);
  }
  return outcome;
}

/** A file-name-safe timestamp for results files, e.g. `2026-11-21T10-12-06-123Z`. */
export function fileTimestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

/** What {@link cellFlags} looks at; absent fields are not flagged. */
export interface FlaggableCell {
  failure?: string;
  /** Responses with status ≥ 400 (or otherwise not what the workload wanted). */
  non2xxCount?: number;
  socketErrorCount?: number;
  generatorCpuPercent?: number;
  otherCpuPercent?: number;
}

/**
 * The last column of a results table: `ok`, or `! ` and what makes the row doubtful — FAILED,
 * non-2xx responses, socket errors, `generator saturated?` (generator ≥ 90% of a core),
 * `busy machine` (other processes ≥ 15% of a core), then `extra`.
 */
export function cellFlags(cell: FlaggableCell, extra: readonly string[] = []): string {
  const flags: string[] = [];
  if (cell.failure !== undefined) flags.push('FAILED');
  if ((cell.non2xxCount ?? 0) > 0) flags.push(`${cell.non2xxCount} non-2xx`);
  if ((cell.socketErrorCount ?? 0) > 0) flags.push(`${cell.socketErrorCount} socket errors`);
  if ((cell.generatorCpuPercent ?? 0) >= GENERATOR_SATURATED_PERCENT) flags.push('generator saturated?');
  if ((cell.otherCpuPercent ?? 0) >= OTHER_CPU_BUSY_PERCENT) flags.push('busy machine');
  flags.push(...extra);
  return flags.length === 0 ? 'ok' : `! ${flags.join(', ')}`;
}

/** The first lines every throughput benchmark prints: title and date, then the machine. */
export function benchHeader(title: string, machine: Machine): string[] {
  return [
    `${title} — ${machine.date}`,
    `machine: ${machine.cpuCount} cores, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.nodeVersion}`,
  ];
}
