/**
 * One server under test as a child process: spawned (optionally pinned with taskset), polled until
 * it answers HTTP, sampled for CPU through /proc/<pid>/stat, and stopped by its own PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuSeconds } from './cpu.ts';

const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 50;
/** Graceful stop first (Cairn closes its WAL, the reference closes LMDB); SIGKILL after this. */
const STOP_GRACE_MS = 5_000;
/** Server output kept for diagnostics when something goes wrong; older output is dropped. */
const OUTPUT_TAIL_BYTES = 8_192;

export interface ServerLaunch {
  /** argv, e.g. `[process.execPath, 'src/cli/main.ts', 'serve', ...]`. */
  command: readonly string[];
  cwd: string;
  /** Command prefix for CPU pinning, e.g. `['taskset', '-c', '0']`, or `[]`. */
  pin: readonly string[];
  /** A URL that answers (any status) once the server is listening. */
  readyUrl: string;
  /** Extra environment variables for the server (e.g. S3 credentials), on top of this process's. */
  env?: Readonly<Record<string, string>>;
  /** How long the server may take to answer `readyUrl` before it is killed; default 20 s (restarts with much data need more). */
  readyTimeoutMs?: number;
}

export interface RunningServer {
  readonly pid: number;
  /** Total user + system CPU of the server process so far, in seconds. */
  cpuSeconds(): number;
  /** Whether it exited before `stop()` was called. */
  exitedEarly(): boolean;
  outputTail(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code or signal. */
  stop(): Promise<string>;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export async function startServer(launch: ServerLaunch): Promise<RunningServer> {
  const [command, ...args] = [...launch.pin, ...launch.command] as [string, ...string[]];
  const child: ChildProcess = spawn(command, args, {
    cwd: launch.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: launch.env === undefined ? process.env : { ...process.env, ...launch.env },
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exitDescription: string | undefined;
  let stopping = false;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exitDescription = signal === null ? `exit ${code}` : `signal ${signal}`;
      resolve(exitDescription);
    });
  });
  child.once('error', (error) => {
    exitDescription = `spawn error: ${error.message}`;
  });

  // If the benchmark dies (Ctrl-C, a closed pipe, a crash), do not leave the server running.
  const killOnExit = () => {
    if (exitDescription === undefined) child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);
  void exited.then(() => process.off('exit', killOnExit));

  const readyTimeoutMs = launch.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exitDescription !== undefined) throw new Error(`server exited while starting (${exitDescription}):\n${tail}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready within ${readyTimeoutMs} ms:\n${tail}`);
    }
    try {
      const response = await fetch(launch.readyUrl, { method: 'HEAD' });
      await response.arrayBuffer();
      break;
    } catch {
      await sleep(READY_POLL_MS);
    }
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('server has no pid');

  return {
    pid,
    cpuSeconds: () => processCpuSeconds(pid),
    exitedEarly: () => exitDescription !== undefined && !stopping,
    outputTail: () => tail,
    async stop() {
      stopping = true;
      if (exitDescription !== undefined) return exitDescription;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      const description = await exited;
      clearTimeout(timer);
      return description;
    },
  };
}
