/**
 * A `cairn serve` child process for fault tests: started on a fixed port and data directory,
 * killed with SIGKILL through its own ChildProcess handle, and started again on the same port and
 * directory. Readiness is detected by polling HEAD until the server answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

const MAIN = path.resolve('src/cli/main.ts');
const STDERR_TAIL_BYTES = 16 * 1024;
/** Set, every child's whole output is also appended to `<dir>/<data-dir name>.log` (debugging a failed run; `CAIRN_TEST_LOG_LEVEL` sets the children's log level, default warn). */
const LOG_DIR = process.env.CAIRN_TEST_LOG_DIR;

/** A TCP port that was free a moment ago (listen on 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** One HEAD to a path that does not exist (with `authorization`, if any); resolves with the status, rejects if nobody answers. */
function probe(port: number, authorization: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port, method: 'HEAD', path: '/v1/stream/__crash_probe__', agent: false, headers: authorization === undefined ? {} : { authorization } },
      (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      },
    );
    // A probe unanswered in 2 s (a busy machine, a node still joining) is tried again like a refusal.
    request.setTimeout(2_000, () => request.destroy(Object.assign(new Error('probe timed out'), { code: 'ETIMEDOUT' })));
    request.on('error', reject);
    request.end();
  });
}

export interface ChildServerOptions {
  port: number;
  dataDir: string;
  /** Extra `cairn serve` arguments. */
  args?: string[];
  /** Called with every whole line the child writes (its pino log lines are JSON). */
  onLine?: (line: string) => void;
  /** With auth on: the `Authorization` of the readiness probe (a token that may read every path). */
  probeAuthorization?: string;
}

export class ChildServer {
  readonly port: number;
  readonly dataDir: string;
  /** Extra `cairn serve` arguments for the next start (may change between starts). */
  args: string[];
  readonly #onLine: ((line: string) => void) | undefined;
  readonly #probeAuthorization: string | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderr = '';
  starts = 0;
  /** How the last started child exited (undefined while it runs or before the first start). */
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(options: ChildServerOptions) {
    this.port = options.port;
    this.dataDir = options.dataDir;
    this.args = options.args ?? [];
    this.#onLine = options.onLine;
    this.#probeAuthorization = options.probeAuthorization;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** The running child's process id (for /proc sampling), or undefined when it is down. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The last lines the child wrote to stderr (its warn/error logs), for failure messages. */
  get stderrTail(): string {
    return this.#stderr;
  }

  /** Spawns the server and resolves once it answers HTTP; rejects if it exits or takes too long. */
  async start(timeoutMs = 60_000): Promise<void> {
    if (this.#child !== undefined) throw new Error('child server already running');
    const child = spawn(
      process.execPath,
      [MAIN, 'serve', '--port', String(this.port), '--data-dir', this.dataDir, '--durability', 'wal', '--log-level', process.env.CAIRN_TEST_LOG_LEVEL ?? 'warn', ...this.args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.#child = child;
    this.starts++;
    this.lastExit = undefined;
    let exitInfo: string | undefined;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = `exit code ${code}, signal ${signal}`;
        this.lastExit = { code, signal };
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    const keeper = () => {
      let partial = '';
      return (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL_BYTES);
        if (LOG_DIR !== undefined) appendFileSync(path.join(LOG_DIR, `${path.basename(this.dataDir)}.log`), text);
        if (this.#onLine === undefined) return;
        const lines = (partial + text).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.#onLine(line);
      };
    };
    child.stdout?.on('data', keeper()); // log lines go to stdout (pino); keep them too
    child.stderr?.on('data', keeper());

    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`cairn serve exited during startup (${exitInfo}):\n${this.#stderr}`);
      try {
        const status = await probe(this.port, this.#probeAuthorization);
        if (status === 404) return;
        // `--workers`: a worker answers 503 for the other workers' slots until the slot map is out.
        if (status === 503) throw Object.assign(new Error('not ready'), { code: 'ECONNREFUSED' });
        throw new Error(`unexpected status ${status} from the readiness probe`);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET' && code !== 'ETIMEDOUT') throw error;
      }
      if (performance.now() > deadline) {
        this.kill();
        throw new Error(`cairn serve did not answer within ${timeoutMs} ms:\n${this.#stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** SIGKILL, synchronously sent to this child only. */
  kill(): void {
    this.#child?.kill('SIGKILL');
  }

  /** Sends `signal` to this child only (SIGTERM: graceful shutdown). */
  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  /** Resolves when the last started child has exited. */
  waitExit(): Promise<void> {
    return this.#exited;
  }

  /** Kills the child (if any) and waits for it to be gone. */
  async stop(): Promise<void> {
    this.kill();
    await this.#exited;
  }
}
