/**
 * The demo's run, start to end: load the corpus, start Cairn in-process, write both streams with
 * `IdempotentProducer`s while live tailers follow, let the sealer catch up, verify with fresh
 * readers in two passes (cold cache, then warm), close the streams (the tailers end at EOF), stop
 * the server. Failures are collected, not thrown, so the summary always says what went wrong.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DurableStream, IdempotentProducer } from '@durable-streams/client';
import { destination, pino } from 'pino';
import { serveConfigDefaults, type ServeConfig } from '../src/config/serve-config.ts';
import { startServer, type RunningServer } from '../src/server.ts';
import { loadCorpus, messageOf, type Corpus } from './corpus.ts';
import { readPass, startLiveTailer, type LiveTailer, type ReadPass } from './readers.ts';
import { kib, mb, seconds } from './summary.ts';
import { cacheSummary, objectStoreSummary, readPassCost, type CacheSummary, type ObjectStoreSummary, type ReadPassCost } from './tiering.ts';

/** Mails handed to the producers between two progress lines (each window waits for its acks). */
const PROGRESS_WINDOW_MAILS = 1000;
/** How long a live tailer may take to receive the last mail after its ack, or to see EOF. */
const TAILER_TIMEOUT_MS = 30_000;
/** How long the sealer may take, after the last ack, to seal every full segment. */
const SEALER_CATCH_UP_TIMEOUT_MS = 120_000;
const SEALER_POLL_MS = 50;
const SEALER_PROGRESS_MS = 2_000;

/** The demo's own settings, plus the object-store and log settings of `cairn serve`. */
export interface DemoOptions
  extends Pick<
    ServeConfig,
    'objectStore' | 's3Bucket' | 's3Prefix' | 's3Endpoint' | 's3Region' | 's3ForcePathStyle' | 'unsafeAllowOverwrites' | 'logLevel'
  > {
  /** Replay only the first `limit` mails; all when undefined. */
  limit?: number;
  segmentSizeBytes: number;
  sealIdleMs: number;
  /** Fresh readers per stream in the cold pass, run at once. */
  catchUpReaders: number;
  /** Data directory; a fresh temporary one (removed at the end) when undefined. */
  dataDir?: string;
}

export interface VerifyPassSummary extends ReadPass {
  readersPerStream: number;
  cost: ReadPassCost;
}

export interface DemoSummary {
  /** True when every reader saw every mail exactly once, in order, byte-exact. */
  verified: boolean;
  failures: string[];
  mailCount: number;
  corpusMailCount: number;
  /** Mail text, UTF-8: the length of the raw-bytes stream. */
  rawBytes: number;
  /** The JSON messages as sent. */
  jsonBytes: number;
  /** Mails whose corpus MD5 field does not match the decoded text (why the demo hashes itself). */
  corpusMd5MismatchCount: number;
  /** `fs under <dir>` or `s3://bucket/prefix`. */
  objectStore: string;
  streams: { json: string; raw: string };
  segmentSizeBytes: number;
  sealIdleMs: number;
  tailers: Record<'sse' | 'longPoll', { mailCount: number; batchCount: number }>;
  segments: {
    /** Segments and bytes sealed in all (the last ones after the streams were closed). */
    written: number;
    sealedBytes: number;
    /** Sealed by the time the last mail was acknowledged. */
    writtenDuringIngest: number;
    sealedBytesDuringIngest: number;
    /** Sealed and hot-tail bytes when the first verification pass started. */
    sealedBytesAtVerify: number;
    hotTailBytesAtVerify: number;
  };
  objectStoreRequests: ObjectStoreSummary;
  cache: CacheSummary & { collapsedReads: number };
  verification: { cold: VerifyPassSummary; warm: VerifyPassSummary };
  elapsedMs: { total: number; load: number; ingest: number; tailerDrain: number; sealCatchUp: number; verify: number };
}

