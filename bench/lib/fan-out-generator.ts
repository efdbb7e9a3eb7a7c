/**
 * The load generator of the `fan-out` benchmark, as its own process (pinned to a core, CPU
 * measured alone): thousands of readers of one kind (SSE or long-poll) on one stream, then a few
 * single appends, each timed until every reader has it.
 *
 *   node bench/lib/fan-out-generator.ts --base-url http://127.0.0.1:P --stream-path /v1/stream/x
 *        --server-pid N --kind sse|long-poll [--readers 10000] [--appends 3] [--append-gap-ms 500]
 *        [--connect-concurrency 256] [--source-addresses 4] [--message-bytes 100]
 *        [--connect-timeout-ms 60000] [--delivery-timeout-ms 10000]
 *
 * Steps: create the stream (`text/plain`); warm the server up with a few readers and two appends
 * (JIT, lazily loaded code), close them; wait until the server is idle and read its RSS
 * (baseline); connect the readers, at most `--connect-concurrency` connecting at once, each from
 * one of `--source-addresses` loopback addresses (127.0.0.2, 127.0.0.3, …) so ephemeral ports do
 * not run short; a reader counts as connected once it is waiting (SSE: first control event with
 * `upToDate`; long-poll: its catch-up GET answered and the long-poll sent); wait until the server
 * is idle again and read its RSS (all readers connected and idle); then `--appends` times: one
 * append, wait until every connected reader has it (or the delivery timeout), wait for the server
 * to go idle (long-poll readers re-poll), pause `--append-gap-ms`.
 *
 * Delivery time = the reader's socket read that completed the message − the moment the writer
 * wrote the append (one clock, this process). Every reader checks it gets each message once, in
 * order, byte-exact. Prints one line `FAN_OUT_RESULT_JSON {…}` (a `FanOutResult`).
 *
 * `runFanOutGenerator()` spawns it and parses the result.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { runForResultLine } from './child-result.ts';
import { processCpuSeconds } from './cpu.ts';
import { summariseLatencies, type LatencySummary } from './latency-summary.ts';
import {
  createLiveStream,
  createReader,
  LiveWriter,
  MESSAGE_BYTES_MIN,
  residentBytes,
  waitUntilIdle,
  type IdleWait,
  type LiveReader,
  type ReaderKind,
} from './live-readers.ts';

const SCRIPT_PATH = fileURLToPath(import.meta.url);
const RESULT_PREFIX = 'FAN_OUT_RESULT_JSON ';
/** One read buffer for every socket of this process (reads are consumed synchronously). */
const READ_BUFFER_BYTES = 256 * 1024;
const WARMUP_READERS = 50;
const WARMUP_APPENDS = 2;
const WARMUP_TIMEOUT_MS = 10_000;
/** Idle = server below 5% of one core for 2 consecutive 300 ms windows (at most 30 s). */
const IDLE_PERCENT = 5;
const IDLE_WINDOW_MS = 300;
const IDLE_WINDOWS = 2;
const IDLE_TIMEOUT_MS = 30_000;
const POLL_MS = 2;
/** Reasons of failed readers kept in the result (the rest are counted). */
const FAILURES_KEPT = 5;
const CHILD_MARGIN_MS = 60_000;

export interface FanOutArgs {
  baseUrl: string;
  streamPath: string;
  serverPid: number;
  kind: ReaderKind;
  readerCount: number;
  appendCount: number;
  appendGapMs: number;
  connectConcurrency: number;
  sourceAddressCount: number;
  messageBytes: number;
  connectTimeoutMs: number;
  deliveryTimeoutMs: number;
}

export interface FanOutAppend {
  seq: number;
  /** The append's round trip (write to end of response), in ms. */
  ackMs: number;
  status: number;
  /** Readers that had the message within the delivery timeout. */
  deliveredCount: number;
  /** Delivery time over the readers that got it, in ms. */
  latency: LatencySummary;
  /** From writing the append to the last reader having it (or the timeout), in ms. */
  windowMs: number;
  /** This process's CPU over that window, in % of one core (≥ 90%: the generator may be the limit). */
  generatorCpuPercent: number;
  /** Server CPU from the append until it was idle again, in ms (for long-poll: includes the re-polls). */
  serverCpuMs: number;
  settle: IdleWait;
}

