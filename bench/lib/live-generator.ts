/**
 * The load generator of the `live` benchmark, as its own process so it can be pinned to a core
 * and its CPU measured alone: one writer appending a message every `--interval-ms`, and
 * long-poll and SSE readers tailing the same stream, all in this process on one clock.
 *
 *   node bench/lib/live-generator.ts --base-url http://127.0.0.1:P --stream-path /v1/stream/x --server-pid N
 *        [--long-poll-readers 4] [--sse-readers 4] [--interval-ms 10] [--warmup-ms 1000]
 *        [--duration-ms 10000] [--message-bytes 100] [--reader-base-urls URL,URL,…]
 *
 * Creates the stream (`text/plain`), starts every reader at its tail, waits until all are
 * waiting and the server is idle, then appends messages 0, 1, … on a fixed schedule (message i is
 * due at start + i × interval; a late append goes out as soon as the previous one is answered).
 * Delivery latency = the reader's socket read that completed message i − the moment the writer
 * wrote append i. The first `--warmup-ms` worth of messages are delivered and checked but not
 * counted. Prints one line `LIVE_RESULT_JSON {…}` (a `LiveGeneratorResult`).
 * `--reader-base-urls` (cluster benchmark): readers connect to these servers in turn instead of
 * `--base-url`, which the writer keeps.
 *
 * `runLiveGenerator()` spawns it and parses the result.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { runForResultLine } from './child-result.ts';
import { summariseLatencies, type LatencySummary } from './latency-summary.ts';
import { createLiveStream, createReader, LiveWriter, MESSAGE_BYTES_MIN, waitUntilIdle, type LiveReader, type ReaderKind } from './live-readers.ts';

const SCRIPT_PATH = fileURLToPath(import.meta.url);
const RESULT_PREFIX = 'LIVE_RESULT_JSON ';
/** Readers connect in well under a second; past this the run fails. */
const READY_TIMEOUT_MS = 10_000;
/** Server idle before the first append: below 5% of a core for 2 × 200 ms (at most 5 s). */
const IDLE_PERCENT = 5;
const IDLE_WINDOW_MS = 200;
const IDLE_WINDOWS = 2;
const IDLE_TIMEOUT_MS = 5_000;
/** After the last append, readers get this long to receive everything. */
const DRAIN_TIMEOUT_MS = 5_000;
const DRAIN_POLL_MS = 10;
/** Margin on top of the schedule for the parent's kill timer. */
const CHILD_MARGIN_MS = 60_000;

export interface LiveGeneratorArgs {
  baseUrl: string;
  streamPath: string;
  serverPid: number;
  longPollReaderCount: number;
  sseReaderCount: number;
  intervalMs: number;
  warmupMs: number;
  durationMs: number;
  messageBytes: number;
  /** Where the readers connect, in turn (reader i to `readerBaseUrls[i mod length]`); default: `baseUrl`. */
  readerBaseUrls?: readonly string[];
}

export interface LiveReaderReport {
  kind: ReaderKind;
  /** Messages received in order (of `appendCount`). */
  receivedCount: number;
  requestCount: number;
  reconnectCount: number;
  failure?: string;
}

export interface LiveKindResult {
  readerCount: number;
  /** Delivery latency over the measured messages of all readers of this kind, in ms. */
  latency: LatencySummary;
  /** Measured messages some reader of this kind never received (they count as infinitely late). */
  undeliveredCount: number;
  /** Every measured sample (reader-major), ms rounded to µs; not delivered = Infinity (null in JSON). */
  samplesMs: number[];
}

export interface LiveGeneratorResult {
  /** Messages appended in all (warm-up included). */
  appendCount: number;
  warmupAppendCount: number;
  /** Append round trip (write to end of response) over the measured appends, in ms. */
  appendLatency: LatencySummary;
  /** Appends answered with a status other than 2xx. */
  appendFailureCount: number;
  /** Appends written more than one interval after their due time (the previous append was slow). */
  lateAppendCount: number;
  longPoll: LiveKindResult;
  sse: LiveKindResult;
  readers: LiveReaderReport[];
  /** Whether every reader received every message, in order, byte-exact. */
  complete: boolean;
  /** Wait for the server to go idle before the first append; `idle` false if it never did. */
  settle: { idle: boolean; waitedMs: number };
  /** From the first append to the end of the drain, in ms. */
  elapsedMs: number;
  /** This process's user + system CPU over `elapsedMs`, in seconds. */
  cpuS: number;
  failure?: string;
}

async function waitFor(condition: () => boolean, timeoutMs: number, pollMs: number): Promise<boolean> {
  const deadlineMs = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadlineMs) return false;
    await sleep(pollMs);
  }
  return true;
}

function roundUs(valueMs: number): number {
  return Math.round(valueMs * 1000) / 1000;
}