/** Runs the whole demo; never exits the process. `progress` gets one line at a time. */
export async function runDemo(options: DemoOptions, progress: (line: string) => void): Promise<DemoSummary> {
  const startedMs = performance.now();
  const corpus = loadCorpus(options.limit);
  const loadMs = performance.now() - startedMs;
  progress(`loaded ${corpus.mails.length} of ${corpus.availableCount} mails (${mb(corpus.totalBytes)}) in ${seconds(loadMs)}`);

  const runId = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'cairn-demo-')));
  // A fresh data directory starts stream incarnations afresh: give it a fresh prefix too, so a
  // rerun against the same bucket never meets the objects of an earlier run.
  const s3Prefix = ownDataDir ? [options.s3Prefix?.replace(/\/+$/, ''), `cairn-demo-${runId}`].filter(Boolean).join('/') : options.s3Prefix;
  const objectStore = options.objectStore === 's3' ? `s3://${options.s3Bucket}/${s3Prefix ?? ''}` : `fs under ${path.join(dataDir, 'objects')}`;

  // Ctrl-C skips the `finally` below: remove the temporary data directory on the way out.
  const onSignal = (signal: NodeJS.Signals) => {
    if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    process.stderr.write(`demo: ${signal}, stopped\n`);
    process.exit(128 + os.constants.signals[signal]);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);

  let server: RunningServer | undefined;
  const tailers: LiveTailer[] = [];
  try {
    server = await startServer(serveConfig(options, dataDir, s3Prefix), { logger: pino({ level: options.logLevel }, destination(2)) });
    progress(`cairn listening on ${server.url}, objects: ${objectStore}, segments of ${kib(options.segmentSizeBytes)}`);
    return await replay(server, corpus, options, { runId, objectStore, tailers, startedMs, loadMs }, progress);
  } finally {
    for (const tailer of tailers) tailer.abort(); // a no-op for tailers that ended at EOF
    await server?.close();
    if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
}

interface RunContext {
  runId: string;
  objectStore: string;
  /** Filled by `replay`, so that `runDemo` can abort tailers left running by a failure. */
  tailers: LiveTailer[];
  startedMs: number;
  loadMs: number;
}

