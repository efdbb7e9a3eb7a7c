/**
 * The load generator of bench/producer.ts, run as its own process (pinned to the generator core):
 * `IdempotentProducer`s from `@durable-streams/client` push JSON messages of exactly
 * `--message-bytes` bytes to one existing `application/json` stream, as fast as the producers'
 * pipelining allows, for a warm-up and then a measured window; then every producer is flushed.
 *
 *   node bench/lib/producer-load.ts --url URL --server-pid PID [--producers 1] [--message-bytes 100]
 *        [--warmup-ms 1000] [--duration-ms 5000] [--linger-ms 5] [--max-batch-bytes 1048576] [--max-in-flight 5]
 *
 * Message i of producer p is `JSON.stringify({ p, i, pad })` with `pad` chosen so the text is
 * exactly `--message-bytes` long. A producer appends in slices of {@link APPEND_SLICE_COUNT} and
 * pauses while `maxInFlight` batches are already queued or in flight (append() itself never
 * blocks, so an unpaced loop would buffer without bound). Acknowledged messages are counted from
 * the producer's own HTTP answers (a `fetch` wrapper): a 200 acknowledges its whole batch.
 *
 * Prints one line `PRODUCER_RESULT_JSON {...}` ({@link ProducerLoadResult}) and exits 0; exits 1
 * with a message on a usage error.
 */
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { DurableStream, IdempotentProducer } from '@durable-streams/client';
import { cpuOfOthers, processCpuSeconds, snapshotAllProcessesCpu, type CpuSnapshot, type OthersCpu } from './cpu.ts';
import { wholeNumberFlag } from './bench-server.ts';

/** Messages appended between two checks of the clock and of the in-flight limit. */
const APPEND_SLICE_COUNT = 256;
/** Poll interval while a producer waits for a batch to finish (a 1 MiB batch takes several ms). */
const IN_FLIGHT_POLL_MS = 1;
/** flush() after the window: every batch must be answered within this. */
const FLUSH_TIMEOUT_MS = 30_000;
/** First error messages kept for the report. */
const ERRORS_KEPT = 5;

export interface ProducerLoadResult {
  producerCount: number;
  messageBytes: number;
  /** Messages appended per producer (index = producer number); producer p sent i = 0 … sent[p]-1. */
  sentCounts: number[];
  /** Messages in batches answered 200 (any time), and in batches answered inside the measured window. */
  ackedCount: number;
  ackedInWindowCount: number;
  /** Batches answered 204 (duplicate): should be 0. */
  duplicateBatchCount: number;
  batchCount: number;
  /** HTTP statuses of every batch request, e.g. `{ "200": 812 }` (409 = reordered pipelined batch, retried by the client). */
  statusCounts: Record<string, number>;
  errorCount: number;
  errors: string[];
  /** Length of the measured window, in seconds. */
  windowS: number;
  /** Time from the end of the window until every producer's flush() resolved, in ms. */
  flushMs: number;
  flushTimedOut: boolean;
  /** Shares of one core (%) over the measured window. */
  generatorCpuPercent: number;
  serverCpuPercent: number;
  otherCpuPercent: number;
  otherCpuTop: OthersCpu['top'];
}


/** `JSON.stringify({ p, i, pad })` exactly `messageBytes` long; the padding depends only on the digits of i. */
function messageMaker(producer: number, messageBytes: number): (index: number) => string {
  const pads = new Map<number, string>();
  return (index) => {
    const digits = index < 10 ? 1 : Math.floor(Math.log10(index)) + 1;
    let pad = pads.get(digits);
    if (pad === undefined) {
      const bare = JSON.stringify({ p: producer, i: index, pad: '' }).length;
      if (bare > messageBytes) throw new Error(`--message-bytes ${messageBytes} is too small for message ${index}`);
      pad = 'x'.repeat(messageBytes - bare);
      pads.set(digits, pad);
    }
    return JSON.stringify({ p: producer, i: index, pad });
  };
}