async function run(args: LiveGeneratorArgs): Promise<LiveGeneratorResult> {
  const base = new URL(args.baseUrl);
  const host = base.hostname;
  const port = Number(base.port);
  const warmupAppendCount = Math.ceil(args.warmupMs / args.intervalMs);
  const appendCount = warmupAppendCount + Math.ceil(args.durationMs / args.intervalMs);
  const sentAtMs = new Float64Array(appendCount).fill(Number.NaN);
  const ackMs = new Float64Array(appendCount).fill(Number.NaN);
  const kinds: ReaderKind[] = [...Array<ReaderKind>(args.longPollReaderCount).fill('long-poll'), ...Array<ReaderKind>(args.sseReaderCount).fill('sse')];
  const deliveredAtMs = kinds.map(() => new Float64Array(appendCount).fill(Number.NaN));
  const result: LiveGeneratorResult = {
    appendCount,
    warmupAppendCount,
    appendLatency: summariseLatencies([]),
    appendFailureCount: 0,
    lateAppendCount: 0,
    longPoll: { readerCount: args.longPollReaderCount, latency: summariseLatencies([]), undeliveredCount: 0, samplesMs: [] },
    sse: { readerCount: args.sseReaderCount, latency: summariseLatencies([]), undeliveredCount: 0, samplesMs: [] },
    readers: [],
    complete: false,
    settle: { idle: false, waitedMs: 0 },
    elapsedMs: 0,
    cpuS: 0,
  };
  const readers: LiveReader[] = [];
  const writer = new LiveWriter(host, port, args.streamPath, args.messageBytes);
  let cpuStart = process.cpuUsage();
  let startedMs = performance.now();
  try {
    const tail = await createLiveStream(args.baseUrl, args.streamPath);
    let readyCount = 0;
    const readerBases = (args.readerBaseUrls ?? [args.baseUrl]).map((url) => new URL(url));
    kinds.forEach((kind, index) => {
      const delivered = deliveredAtMs[index] ?? new Float64Array(0);
      const readerBase = readerBases[index % readerBases.length] ?? base;
      const reader = createReader(kind, {
        host: readerBase.hostname,
        port: Number(readerBase.port),
        streamPath: args.streamPath,
        startOffset: tail,
        firstSeq: 0,
        messageBytes: args.messageBytes,
        onMessage: (seq, atMs) => {
          if (seq < delivered.length) delivered[seq] = atMs;
        },
        onReady: () => readyCount++,
      });
      readers.push(reader);
      reader.start();
    });
    const allReady = await waitFor(() => readyCount === readers.length || readers.some((reader) => reader.failure !== undefined), READY_TIMEOUT_MS, 5);
    const early = readers.find((reader) => reader.failure !== undefined);
    if (early !== undefined) throw new Error(`a ${early.kind} reader failed before the first append: ${early.failure}`);
    if (!allReady) throw new Error(`only ${readyCount} of ${readers.length} readers were waiting after ${READY_TIMEOUT_MS} ms`);
    result.settle = await waitUntilIdle(args.serverPid, IDLE_PERCENT, IDLE_WINDOW_MS, IDLE_WINDOWS, IDLE_TIMEOUT_MS);

    cpuStart = process.cpuUsage();
    startedMs = performance.now();
    for (let seq = 0; seq < appendCount; seq++) {
      const dueMs = startedMs + seq * args.intervalMs;
      const waitMs = dueMs - performance.now();
      if (waitMs > 0) await sleep(waitMs);
      const append = await writer.append(seq);
      sentAtMs[seq] = append.sentAtMs;
      ackMs[seq] = append.ackMs;
      if (append.status < 200 || append.status > 299) result.appendFailureCount++;
      if (append.sentAtMs - dueMs > args.intervalMs) result.lateAppendCount++;
    }
    const everyone = () => readers.every((reader) => reader.nextSeq >= appendCount || reader.failure !== undefined);
    await waitFor(everyone, DRAIN_TIMEOUT_MS, DRAIN_POLL_MS);
  } catch (error) {
    result.failure = (error as Error).message;
  } finally {
    for (const reader of readers) reader.stop();
    writer.close();
  }
  const cpu = process.cpuUsage(cpuStart);
  result.cpuS = (cpu.user + cpu.system) / 1e6;
  result.elapsedMs = performance.now() - startedMs;

  const measured = (latencies: (seq: number) => number) => {
    const samples: number[] = [];
    for (let seq = warmupAppendCount; seq < appendCount; seq++) samples.push(latencies(seq));
    return samples;
  };
  result.appendLatency = summariseLatencies(measured((seq) => ackMs[seq] ?? Number.NaN));
  for (const kind of ['long-poll', 'sse'] as const) {
    const samplesMs: number[] = [];
    kinds.forEach((readerKind, index) => {
      if (readerKind !== kind) return;
      const delivered = deliveredAtMs[index] ?? new Float64Array(0);
      // An undelivered message counts as infinitely late, so it shows in the percentiles.
      samplesMs.push(...measured((seq) => (Number.isNaN(delivered[seq] ?? Number.NaN) ? Number.POSITIVE_INFINITY : (delivered[seq] ?? 0) - (sentAtMs[seq] ?? 0))));
    });
    const summary: LiveKindResult = {
      readerCount: kind === 'sse' ? args.sseReaderCount : args.longPollReaderCount,
      latency: summariseLatencies(samplesMs),
      undeliveredCount: samplesMs.filter((sample) => sample === Number.POSITIVE_INFINITY).length,
      samplesMs: samplesMs.map(roundUs),
    };
    if (kind === 'sse') result.sse = summary;
    else result.longPoll = summary;
  }
  result.readers = readers.map((reader) => ({
    kind: reader.kind,
    receivedCount: reader.nextSeq,
    requestCount: reader.requestCount,
    reconnectCount: reader.reconnectCount,
    ...(reader.failure === undefined ? {} : { failure: reader.failure }),
  }));
  result.complete = result.failure === undefined && readers.every((reader) => reader.failure === undefined && reader.nextSeq === appendCount);
  return result;
}