export interface FanOutResult {
  kind: ReaderKind;
  readerCount: number;
  /** Readers that reached waiting within the connect timeout. */
  connectedCount: number;
  /** From the first connection attempt to the last reader waiting (or the timeout), in ms. */
  connectMs: number;
  failedReaderCount: number;
  /** A few failure reasons, e.g. `GET … answered 503`. */
  failures: string[];
  reconnectCount: number;
  /** Server RSS before connecting (after warm-up, idle), in bytes. */
  rssBeforeBytes: number;
  /** Server RSS with all readers connected and idle, in bytes. */
  rssConnectedBytes: number;
  /** Server RSS after the appends, in bytes. */
  rssAfterBytes: number;
  /** (rssConnected − rssBefore) / connected readers, in bytes. */
  rssPerReaderBytes: number;
  /** This process's RSS with all readers connected, in bytes. */
  generatorRssBytes: number;
  idleBeforeConnect: IdleWait;
  idleConnected: IdleWait;
  appends: FanOutAppend[];
  /** Over every (reader, append): delivery time in ms; a reader connected but missing an append counts as ∞. */
  latency: LatencySummary;
  /** (reader, append) pairs delivered, of `readerCount × appendCount`. */
  deliveredCount: number;
  /** The generator's CPU over the whole run, in seconds, and the run's length in ms. */
  cpuS: number;
  elapsedMs: number;
  failure?: string;
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadlineMs = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadlineMs) return false;
    await sleep(POLL_MS);
  }
  return true;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