async function run(argv: string[]): Promise<ProducerLoadResult> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string' },
      'server-pid': { type: 'string' },
      producers: { type: 'string', default: '1' },
      'message-bytes': { type: 'string', default: '100' },
      'warmup-ms': { type: 'string', default: '1000' },
      'duration-ms': { type: 'string', default: '5000' },
      'linger-ms': { type: 'string', default: '5' },
      'max-batch-bytes': { type: 'string', default: '1048576' },
      'max-in-flight': { type: 'string', default: '5' },
    },
  });
  if (values.url === undefined) throw new Error('--url is required');
  const serverPid = wholeNumberFlag('server-pid', values['server-pid'] ?? '', 1);
  const producerCount = wholeNumberFlag('producers', values.producers, 1);
  const messageBytes = wholeNumberFlag('message-bytes', values['message-bytes'], 2);
  const warmupMs = wholeNumberFlag('warmup-ms', values['warmup-ms'], 0);
  const durationMs = wholeNumberFlag('duration-ms', values['duration-ms'], 1);
  const lingerMs = wholeNumberFlag('linger-ms', values['linger-ms'], 0);
  const maxBatchBytes = wholeNumberFlag('max-batch-bytes', values['max-batch-bytes'], 1);
  const maxInFlight = wholeNumberFlag('max-in-flight', values['max-in-flight'], 1);

  let windowOpen = false;
  let ackedCount = 0;
  let ackedInWindowCount = 0;
  let duplicateBatchCount = 0;
  let batchCount = 0;
  const statusCounts: Record<string, number> = {};
  const errors: string[] = [];
  let errorCount = 0;
  const onError = (error: Error) => {
    errorCount++;
    if (errors.length < ERRORS_KEPT) errors.push(error.message);
  };

  // Every batch body is `[m1,m2,…]` of equal-length messages, so its message count follows from its length.
  const messagesIn = (body: unknown): number => {
    if (typeof body !== 'string') throw new Error(`unexpected batch body type ${typeof body}`);
    const count = (body.length - 1) / (messageBytes + 1);
    if (!Number.isInteger(count)) throw new Error(`batch body of ${body.length} characters does not hold whole ${messageBytes}-byte messages`);
    return count;
  };
  const countingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    batchCount++;
    const status = String(response.status);
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    if (response.status === 200) {
      const count = messagesIn(init?.body);
      ackedCount += count;
      if (windowOpen) ackedInWindowCount += count;
    } else if (response.status === 204) {
      duplicateBatchCount++;
    }
    return response;
  };

  const stream = new DurableStream({ url: values.url, contentType: 'application/json' });
  const producers = Array.from(
    { length: producerCount },
    (_, index) => new IdempotentProducer(stream, `bench-producer-${index}`, { lingerMs, maxBatchBytes, maxInFlight, fetch: countingFetch, onError }),
  );
  const sentCounts = producers.map(() => 0);

  const startedMs = performance.now();
  const windowStartMs = startedMs + warmupMs;
  const windowEndMs = windowStartMs + durationMs;
  let before: { atMs: number; ownCpuUs: number; serverCpuS: number; all: CpuSnapshot } | undefined;
  const snapshot = () => {
    const usage = process.cpuUsage();
    return { atMs: performance.now(), ownCpuUs: usage.user + usage.system, serverCpuS: processCpuSeconds(serverPid), all: snapshotAllProcessesCpu() };
  };

  const produce = async (producerIndex: number) => {
    const producer = producers[producerIndex];
    if (producer === undefined) return;
    const message = messageMaker(producerIndex, messageBytes);
    let index = 0;
    for (;;) {
      const now = performance.now();
      if (now >= windowEndMs) break;
      if (!windowOpen && now >= windowStartMs && before === undefined) {
        before = snapshot();
        windowOpen = true;
      }
      for (let slice = 0; slice < APPEND_SLICE_COUNT; slice++) producer.append(message(index++));
      sentCounts[producerIndex] = index;
      while (producer.inFlightCount >= maxInFlight && performance.now() < windowEndMs) await sleep(IN_FLIGHT_POLL_MS);
      // Let responses and timers run even when the server keeps up with every batch.
      if (producer.inFlightCount === 0) await nextTurn();
    }
  };
  // The window closes on a timer too, so its end is taken on time even while producers wait.
  const windowEnd = sleep(Math.max(0, windowEndMs - performance.now())).then(() => {
    const after = snapshot();
    windowOpen = false;
    return after;
  });
  // Open the window on time even if every producer is waiting for batches.
  const windowStart = sleep(Math.max(0, windowStartMs - performance.now())).then(() => {
    if (before === undefined) {
      before = snapshot();
      windowOpen = true;
    }
  });
  await Promise.all([...producers.map((_, index) => produce(index)), windowStart]);
  const after = await windowEnd;

  const flushStartedMs = performance.now();
  let flushTimedOut = false;
  const flushTimer = sleep(FLUSH_TIMEOUT_MS).then(() => {
    flushTimedOut = true;
  });
  await Promise.race([Promise.all(producers.map((producer) => producer.flush())), flushTimer]);
  const flushMs = performance.now() - flushStartedMs;

  const start = before ?? after;
  const windowS = (after.atMs - start.atMs) / 1000;
  const others = cpuOfOthers(start.all, after.all, new Set([process.pid, process.ppid, serverPid]));
  return {
    producerCount,
    messageBytes,
    sentCounts,
    ackedCount,
    ackedInWindowCount,
    duplicateBatchCount,
    batchCount,
    statusCounts,
    errorCount,
    errors,
    windowS,
    flushMs,
    flushTimedOut,
    generatorCpuPercent: ((after.ownCpuUs - start.ownCpuUs) / 1e6 / windowS) * 100,
    serverCpuPercent: ((after.serverCpuS - start.serverCpuS) / windowS) * 100,
    otherCpuPercent: (others.cpuS / windowS) * 100,
    otherCpuTop: others.top,
  };
}

run(process.argv.slice(2)).then(
  (result) => {
    process.stdout.write(`PRODUCER_RESULT_JSON ${JSON.stringify(result)}\n`);
    // A flush that timed out leaves requests open; do not wait for them.
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(`producer-load: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