export interface LiveGeneratorRun extends LiveGeneratorArgs {
  /** Command prefix for CPU pinning, e.g. `['taskset', '-c', '1']`, or `[]`. */
  pin: readonly string[];
}

/** Runs the generator in a child process; resolves with its result and pid (failures inside the result). */
export async function runLiveGenerator(run: LiveGeneratorRun): Promise<LiveGeneratorResult & { pid: number }> {
  const args = [
    ...run.pin,
    process.execPath,
    SCRIPT_PATH,
    '--base-url',
    run.baseUrl,
    '--stream-path',
    run.streamPath,
    '--server-pid',
    String(run.serverPid),
    '--long-poll-readers',
    String(run.longPollReaderCount),
    '--sse-readers',
    String(run.sseReaderCount),
    '--interval-ms',
    String(run.intervalMs),
    '--warmup-ms',
    String(run.warmupMs),
    '--duration-ms',
    String(run.durationMs),
    '--message-bytes',
    String(run.messageBytes),
    ...(run.readerBaseUrls === undefined ? [] : ['--reader-base-urls', run.readerBaseUrls.join(',')]),
  ];
  // Appends are sequential: a slow server stretches the schedule; bound it generously.
  const killAfterMs = READY_TIMEOUT_MS + IDLE_TIMEOUT_MS + 3 * (run.warmupMs + run.durationMs) + DRAIN_TIMEOUT_MS + CHILD_MARGIN_MS;
  const { code, pid, result, output } = await runForResultLine(args, RESULT_PREFIX, killAfterMs);
  if (result === undefined) throw new Error(`live generator exited with ${code} and no result:\n${output.slice(-2000)}`);
  return { ...(result as LiveGeneratorResult), pid };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      'stream-path': { type: 'string' },
      'server-pid': { type: 'string' },
      'long-poll-readers': { type: 'string', default: '4' },
      'sse-readers': { type: 'string', default: '4' },
      'interval-ms': { type: 'string', default: '10' },
      'warmup-ms': { type: 'string', default: '1000' },
      'duration-ms': { type: 'string', default: '10000' },
      'message-bytes': { type: 'string', default: '100' },
      'reader-base-urls': { type: 'string' },
    },
  });
  const number = (name: keyof typeof values) => Number(values[name]);
  const args: LiveGeneratorArgs = {
    baseUrl: values['base-url'] ?? '',
    streamPath: values['stream-path'] ?? '',
    serverPid: number('server-pid'),
    longPollReaderCount: number('long-poll-readers'),
    sseReaderCount: number('sse-readers'),
    intervalMs: number('interval-ms'),
    warmupMs: number('warmup-ms'),
    durationMs: number('duration-ms'),
    messageBytes: number('message-bytes'),
    ...(values['reader-base-urls'] === undefined ? {} : { readerBaseUrls: values['reader-base-urls'].split(',') }),
  };
  const counts = [args.serverPid, args.longPollReaderCount, args.sseReaderCount, args.warmupMs, args.durationMs];
  const valid =
    args.baseUrl !== '' &&
    args.streamPath.startsWith('/') &&
    counts.every((count) => Number.isSafeInteger(count) && count >= 0) &&
    args.intervalMs > 0 &&
    args.durationMs > 0 &&
    Number.isSafeInteger(args.messageBytes) &&
    args.messageBytes >= MESSAGE_BYTES_MIN;
  if (!valid) {
    process.stderr.write('usage: live-generator.ts --base-url URL --stream-path /path --server-pid N [--long-poll-readers 4] [--sse-readers 4] [--interval-ms 10] [--warmup-ms 1000] [--duration-ms 10000] [--message-bytes 100]\n');
    process.exit(2);
  }
  const result = await run(args);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}