async function replay(
  server: RunningServer,
  corpus: Corpus,
  options: DemoOptions,
  context: RunContext,
  progress: (line: string) => void,
): Promise<DemoSummary> {
  const failures: string[] = [];
  const base = `${server.url}/v1/stream/spam-assassin-${context.runId}`;
  const urls = { json: `${base}/mails`, raw: `${base}/raw` };
  const jsonStream = await DurableStream.create({ url: urls.json, contentType: 'application/json' });
  const rawStream = await DurableStream.create({ url: urls.raw, contentType: 'application/octet-stream' });

  const sse = await startLiveTailer(urls.json, 'sse', corpus);
  const longPoll = await startLiveTailer(urls.json, 'long-poll', corpus);
  context.tailers.push(sse, longPoll);

  // Ingest, window by window; each window waits for its acknowledgements, so a progress line
  // counts acknowledged mails and the client's buffers stay bounded.
  const producerErrors: string[] = [];
  const onError = (name: string) => (error: Error) => producerErrors.push(`${name} producer: ${error.message}`);
  const jsonProducer = new IdempotentProducer(jsonStream, `demo-json-${context.runId}`, { onError: onError('JSON') });
  const rawProducer = new IdempotentProducer(rawStream, `demo-raw-${context.runId}`, { onError: onError('raw') });
  const ingestStartedMs = performance.now();
  let jsonBytes = 0;
  let ackedBytes = 0;
  for (let from = 0; from < corpus.mails.length && producerErrors.length === 0; from += PROGRESS_WINDOW_MAILS) {
    const window = corpus.mails.slice(from, from + PROGRESS_WINDOW_MAILS);
    for (const mail of window) {
      const message = messageOf(mail);
      jsonBytes += Buffer.byteLength(message);
      jsonProducer.append(message);
      rawProducer.append(mail.bytes);
    }
    await Promise.all([jsonProducer.flush(), rawProducer.flush()]).catch((error: unknown) => {
      producerErrors.push(`flush: ${(error as Error).message}`);
    });
    ackedBytes += window.reduce((sum, mail) => sum + mail.bytes.length, 0);
    const stats = server.tiering.stats();
    progress(
      `  ${String(from + window.length).padStart(5)}/${corpus.mails.length} mails acknowledged  ${mb(ackedBytes).padStart(8)}` +
        `  ${String(stats.segmentsWritten).padStart(4)} segments sealed` +
        `  tailers: SSE ${sse.checker.receivedCount}, long-poll ${longPoll.checker.receivedCount}` +
        `  ${seconds(performance.now() - context.startedMs)}`,
    );
  }
  const ingestMs = performance.now() - ingestStartedMs;
  failures.push(...producerErrors);
  const ingested = server.tiering.stats();

  // The tailers may still be a response behind the last acknowledgement.
  const drainStartedMs = performance.now();
  const received = await settleWithin([sse.received, longPoll.received], TAILER_TIMEOUT_MS);
  const tailerDrainMs = performance.now() - drainStartedMs;
  received.forEach((outcome, i) => {
    const tailer = [sse, longPoll][i]!;
    if (outcome === 'timeout') failures.push(`${tailer.mode} tailer: ${tailer.checker.receivedCount} of ${corpus.mails.length} mails after ${TAILER_TIMEOUT_MS} ms`);
    else if (outcome.status === 'rejected') failures.push((outcome.reason as Error).message);
  });
  progress(`live tailers: SSE ${sse.checker.receivedCount} mails, long-poll ${longPoll.checker.receivedCount} mails`);

  // Client and server share this process: during the burst the sealer gets little of the event
  // loop and falls behind the producers. Let it seal every full segment before reading back.
  const sealStartedMs = performance.now();
  const hotTailBytesMax = 2 * options.segmentSizeBytes; // each stream's last partial segment
  const caughtUp = await sealerCaughtUp(server, hotTailBytesMax, SEALER_CATCH_UP_TIMEOUT_MS, progress);
  const sealCatchUpMs = performance.now() - sealStartedMs;
  const atVerify = server.tiering.stats();
  progress(
    `sealer ${caughtUp ? 'caught up' : `still behind after ${seconds(SEALER_CATCH_UP_TIMEOUT_MS)}`} in ${seconds(sealCatchUpMs)}` +
      ` (${atVerify.segmentsWritten - ingested.segmentsWritten} more segments):` +
      ` ${mb(atVerify.sealedBytes)} sealed in ${atVerify.segmentsWritten} segments, ${kib(atVerify.hotTailBytes)} in the hot tail`,
  );

  // Verification: a cold pass (concurrent readers share segment fetches), then a warm one.
  const cold = await verifyPass(server, urls, corpus, options.catchUpReaders, 'cold', failures);
  const warm = await verifyPass(server, urls, corpus, 1, 'warm', failures);
  progress(`verified: cold pass ${seconds(cold.elapsedMs)}, warm pass ${seconds(warm.elapsedMs)}`);

  // Close both streams (EOF): the tailers see the closure and end their sessions by themselves.
  await Promise.all([jsonProducer.close(), rawProducer.close()]).catch((error: unknown) => {
    failures.push(`closing the streams: ${(error as Error).message}`);
  });
  const eof = await settleWithin([sse.closed, longPoll.closed], TAILER_TIMEOUT_MS);
  eof.forEach((outcome, i) => {
    const tailer = [sse, longPoll][i]!;
    if (outcome === 'timeout') failures.push(`${tailer.mode} tailer: did not see the stream closed within ${TAILER_TIMEOUT_MS} ms`);
    else if (outcome.status === 'rejected') failures.push((outcome.reason as Error).message);
  });

  const end = server.tiering.stats();
  return {
    verified: failures.length === 0,
    failures,
    mailCount: corpus.mails.length,
    corpusMailCount: corpus.availableCount,
    rawBytes: corpus.totalBytes,
    jsonBytes,
    corpusMd5MismatchCount: corpus.mails.filter((mail) => !mail.corpusMd5Matches).length,
    objectStore: context.objectStore,
    streams: urls,
    segmentSizeBytes: options.segmentSizeBytes,
    sealIdleMs: options.sealIdleMs,
    tailers: {
      sse: { mailCount: sse.checker.receivedCount, batchCount: sse.batchCount },
      longPoll: { mailCount: longPoll.checker.receivedCount, batchCount: longPoll.batchCount },
    },
    segments: {
      written: end.segmentsWritten,
      sealedBytes: end.sealedBytes,
      writtenDuringIngest: ingested.segmentsWritten,
      sealedBytesDuringIngest: ingested.sealedBytes,
      sealedBytesAtVerify: atVerify.sealedBytes,
      hotTailBytesAtVerify: atVerify.hotTailBytes,
    },
    objectStoreRequests: objectStoreSummary(end),
    cache: { ...cacheSummary(end.cache.hits, end.cache.misses, end.cache.collapsed), collapsedReads: end.collapsedReads },
    verification: { cold, warm },
    elapsedMs: {
      total: performance.now() - context.startedMs,
      load: context.loadMs,
      ingest: ingestMs,
      tailerDrain: tailerDrainMs,
      sealCatchUp: sealCatchUpMs,
      verify: cold.elapsedMs + warm.elapsedMs,
    },
  };
}