async function run(args: FanOutArgs): Promise<FanOutResult> {
  const base = new URL(args.baseUrl);
  const host = base.hostname;
  const port = Number(base.port);
  const readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  const cpuStart = process.cpuUsage();
  const startedMs = performance.now();
  const result: FanOutResult = {
    kind: args.kind,
    readerCount: args.readerCount,
    connectedCount: 0,
    connectMs: 0,
    failedReaderCount: 0,
    failures: [],
    reconnectCount: 0,
    rssBeforeBytes: Number.NaN,
    rssConnectedBytes: Number.NaN,
    rssAfterBytes: Number.NaN,
    rssPerReaderBytes: Number.NaN,
    generatorRssBytes: Number.NaN,
    idleBeforeConnect: { idle: false, waitedMs: 0 },
    idleConnected: { idle: false, waitedMs: 0 },
    appends: [],
    latency: summariseLatencies([]),
    deliveredCount: 0,
    cpuS: 0,
    elapsedMs: 0,
  };
  const writer = new LiveWriter(host, port, args.streamPath, args.messageBytes);
  /** Each reader with its delivery times per append (NaN = not delivered) and whether it got to waiting. */
  const tracked: { reader: LiveReader; deliveredAtMs: Float64Array; connected: boolean }[] = [];
  const warmupReaders: LiveReader[] = [];
  const deliveredPerAppend = new Array<number>(args.appendCount).fill(0);
  const sentAtMs = new Array<number>(args.appendCount).fill(Number.NaN);
  let failedCount = 0;
  const recordFailure = (reason: string) => {
    failedCount++;
    if (result.failures.length < FAILURES_KEPT) result.failures.push(reason);
  };
  try {
    let tail = await createLiveStream(args.baseUrl, args.streamPath);

    // Warm-up: the same kind of reader, a few appends, then closed.
    let warmReady = 0;
    let warmDelivered = 0;
    for (let index = 0; index < Math.min(WARMUP_READERS, args.readerCount); index++) {
      const reader = createReader(args.kind, {
        host,
        port,
        streamPath: args.streamPath,
        startOffset: tail,
        firstSeq: 0,
        messageBytes: args.messageBytes,
        readBuffer,
        onMessage: () => warmDelivered++,
        onReady: () => warmReady++,
        onFailure: (reason) => recordFailure(`warm-up: ${reason}`),
      });
      warmupReaders.push(reader);
      reader.start();
    }
    if (!(await waitFor(() => warmReady + failedCount >= warmupReaders.length, WARMUP_TIMEOUT_MS))) throw new Error('warm-up readers did not connect');
    if (failedCount > 0) throw new Error(`warm-up readers failed: ${result.failures.join('; ')}`);
    for (let seq = 0; seq < WARMUP_APPENDS; seq++) {
      await waitUntilIdle(args.serverPid, IDLE_PERCENT, IDLE_WINDOW_MS, 1, IDLE_TIMEOUT_MS);
      const append = await writer.append(seq);
      if (append.status < 200 || append.status > 299 || append.nextOffset === undefined) throw new Error(`warm-up append answered ${append.status}`);
      tail = append.nextOffset;
      const target = (seq + 1) * warmupReaders.length;
      if (!(await waitFor(() => warmDelivered >= target, WARMUP_TIMEOUT_MS))) throw new Error(`warm-up append ${seq} reached ${warmDelivered - seq * warmupReaders.length} of ${warmupReaders.length} readers`);
    }
    for (const reader of warmupReaders) reader.stop();

    result.idleBeforeConnect = await waitUntilIdle(args.serverPid, IDLE_PERCENT, IDLE_WINDOW_MS, IDLE_WINDOWS, IDLE_TIMEOUT_MS);
    result.rssBeforeBytes = residentBytes(args.serverPid);

    // Connect with bounded concurrency.
    let connecting = 0;
    let connected = 0;
    const connectStartMs = performance.now();
    const connectDeadlineMs = connectStartMs + args.connectTimeoutMs;
    for (let index = 0; index < args.readerCount; index++) {
      while (connecting >= args.connectConcurrency && performance.now() < connectDeadlineMs) await sleep(POLL_MS);
      if (performance.now() >= connectDeadlineMs) break;
      const delivered = new Float64Array(args.appendCount).fill(Number.NaN);
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        connecting--;
        return true;
      };
      const reader = createReader(args.kind, {
        host,
        port,
        streamPath: args.streamPath,
        startOffset: tail,
        firstSeq: WARMUP_APPENDS,
        messageBytes: args.messageBytes,
        readBuffer,
        localAddress: `127.0.0.${2 + (index % args.sourceAddressCount)}`,
        onMessage: (seq, atMs) => {
          const appendIndex = seq - WARMUP_APPENDS;
          if (appendIndex < 0 || appendIndex >= args.appendCount) return;
          delivered[appendIndex] = atMs;
          deliveredPerAppend[appendIndex] = (deliveredPerAppend[appendIndex] ?? 0) + 1;
        },
        onReady: () => {
          if (!settle()) return;
          connected++;
          entry.connected = true;
        },
        onFailure: (reason) => {
          settle();
          recordFailure(reason);
        },
      });
      const entry = { reader, deliveredAtMs: delivered, connected: false };
      tracked.push(entry);
      connecting++;
      reader.start();
    }
    await waitFor(() => connecting === 0, Math.max(0, connectDeadlineMs - performance.now()));
    result.connectMs = performance.now() - connectStartMs;
    result.connectedCount = connected;
    if (connected === 0) throw new Error(`no reader connected: ${result.failures.join('; ')}`);

    result.idleConnected = await waitUntilIdle(args.serverPid, IDLE_PERCENT, IDLE_WINDOW_MS, IDLE_WINDOWS, IDLE_TIMEOUT_MS);
    result.rssConnectedBytes = residentBytes(args.serverPid);
    result.rssPerReaderBytes = (result.rssConnectedBytes - result.rssBeforeBytes) / connected;
    result.generatorRssBytes = process.memoryUsage.rss();

    for (let appendIndex = 0; appendIndex < args.appendCount; appendIndex++) {
      const seq = WARMUP_APPENDS + appendIndex;
      const expected = tracked.filter((entry) => entry.connected && entry.reader.failure === undefined).length;
      // A reader that breaks while the append is on its way will not get it: stop waiting for it.
      const failedBefore = failedCount;
      const serverCpuStartS = processCpuSeconds(args.serverPid);
      const cpuWindowStart = process.cpuUsage();
      const pending = writer.append(seq);
      // The writer sets its send time synchronously when the request goes out; wait for deliveries.
      const allDelivered = waitFor(() => (deliveredPerAppend[appendIndex] ?? 0) >= expected - (failedCount - failedBefore), args.deliveryTimeoutMs);
      const append = await pending;
      sentAtMs[appendIndex] = append.sentAtMs;
      await allDelivered;
      let lastMs = Number.NEGATIVE_INFINITY;
      const samples: number[] = [];
      for (const entry of tracked) {
        const atMs = entry.deliveredAtMs[appendIndex] ?? Number.NaN;
        if (Number.isNaN(atMs)) continue;
        samples.push(atMs - append.sentAtMs);
        lastMs = Math.max(lastMs, atMs);
      }
      const windowMs = (Number.isFinite(lastMs) ? lastMs : performance.now()) - append.sentAtMs;
      const generatorCpuPercent = (cpuMsSince(cpuWindowStart) * 100) / Math.max(windowMs, 1);
      const settle = await waitUntilIdle(args.serverPid, IDLE_PERCENT, IDLE_WINDOW_MS, IDLE_WINDOWS, IDLE_TIMEOUT_MS);
      // The idle windows themselves hold < 5% of a core; what the server used is the append's work.
      const serverCpuMs = (processCpuSeconds(args.serverPid) - serverCpuStartS) * 1000;
      result.appends.push({
        seq,
        ackMs: append.ackMs,
        status: append.status,
        deliveredCount: samples.length,
        latency: summariseLatencies(samples),
        windowMs,
        generatorCpuPercent,
        serverCpuMs,
        settle,
      });
      if (appendIndex + 1 < args.appendCount) await sleep(args.appendGapMs);
    }
    result.rssAfterBytes = residentBytes(args.serverPid);
  } catch (error) {
    result.failure = (error as Error).message;
  } finally {
    for (const reader of warmupReaders) reader.stop();
    for (const entry of tracked) entry.reader.stop();
    writer.close();
  }

  // Every reader that connected should have every append; a missing one counts as infinitely late.
  const all: number[] = [];
  for (const { reader, deliveredAtMs: delivered, connected } of tracked) {
    result.reconnectCount += reader.kind === 'sse' ? reader.reconnectCount : 0;
    if (!connected) continue;
    for (let appendIndex = 0; appendIndex < result.appends.length; appendIndex++) {
      const atMs = delivered[appendIndex] ?? Number.NaN;
      if (!Number.isNaN(atMs)) {
        all.push(atMs - (sentAtMs[appendIndex] ?? Number.NaN));
        result.deliveredCount++;
      } else all.push(Number.POSITIVE_INFINITY);
    }
  }
  result.latency = summariseLatencies(all);
  result.failedReaderCount = failedCount;
  // Message-order failures are not connection failures: report them too.
  for (const { reader } of tracked) {
    const reason = reader.failure;
    if (reason !== undefined && !result.failures.includes(reason) && result.failures.length < FAILURES_KEPT) result.failures.push(reason);
  }
  result.cpuS = cpuMsSince(cpuStart) / 1000;
  result.elapsedMs = performance.now() - startedMs;
  return result;
}

