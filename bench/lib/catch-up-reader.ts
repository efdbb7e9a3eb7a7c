/**
 * One catch-up read of a whole stream, the way a Durable Streams client replays history: GET
 * `?offset=-1`, then follow `Stream-Next-Offset` until a response says `Stream-Up-To-Date: true`
 * (PROTOCOL.md §5.6). Runs as its own process so it can be pinned to a core and its CPU measured
 * alone, like wrk in the append benchmark:
 *
 *   node bench/lib/catch-up-reader.ts --url http://127.0.0.1:4437/v1/stream/x --expected-bytes N --stamp-interval-bytes B
 *
 * It prints one line `READ_RESULT_JSON {…}` (a `CatchUpResult`). Bodies are counted and checked,
 * never kept: the byte count must equal `--expected-bytes`, and every `--stamp-interval-bytes`
 * the 8-byte little-endian append index written by the ingester (bench/lib/ingest.ts) must be
 * there, so a server returning the wrong bytes, or the right bytes in the wrong order, fails.
 * `Accept-Encoding: identity`: the reference server would otherwise gzip 256 MiB in one go.
 * The HTTP client is bench/lib/raw-http-client.ts (about a quarter of `node:http`'s CPU per byte);
 * `--client node` uses `node:http` instead, to cross-check that the client changes nothing but cost.
 *
 * `runCatchUpReader()` spawns it and parses the result.
 */
import { runForResultLine } from './child-result.ts';
import { Agent, request, type IncomingMessage } from 'node:http';
import { RawHttpClient } from './raw-http-client.ts';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SCRIPT_PATH = fileURLToPath(import.meta.url);
const RESULT_PREFIX = 'READ_RESULT_JSON ';
/** A catch-up of a few hundred MiB takes seconds; past this the read is reported as failed. */
const READ_TIMEOUT_MS = 120_000;
/** Guards against a server that never says up-to-date: far more requests than any sane chunking needs. */
const REQUESTS_MAX = 100_000;

export interface CatchUpResult {
  bytes: number;
  requests: number;
  /** From sending the first request to receiving the first body byte, in ms (includes TCP connect). */
  firstByteMs: number;
  /** From sending the first request to the end of the up-to-date response, in ms. */
  elapsedMs: number;
  /** bytes / elapsed, in MB/s (10^6 bytes). */
  megabytesPerS: number;
  /** The reader's own user + system CPU over the read, in seconds. */
  cpuS: number;
  /** Largest response body, in bytes. */
  largestResponseBytes: number;
  /** Set when the read failed (wrong status, wrong bytes, timeout, …). */
  failure?: string;
}

export type ReaderClient = 'raw' | 'node';
export const READER_CLIENTS: readonly ReaderClient[] = ['raw', 'node'];

interface ReaderArgs {
  url: string;
  expectedBytes: number;
  stampIntervalBytes: number;
  client: ReaderClient;
}

/** One GET, body bytes streamed to `onBody`; what a catch-up step needs back. */
interface Exchange {
  get(url: URL, onBody: (chunk: Uint8Array) => void): Promise<{ status: number; header: (name: string) => string | undefined }>;
  close(): void;
}

function rawExchange(base: URL): Exchange {
  const client = new RawHttpClient(base.hostname, Number(base.port || 80));
  return {
    async get(url, onBody) {
      const response = await client.get(`${url.pathname}${url.search}`, onBody);
      return { status: response.status, header: (name) => response.headers.get(name) };
    },
    close: () => client.close(),
  };
}

function nodeExchange(): Exchange {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return {
    async get(url, onBody) {
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const outgoing = request(url, { agent, method: 'GET', headers: { 'accept-encoding': 'identity' } }, resolve);
        outgoing.once('error', reject);
        outgoing.end();
      });
      await new Promise<void>((resolve, reject) => {
        response.on('data', onBody);
        response.once('end', resolve);
        response.once('error', reject);
        response.once('aborted', () => reject(new Error('response aborted')));
      });
      return {
        status: response.statusCode ?? 0,
        header: (name) => {
          const value = response.headers[name];
          return typeof value === 'string' ? value : undefined;
        },
      };
    },
    close: () => agent.destroy(),
  };
}

/** Checks the 8-byte stamps at multiples of `intervalBytes`, across chunk boundaries. */
class StampChecker {
  readonly #intervalBytes: number;
  #position = 0;
  failure: string | undefined;

  constructor(intervalBytes: number) {
    this.#intervalBytes = intervalBytes;
  }