/** One verification pass; each reader's discrepancy is added to `failures`. */
async function verifyPass(
  server: RunningServer,
  urls: { json: string; raw: string },
  corpus: Corpus,
  readersPerStream: number,
  name: string,
  failures: string[],
): Promise<VerifyPassSummary> {
  const before = server.tiering.stats();
  const pass = await readPass(urls, corpus, readersPerStream);
  const cost = readPassCost(before, server.tiering.stats());
  pass.json.forEach((read, i) => read.error !== undefined && failures.push(`${name} pass, JSON reader ${i + 1}: ${read.error}`));
  pass.raw.forEach((read, i) => read.error !== undefined && failures.push(`${name} pass, raw-bytes reader ${i + 1}: ${read.error}`));
  return { ...pass, readersPerStream, cost };
}

function serveConfig(options: DemoOptions, dataDir: string, s3Prefix: string | undefined): ServeConfig {
  return {
    ...serveConfigDefaults(),
    host: '127.0.0.1',
    port: 0,
    dataDir,
    objectStore: options.objectStore,
    s3Bucket: options.s3Bucket,
    s3Prefix,
    s3Endpoint: options.s3Endpoint,
    s3Region: options.s3Region,
    s3ForcePathStyle: options.s3ForcePathStyle,
    unsafeAllowOverwrites: options.unsafeAllowOverwrites,
    segmentSizeBytes: options.segmentSizeBytes,
    sealIdleMs: options.sealIdleMs,
    logLevel: options.logLevel,
  };
}

/**
 * Polls the tiering counters until at most `hotTailBytesMax` bytes are unsealed; false if that
 * has not happened within `timeoutMs`. Reports progress now and then while it waits.
 */
async function sealerCaughtUp(
  server: RunningServer,
  hotTailBytesMax: number,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<boolean> {
  const startedMs = performance.now();
  let reportedMs = startedMs;
  for (;;) {
    const stats = server.tiering.stats();
    if (stats.hotTailBytes <= hotTailBytesMax) return true;
    const nowMs = performance.now();
    if (nowMs - startedMs >= timeoutMs) return false;
    if (nowMs - reportedMs >= SEALER_PROGRESS_MS) {
      progress(`  sealing: ${stats.segmentsWritten} segments, ${mb(stats.hotTailBytes)} still in the hot tail`);
      reportedMs = nowMs;
    }
    await new Promise((resolve) => setTimeout(resolve, SEALER_POLL_MS));
  }
}

/** Each promise's outcome, or `'timeout'` for those still pending after `timeoutMs`. */
async function settleWithin<T>(promises: Promise<T>[], timeoutMs: number): Promise<(PromiseSettledResult<T> | 'timeout')[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    return await Promise.all(
      promises.map((promise) =>
        Promise.race([
          promise.then(
            (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
            (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
          ),
          timeout,
        ]),
      ),
    );
  } finally {
    clearTimeout(timer);
  }
}