export interface FanOutRun extends FanOutArgs {
  /** Command prefix for CPU pinning, e.g. `['taskset', '-c', '1']`, or `[]`. */
  pin: readonly string[];
}

/** The longest a generator run may take with these settings, in ms (the parent's kill timer). */
export function fanOutRunBoundMs(args: FanOutArgs): number {
  const settles = 3 + args.appendCount;
  return WARMUP_TIMEOUT_MS * 2 + args.connectTimeoutMs + settles * IDLE_TIMEOUT_MS + args.appendCount * (args.deliveryTimeoutMs + args.appendGapMs) + CHILD_MARGIN_MS;
}

/** Runs the generator in a child process; resolves with its result and pid (failures inside the result). */
export async function runFanOutGenerator(run: FanOutRun): Promise<FanOutResult & { pid: number }> {
  const flags: [string, string | number][] = [
    ['base-url', run.baseUrl],
    ['stream-path', run.streamPath],
    ['server-pid', run.serverPid],
    ['kind', run.kind],
    ['readers', run.readerCount],
    ['appends', run.appendCount],
    ['append-gap-ms', run.appendGapMs],
    ['connect-concurrency', run.connectConcurrency],
    ['source-addresses', run.sourceAddressCount],
    ['message-bytes', run.messageBytes],
    ['connect-timeout-ms', run.connectTimeoutMs],
    ['delivery-timeout-ms', run.deliveryTimeoutMs],
  ];
  const args = [...run.pin, process.execPath, SCRIPT_PATH, ...flags.flatMap(([name, value]) => [`--${name}`, String(value)])];
  const { code, pid, result, output } = await runForResultLine(args, RESULT_PREFIX, fanOutRunBoundMs(run));
  if (result === undefined) throw new Error(`fan-out generator exited with ${code} and no result:\n${output.slice(-2000)}`);
  return { ...(result as FanOutResult), pid };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      'base-url': { type: 'string' },
      'stream-path': { type: 'string' },
      'server-pid': { type: 'string' },
      kind: { type: 'string' },
      readers: { type: 'string', default: '10000' },
      appends: { type: 'string', default: '3' },
      'append-gap-ms': { type: 'string', default: '500' },
      'connect-concurrency': { type: 'string', default: '256' },
      'source-addresses': { type: 'string', default: '4' },
      'message-bytes': { type: 'string', default: '100' },
      'connect-timeout-ms': { type: 'string', default: '60000' },
      'delivery-timeout-ms': { type: 'string', default: '10000' },
    },
  });
  const number = (name: keyof typeof values) => Number(values[name]);
  const args: FanOutArgs = {
    baseUrl: values['base-url'] ?? '',
    streamPath: values['stream-path'] ?? '',
    serverPid: number('server-pid'),
    kind: values.kind as ReaderKind,
    readerCount: number('readers'),
    appendCount: number('appends'),
    appendGapMs: number('append-gap-ms'),
    connectConcurrency: number('connect-concurrency'),
    sourceAddressCount: number('source-addresses'),
    messageBytes: number('message-bytes'),
    connectTimeoutMs: number('connect-timeout-ms'),
    deliveryTimeoutMs: number('delivery-timeout-ms'),
  };
  const positive = [args.serverPid, args.readerCount, args.appendCount, args.connectConcurrency, args.sourceAddressCount, args.connectTimeoutMs, args.deliveryTimeoutMs];
  const valid =
    args.baseUrl !== '' &&
    args.streamPath.startsWith('/') &&
    (args.kind === 'sse' || args.kind === 'long-poll') &&
    positive.every((value) => Number.isSafeInteger(value) && value > 0) &&
    Number.isSafeInteger(args.appendGapMs) &&
    args.appendGapMs >= 0 &&
    args.sourceAddressCount <= 250 &&
    Number.isSafeInteger(args.messageBytes) &&
    args.messageBytes >= MESSAGE_BYTES_MIN;
  if (!valid) {
    process.stderr.write(
      'usage: fan-out-generator.ts --base-url URL --stream-path /path --server-pid N --kind sse|long-poll [--readers 10000] [--appends 3] [--append-gap-ms 500]\n' +
        '       [--connect-concurrency 256] [--source-addresses 4 (at most 250)] [--message-bytes 100] [--connect-timeout-ms 60000] [--delivery-timeout-ms 10000]\n',
    );
    process.exit(2);
  }
  const result = await run(args);
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(result)}\n`);
}