  feed(chunk: Uint8Array): void {
    const start = this.#position;
    const end = start + chunk.length;
    this.#position = end;
    if (this.failure !== undefined) return;
    // Stamps that overlap [start, end): index i covers [i*interval, i*interval + 8).
    let index = Math.max(0, Math.floor((start - 7) / this.#intervalBytes));
    for (; index * this.#intervalBytes < end; index++) {
      const stampStart = index * this.#intervalBytes;
      for (let k = 0; k < 8; k++) {
        const at = stampStart + k;
        if (at < start || at >= end) continue;
        const expected = k < 6 ? Math.floor(index / 2 ** (8 * k)) % 256 : 0;
        if (chunk[at - start] !== expected) {
          this.failure = `wrong byte at position ${at}: stamp of append ${index} expected ${expected}, got ${chunk[at - start]}`;
          return;
        }
      }
    }
  }
}

async function readAll(args: ReaderArgs): Promise<CatchUpResult> {
  const exchange = args.client === 'raw' ? rawExchange(new URL(args.url)) : nodeExchange();
  const checker = new StampChecker(args.stampIntervalBytes);
  const cpuStart = process.cpuUsage();
  const startedMs = performance.now();
  const deadlineMs = startedMs + READ_TIMEOUT_MS;
  const result: CatchUpResult = {
    bytes: 0,
    requests: 0,
    firstByteMs: Number.NaN,
    elapsedMs: Number.NaN,
    megabytesPerS: Number.NaN,
    cpuS: Number.NaN,
    largestResponseBytes: 0,
  };
  try {
    let offset = '-1';
    for (;;) {
      if (result.requests >= REQUESTS_MAX) throw new Error(`not up to date after ${REQUESTS_MAX} requests`);
      if (performance.now() > deadlineMs) throw new Error(`read not finished within ${READ_TIMEOUT_MS} ms`);
      const url = new URL(args.url);
      url.searchParams.set('offset', offset);
      let responseBytes = 0;
      const response = await exchange.get(url, (chunk) => {
        if (Number.isNaN(result.firstByteMs)) result.firstByteMs = performance.now() - startedMs;
        responseBytes += chunk.length;
        checker.feed(chunk);
      });
      result.requests++;
      if (response.status !== 200) throw new Error(`GET offset=${offset} answered ${response.status}`);
      result.bytes += responseBytes;
      result.largestResponseBytes = Math.max(result.largestResponseBytes, responseBytes);
      const next = response.header('stream-next-offset');
      if (next === undefined) throw new Error(`GET offset=${offset} has no Stream-Next-Offset`);
      if (response.header('stream-up-to-date') === 'true') break;
      if (next === offset) throw new Error(`GET offset=${offset} made no progress and is not up to date`);
      offset = next;
    }
    result.elapsedMs = performance.now() - startedMs;
    if (checker.failure !== undefined) throw new Error(checker.failure);
    if (result.bytes !== args.expectedBytes) throw new Error(`read ${result.bytes} bytes, expected ${args.expectedBytes}`);
  } catch (error) {
    result.failure = (error as Error).message;
  } finally {
    exchange.close();
  }
  const cpu = process.cpuUsage(cpuStart);
  result.cpuS = (cpu.user + cpu.system) / 1e6;
  if (Number.isNaN(result.elapsedMs)) result.elapsedMs = performance.now() - startedMs;
  result.megabytesPerS = result.bytes / 1e6 / (result.elapsedMs / 1000);
  return result;
}

export interface CatchUpRun extends ReaderArgs {
  /** Command prefix for CPU pinning, e.g. `['taskset', '-c', '1']`, or `[]`. */
  pin: readonly string[];
}

/** Runs one catch-up read in a child process; resolves with its result (failures inside the result). */
export async function runCatchUpReader(run: CatchUpRun): Promise<CatchUpResult & { pid: number }> {
  const args = [
    ...run.pin,
    process.execPath,
    SCRIPT_PATH,
    '--url',
    run.url,
    '--expected-bytes',
    String(run.expectedBytes),
    '--stamp-interval-bytes',
    String(run.stampIntervalBytes),
    '--client',
    run.client,
  ];
  // Bounded even if the child hangs outside its own deadline (e.g. a stuck socket on exit).
  const { code, pid, result, output } = await runForResultLine(args, RESULT_PREFIX, READ_TIMEOUT_MS + 30_000);
  if (result === undefined) throw new Error(`catch-up reader exited with ${code} and no result:\n${output.slice(-2000)}`);
  return { ...(result as CatchUpResult), pid };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      'expected-bytes': { type: 'string' },
      'stamp-interval-bytes': { type: 'string' },
      client: { type: 'string', default: 'raw' },
    },
  });
  const client = values.client as ReaderClient;
  const expectedBytes = Number(values['expected-bytes']);
  const stampIntervalBytes = Number(values['stamp-interval-bytes']);
  const valid = Number.isSafeInteger(expectedBytes) && Number.isSafeInteger(stampIntervalBytes) && stampIntervalBytes >= 8;
  if (values.url === undefined || !valid || !READER_CLIENTS.includes(client)) {
    process.stderr.write('usage: catch-up-reader.ts --url URL --expected-bytes N --stamp-interval-bytes B (B >= 8) [--client raw|node]\n');
    process.exit(2);
  }
  const result = await readAll({ url: values.url, expectedBytes, stampIntervalBytes, client });
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}
