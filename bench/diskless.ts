/**
 * Diskless durability (`cairn serve --durability object-store`) against the local WAL
 * (`--durability wal`, fsync before ack), in the same run:
 *
 *  1. ack latency: single 100-byte appends to one stream from 1, 16 and 64 concurrent writers
 *     (closed loop, one keep-alive connection each, bench/lib/raw-http-client.ts; 1 writer is a
 *     sequential loop), and the upstream `IdempotentProducer` (@durable-streams/client) at 1, 16
 *     and 64 concurrent producers on one JSON stream (closed loop: `append()` one 100-byte message,
 *     then `await flush()`); p50/p99/mean/max per cell, a warm-up then a bounded window;
 *  2. on these stores: the local WAL (fs store, baseline); diskless on the fs store; on a local
 *     Ceph RGW (`--s3`); on the fs store with 10 ms and 50 ms added to every store request
 *     (standing in for S3 Express One Zone and S3 Standard): bench/lib/cairn-timed-store.ts wraps
 *     the server's store in-process, sleeps before each request and times every put;
 *  3. PUTs per GiB appended (fs store, wal and diskless): 16 writers of 64 KiB appends, the stream
 *     closed and sealed; PUTs per GiB at 100-byte appends come from the latency cells;
 *  4. PUTs per idle hour: a server with N streams (one append each), all sealed, diskless also
 *     checkpointed (no bytes held only in WAL objects), the PUT count still; then a measured
 *     window, its requests extrapolated to an hour (the requests to get there are shown apart);
 *  5. the target check: diskless ack p99 ≤ flush interval + WAL-object PUT p99 + 5 ms, with the
 *     PUT p99 of the same cell's window (timed in the server process around the store).
 *
 *   npm run bench -- diskless [--help]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DurableStream, IdempotentProducer } from '@durable-streams/client';
import {
  benchHeader,
  fileTimestamp,
  installInterruptCleanup,
  makeDataDir,
  pinTo,
  removeDataDir,
  SERVER_CORE,
  STREAM_PATH_ROOT,
  trackDataDir,
  trackServerPid,
  untrackServerPid,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { s3ModeFlag, s3Source, startBenchS3, type BenchS3 } from './lib/bench-s3.ts';
import type { PutLatencies, PutSample } from './lib/cairn-timed-store.ts';
import { cpuOfOthers, processCpuSeconds, snapshotAllProcessesCpu } from './lib/cpu.ts';
import { summariseLatencies } from './lib/latency-summary.ts';
import { waitUntilSealed } from './lib/ingest.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { RawHttpClient } from './lib/raw-http-client.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { formatTable } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { waitUntilStill } from './lib/wait-still.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const MESSAGE_BYTES = 100;
/** The target's slack on top of flush interval + store PUT p99, ms. */
const TARGET_SLACK_MS = 5;
/** Every stream sealed and the PUT count still within this, or the phase fails. */
const SETTLE_TIMEOUT_MS = 120_000;
/** The PUT count unchanged this long (with every stream sealed): background writes are done. */
const PUTS_QUIET_MS = 3_000;
/** Idle phase: streams go idle-sealed after this (instead of the default 30 s) so settling is quick. */
const IDLE_SEAL_MS = 2_000;
/** Writers of the PUTs-per-GiB phase. */
const GIB_WRITERS = 16;
/** A cell stops counting socket errors beyond this and ends early. */
const SOCKET_ERRORS_MAX = 100;
const REQUEST_TIMEOUT_MS = 30_000;
/** A server start may take this long: the default 20 s was not enough at a load average of 25 on 2 cores. */
const READY_TIMEOUT_MS = 60_000;

const USAGE = `usage: npm run bench -- diskless [flags]
Ack latency of --durability object-store (diskless) against --durability wal, PUTs per GiB and
per idle hour, and the target check p99 <= flush + PUT p99 + ${TARGET_SLACK_MS} ms. About 8-10 minutes
on a busy 2-core machine (Ceph start included).

  --setups LIST         wal,fs,ceph,fs-10ms,fs-50ms (default all): wal = local WAL (fs store);
                        fs / ceph = diskless on the fs store / a Ceph RGW (or S3_ENDPOINT, see --s3);
                        fs-10ms / fs-50ms = diskless on the fs store, every request 10 / 50 ms later
  --writers LIST        concurrent single-append writers (default 1,16,64)
  --producers LIST      concurrent IdempotentProducers (default 1,16,64)
  --cell-ms MS          measured window per latency cell (default 5000)
  --warmup-ms MS        warm-up before each window (default 1000)
  --flush-ms MS         --wal-object-flush-ms of the diskless servers (default 20)
  --gib-mib MIB         MiB appended for PUTs per GiB, 0 to skip (default 128)
  --append-kib KIB      append size of that phase (default 64)
  --idle-streams N      streams of the idle phase, 0 to skip (default 1000)
  --idle-window-ms MS   measured idle window, extrapolated to an hour (default 30000)
  --s3 MODE             auto|env|ceph|off for the ceph setup (default auto: S3_ENDPOINT, else Ceph RGW)
  --data-root DIR       where data and fs-store directories go (default the OS temp dir)
`;

type SetupName = 'wal' | 'fs' | 'ceph' | 'fs-10ms' | 'fs-50ms';
const SETUP_NAMES: readonly SetupName[] = ['wal', 'fs', 'ceph', 'fs-10ms', 'fs-50ms'];

interface Setup {
  name: SetupName;
  durability: 'wal' | 'object-store';
  store: 'fs' | 's3';
  /** Added before every store request, ms. */
  storeDelayMs: number;
  label: string;
}

const SETUPS: Record<SetupName, Setup> = {
  wal: { name: 'wal', durability: 'wal', store: 'fs', storeDelayMs: 0, label: 'local WAL (fsync), fs store' },
  fs: { name: 'fs', durability: 'object-store', store: 'fs', storeDelayMs: 0, label: 'diskless, fs store' },
  ceph: { name: 'ceph', durability: 'object-store', store: 's3', storeDelayMs: 0, label: 'diskless, Ceph RGW (S3)' },
  'fs-10ms': { name: 'fs-10ms', durability: 'object-store', store: 'fs', storeDelayMs: 10, label: 'diskless, fs store +10 ms/request' },
  'fs-50ms': { name: 'fs-50ms', durability: 'object-store', store: 'fs', storeDelayMs: 50, label: 'diskless, fs store +50 ms/request' },
};

interface Options {
  setups: SetupName[];
  writers: number[];
  producers: number[];
  cellMs: number;
  warmupMs: number;
  flushMs: number;
  gibMiB: number;
  appendKiB: number;
  idleStreams: number;
  idleWindowMs: number;
  dataRoot: string;
}

// ---------------------------------------------------------------------------------------------
// A server under test.

interface Node {
  setup: Setup;
  running: RunningServer;
  baseUrl: string;
  port: number;
  statsPort: number;
  dataDir: string;
  storeDir: string | undefined;
}

async function launch(setup: Setup, options: Options, machine: Machine, s3: BenchS3 | undefined, extraFlags: readonly string[] = []): Promise<Node> {
  if (setup.store === 's3' && s3 === undefined) throw new Error(`${setup.name}: no S3 store`);
  const dataDir = makeDataDir(options.dataRoot, `diskless-${setup.name}`);
  // The fs store lives outside the data directory, as diskless mode wants it.
  const storeDir = setup.store === 'fs' ? makeDataDir(options.dataRoot, `diskless-${setup.name}-store`) : undefined;
  const port = await freePort();
  const statsPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const storeFlags = storeDir !== undefined ? ['--object-store', 'fs', '--fs-store-dir', storeDir] : (s3?.cairnFlags(`diskless-${setup.name}-${port}`) ?? []);
  const running = await startServer({
    command: [
      process.execPath, 'bench/lib/cairn-timed-store.ts', '--stats-port', String(statsPort), '--store-delay-ms', String(setup.storeDelayMs), '--',
      '--port', String(port), '--data-dir', dataDir, '--durability', setup.durability, '--log-level', 'warn',
      '--wal-object-flush-ms', String(options.flushMs),
      ...storeFlags,
      ...extraFlags,
    ],
    cwd: REPO_ROOT,
    pin: pinTo(machine, SERVER_CORE),
    readyUrl: `${baseUrl}${STREAM_PATH_ROOT}ready-probe`,
    env: setup.store === 's3' ? s3?.cairnEnv : undefined,
    readyTimeoutMs: READY_TIMEOUT_MS,
  });
  trackServerPid(running.pid);
  const node: Node = { setup, running, baseUrl, port, statsPort, dataDir, storeDir };
  for (let attempt = 0; ; attempt++) {
    try {
      await takePutLatencies(node);
      break;
    } catch (error) {
      if (attempt > 100) throw error;
      await sleep(50);
    }
  }
  return node;
}

async function stop(node: Node): Promise<string> {
  const exit = await node.running.stop();
  untrackServerPid(node.running.pid);
  removeDataDir(node.dataDir);
  if (node.storeDir !== undefined) removeDataDir(node.storeDir);
  return exit;
}

async function takePutLatencies(node: Node): Promise<PutLatencies> {
  const response = await fetch(`http://127.0.0.1:${node.statsPort}/put-latencies`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  if (response.status !== 200) throw new Error(`put-latencies answered ${response.status}`);
  return (await response.json()) as PutLatencies;
}

const OPERATIONS = ['put', 'get', 'head', 'list', 'delete', 'deleteMany'] as const;
type Operation = (typeof OPERATIONS)[number];

/** What the benchmark reads from a server's /metrics. */
interface MetricsSnapshot {
  requests: Record<Operation, number>;
  walObjectsStored: number;
  walObjectHeldBytes: number;
}

/** The value of the sample `name{…labels…}` (every label in `labels` must match) in a Prometheus text page; 0 if absent. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match === null || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) return Number(match[3]);
  }
  return 0;
}

async function scrape(node: Node): Promise<MetricsSnapshot> {
  const response = await fetch(`${node.baseUrl}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return {
    requests: Object.fromEntries(OPERATIONS.map((operation) => [operation, metricValue(text, 'cairn_object_store_requests_total', { operation })])) as Record<Operation, number>,
    walObjectsStored: metricValue(text, 'cairn_wal_objects_stored_total'),
    walObjectHeldBytes: metricValue(text, 'cairn_wal_object_held_bytes'),
  };
}

function requestsBetween(before: MetricsSnapshot, after: MetricsSnapshot): Record<Operation, number> {
  return Object.fromEntries(OPERATIONS.map((operation) => [operation, after.requests[operation] - before.requests[operation]])) as Record<Operation, number>;
}

async function call(url: string, init: RequestInit, expected: readonly number[]): Promise<Response> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  await response.arrayBuffer();
  if (!expected.includes(response.status)) throw new Error(`${init.method ?? 'GET'} ${url}: status ${response.status}`);
  return response;
}

// ---------------------------------------------------------------------------------------------
// Latency cells.

interface Latency {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summarise(samplesMs: readonly number[]): Latency {
  const summary = summariseLatencies(samplesMs);
  const meanMs = samplesMs.length === 0 ? Number.NaN : samplesMs.reduce((sum, value) => sum + value, 0) / samplesMs.length;
  return { count: summary.count, meanMs, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, maxMs: summary.maxMs };
}

interface LatencyCell {
  setup: SetupName;
  client: 'append' | 'producer';
  /** Concurrent writers or producers. */
  concurrency: number;
  ack: Latency;
  /** Acknowledged appends (or producer messages) per second in the window. */
  ackedPerS: number;
  non2xxCount: number;
  errorCount: number;
  errors: string[];
  windowS: number;
  /** Store puts of WAL objects started in the window, timed in the server around the store (delay included). */
  walPut: Latency;
  otherPutCount: number;
  /** Store requests by operation in the window (server metrics: every attempt). */
  requests: Record<Operation, number>;
  walObjectsStored: number;
  /** Store PUTs per GiB of acknowledged 100-byte messages, at this cell's rate. */
  putsPerGiB: number;
  serverCpuPercent: number;
  /** This process (the clients), % of one core. */
  clientCpuPercent: number;
  /** All other processes but this one, the server and the Ceph store, % of one core. */
  otherCpuPercent: number;
  /** Ceph's processes (mon, osd, rgw), % of one core; 0 without Ceph. */
  storeCpuPercent: number;
  loadAverage1m: number;
}

interface WindowProbe {
  metrics: MetricsSnapshot;
  atMs: number;
  serverCpuS: number;
  ownCpuUs: number;
  all: ReturnType<typeof snapshotAllProcessesCpu>;
}

async function probe(node: Node): Promise<WindowProbe> {
  const usage = process.cpuUsage();
  return { metrics: await scrape(node), atMs: performance.now(), serverCpuS: processCpuSeconds(node.running.pid), ownCpuUs: usage.user + usage.system, all: snapshotAllProcessesCpu() };
}

/**
 * Runs `work(inWindow)` until the window ends; `inWindow()` says whether a sample started now
 * belongs to the window. Probes the server at the window's start and end.
 */
async function measuredWindow(
  node: Node,
  options: Options,
  storePids: readonly number[],
  work: (inWindow: () => boolean, windowEndMs: number) => Promise<{ samplesMs: number[]; non2xxCount: number; errorCount: number; errors: string[] }>,
): Promise<Omit<LatencyCell, 'setup' | 'client' | 'concurrency'>> {
  const windowStartMs = performance.now() + options.warmupMs;
  const windowEndMs = windowStartMs + options.cellMs;
  // The server reports put starts in Unix time: a put counts when it started inside the window.
  const inWindowPut = ([startedAtMs]: PutSample) => startedAtMs >= performance.timeOrigin + windowStartMs && startedAtMs < performance.timeOrigin + windowEndMs;
  let opened = false;
  const started = sleep(options.warmupMs).then(async () => {
    await takePutLatencies(node);
    const before = await probe(node);
    opened = true;
    return before;
  });
  const outcome = await work(() => opened && performance.now() < windowEndMs, windowEndMs);
  const before = await started;
  const puts = await takePutLatencies(node);
  const after = await probe(node);
  const windowS = (after.atMs - before.atMs) / 1000;
  const excluded = new Set([process.pid, node.running.pid, ...storePids]);
  const others = cpuOfOthers(before.all, after.all, excluded);
  const storeCpuS = storePids.reduce((sum, pid) => sum + Math.max(0, (after.all.get(pid)?.cpuS ?? 0) - (before.all.get(pid)?.cpuS ?? 0)), 0);
  const requests = requestsBetween(before.metrics, after.metrics);
  const ackedBytes = outcome.samplesMs.length * MESSAGE_BYTES;
  return {
    ack: summarise(outcome.samplesMs),
    ackedPerS: outcome.samplesMs.length / (options.cellMs / 1000),
    non2xxCount: outcome.non2xxCount,
    errorCount: outcome.errorCount,
    errors: outcome.errors,
    windowS,
    walPut: summarise(puts.wal.filter(inWindowPut).map(([, latencyMs]) => latencyMs)),
    otherPutCount: puts.other.filter(inWindowPut).length,
    requests,
    walObjectsStored: after.metrics.walObjectsStored - before.metrics.walObjectsStored,
    putsPerGiB: ackedBytes === 0 ? Number.NaN : requests.put / (ackedBytes / GIB),
    serverCpuPercent: ((after.serverCpuS - before.serverCpuS) / windowS) * 100,
    clientCpuPercent: ((after.ownCpuUs - before.ownCpuUs) / 1e6 / windowS) * 100,
    otherCpuPercent: (others.cpuS / windowS) * 100,
    storeCpuPercent: (storeCpuS / windowS) * 100,
    loadAverage1m: os.loadavg()[0] ?? Number.NaN,
  };
}

const ERRORS_KEPT = 5;

async function appendCell(node: Node, writers: number, options: Options, storePids: readonly number[]): Promise<LatencyCell> {
  const path = `${STREAM_PATH_ROOT}diskless/append-${writers}-${Date.now()}`;
  await call(`${node.baseUrl}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } }, [201]);
  const body = Buffer.alloc(MESSAGE_BYTES, 97);
  const clients = Array.from({ length: writers }, () => new RawHttpClient('127.0.0.1', node.port));
  const ignoreBody = () => {};
  try {
    const measured = await measuredWindow(node, options, storePids, async (inWindow, windowEndMs) => {
      const samplesMs: number[] = [];
      const errors: string[] = [];
      let non2xxCount = 0;
      let errorCount = 0;
      await Promise.all(
        clients.map(async (client) => {
          while (performance.now() < windowEndMs && errorCount < SOCKET_ERRORS_MAX) {
            let startedMs = 0;
            let counted = false;
            try {
              const response = await client.post(path, 'application/octet-stream', body, ignoreBody, () => {
                startedMs = performance.now();
                counted = inWindow();
              });
              const latencyMs = performance.now() - startedMs;
              if (response.status < 200 || response.status >= 300) {
                if (counted) non2xxCount++;
              } else if (counted) samplesMs.push(latencyMs);
            } catch (error) {
              errorCount++;
              if (errors.length < ERRORS_KEPT) errors.push((error as Error).message);
            }
          }
        }),
      );
      return { samplesMs, non2xxCount, errorCount, errors };
    });
    return { setup: node.setup.name, client: 'append', concurrency: writers, ...measured };
  } finally {
    for (const client of clients) client.close();
  }
}

/** `{"p":<p>,"i":<i>,"pad":"xxx…"}`, exactly MESSAGE_BYTES long. */
function producerMessage(producer: number, index: number): string {
  const bare = JSON.stringify({ p: producer, i: index, pad: '' }).length;
  return JSON.stringify({ p: producer, i: index, pad: 'x'.repeat(Math.max(0, MESSAGE_BYTES - bare)) });
}

async function producerCell(node: Node, producerCount: number, options: Options, storePids: readonly number[]): Promise<LatencyCell> {
  const url = `${node.baseUrl}${STREAM_PATH_ROOT}diskless/producer-${producerCount}-${Date.now()}`;
  await call(url, { method: 'PUT', headers: { 'content-type': 'application/json' } }, [201]);
  let non2xxCount = 0;
  let errorCount = 0;
  const errors: string[] = [];
  let windowOpen: () => boolean = () => false;
  const countingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status !== 200 && windowOpen()) non2xxCount++;
    return response;
  };
  const onError = (error: Error) => {
    errorCount++;
    if (errors.length < ERRORS_KEPT) errors.push(error.message);
  };
  const stream = new DurableStream({ url, contentType: 'application/json' });
  const producers = Array.from({ length: producerCount }, (_, index) => new IdempotentProducer(stream, `diskless-bench-${index}`, { fetch: countingFetch, onError }));
  const measured = await measuredWindow(node, options, storePids, async (inWindow, windowEndMs) => {
    windowOpen = inWindow;
    const samplesMs: number[] = [];
    await Promise.all(
      producers.map(async (producer, producerIndex) => {
        for (let index = 0; performance.now() < windowEndMs && errorCount < SOCKET_ERRORS_MAX; index++) {
          const message = producerMessage(producerIndex, index);
          const counted = inWindow();
          const errorsBefore = errorCount;
          const startedMs = performance.now();
          producer.append(message);
          await producer.flush();
          const latencyMs = performance.now() - startedMs;
          if (counted && errorCount === errorsBefore) samplesMs.push(latencyMs);
        }
      }),
    );
    return { samplesMs, non2xxCount, errorCount, errors };
  });
  return { setup: node.setup.name, client: 'producer', concurrency: producerCount, ...measured };
}

// ---------------------------------------------------------------------------------------------
// PUTs per GiB and per idle hour.

/**
 * Waits until every path is wholly sealed, then (with `untilCheckpointed`, diskless) until a
 * checkpoint has folded every WAL object away (`cairn_wal_object_held_bytes` 0; the server does
 * that at most once a minute, DISKLESS_CHECKPOINT_INTERVAL_MS), then until the PUT count has been
 * still for PUTS_QUIET_MS.
 */
async function settle(node: Node, paths: readonly string[], untilCheckpointed = false): Promise<void> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  for (const path of paths) await waitUntilSealed(`${node.baseUrl}${path}`, Math.max(0, deadline - performance.now()));
  while (untilCheckpointed && (await scrape(node)).walObjectHeldBytes > 0) {
    if (performance.now() > deadline) throw new Error(`WAL objects not checkpointed away within ${SETTLE_TIMEOUT_MS} ms`);
    await sleep(500);
  }
  await waitUntilStill(async () => (await scrape(node)).requests.put, { quietMs: PUTS_QUIET_MS, pollMs: 250, deadlineMs: deadline, timeoutMessage: `PUTs still going after ${SETTLE_TIMEOUT_MS} ms` });
}

interface GibResult {
  setup: SetupName;
  appendedBytes: number;
  appendBytes: number;
  writers: number;
  appendS: number;
  /** Appended MiB per second while writing. */
  mibPerS: number;
  /** PUTs from the first append until the closed stream was sealed and the PUT count still. */
  puts: number;
  putsPerGiB: number;
  walObjectsStored: number;
  walObjectsPerGiB: number;
  /** PUTs that were not diskless WAL objects (segments, manifests, checkpoints). */
  otherPutsPerGiB: number;
  requests: Record<Operation, number>;
}

async function gibPhase(setup: Setup, options: Options, machine: Machine): Promise<GibResult> {
  const node = await launch(setup, options, machine, undefined);
  try {
    const path = `${STREAM_PATH_ROOT}diskless/gib`;
    await call(`${node.baseUrl}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } }, [201]);
    const appendBytes = options.appendKiB * 1024;
    const appendCount = Math.ceil((options.gibMiB * MIB) / appendBytes);
    const body = Buffer.alloc(appendBytes, 98);
    const before = await scrape(node);
    const startedMs = performance.now();
    let issued = 0;
    await Promise.all(
      Array.from({ length: GIB_WRITERS }, async () => {
        const client = new RawHttpClient('127.0.0.1', node.port);
        try {
          while (issued < appendCount) {
            issued++;
            const response = await client.post(path, 'application/octet-stream', body, () => {});
            if (response.status < 200 || response.status >= 300) throw new Error(`append answered ${response.status}`);
          }
        } finally {
          client.close();
        }
      }),
    );
    const appendS = (performance.now() - startedMs) / 1000;
    await call(`${node.baseUrl}${path}`, { method: 'POST', headers: { 'stream-closed': 'true' } }, [200, 204]);
    await settle(node, [path]);
    const after = await scrape(node);
    const requests = requestsBetween(before, after);
    const appendedBytes = appendCount * appendBytes;
    const gib = appendedBytes / GIB;
    const walObjectsStored = after.walObjectsStored - before.walObjectsStored;
    return {
      setup: setup.name,
      appendedBytes,
      appendBytes,
      writers: GIB_WRITERS,
      appendS,
      mibPerS: appendedBytes / MIB / appendS,
      puts: requests.put,
      putsPerGiB: requests.put / gib,
      walObjectsStored,
      walObjectsPerGiB: walObjectsStored / gib,
      otherPutsPerGiB: (requests.put - walObjectsStored) / gib,
      requests,
    };
  } finally {
    await stop(node);
  }
}

interface IdleResult {
  setup: SetupName;
  streamCount: number;
  /** Seconds from the last append until every stream was sealed (diskless: and checkpointed) and the PUT count still. */
  settleS: number;
  /** Requests by operation from the first create until settled (a one-time cost, not idle). */
  setupRequests: Record<Operation, number>;
  windowS: number;
  /** Requests by operation in the window, and extrapolated to an hour (window × 3600 / windowS). */
  windowRequests: Record<Operation, number>;
  extrapolatedPerHour: Record<Operation, number>;
  walObjectsInWindow: number;
  walObjectHeldBytes: number;
}

async function idlePhase(setup: Setup, options: Options, machine: Machine): Promise<IdleResult> {
  const node = await launch(setup, options, machine, undefined, ['--seal-idle-ms', String(IDLE_SEAL_MS)]);
  try {
    const start = await scrape(node);
    const paths = Array.from({ length: options.idleStreams }, (_, index) => `${STREAM_PATH_ROOT}diskless/idle-${index}`);
    const body = Buffer.alloc(MESSAGE_BYTES, 99);
    for (let index = 0; index < paths.length; index += 16) {
      await Promise.all(
        paths.slice(index, index + 16).map(async (path) => {
          await call(`${node.baseUrl}${path}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } }, [201]);
          await call(`${node.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body }, [200, 204]);
        }),
      );
    }
    const settleStartedMs = performance.now();
    await settle(node, paths, setup.durability === 'object-store');
    const settleS = (performance.now() - settleStartedMs) / 1000;
    const before = await scrape(node);
    const beforeMs = performance.now();
    await sleep(options.idleWindowMs);
    const after = await scrape(node);
    const windowS = (performance.now() - beforeMs) / 1000;
    const windowRequests = requestsBetween(before, after);
    const extrapolatedPerHour = Object.fromEntries(OPERATIONS.map((operation) => [operation, (windowRequests[operation] * 3600) / windowS])) as Record<Operation, number>;
    return {
      setup: setup.name,
      streamCount: options.idleStreams,
      settleS,
      setupRequests: requestsBetween(start, before),
      windowS,
      windowRequests,
      extrapolatedPerHour,
      walObjectsInWindow: after.walObjectsStored - before.walObjectsStored,
      walObjectHeldBytes: after.walObjectHeldBytes,
    };
  } finally {
    await stop(node);
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

function ms(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function count(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '-';
}

function cellNote(cell: LatencyCell): string {
  const notes: string[] = [];
  if (cell.non2xxCount > 0) notes.push(`${cell.non2xxCount} non-2xx`);
  if (cell.errorCount > 0) notes.push(`${cell.errorCount} errors`);
  if (cell.clientCpuPercent >= 90) notes.push('client saturated?');
  if (cell.otherCpuPercent >= 15) notes.push(`others ${Math.round(cell.otherCpuPercent)}%`);
  return notes.join(', ');
}

function latencyRows(cells: readonly LatencyCell[], flushMs: number): string[][] {
  return cells.map((cell) => {
    const diskless = SETUPS[cell.setup].durability === 'object-store';
    const boundMs = flushMs + cell.walPut.p99Ms + TARGET_SLACK_MS;
    const p50BoundMs = flushMs + cell.walPut.p50Ms + TARGET_SLACK_MS;
    return [
      cell.setup,
      `${cell.client} ×${cell.concurrency}`,
      ms(cell.ack.p50Ms),
      ms(cell.ack.p99Ms),
      ms(cell.ack.meanMs),
      ms(cell.ack.maxMs),
      count(cell.ackedPerS),
      diskless ? ms(cell.walPut.p50Ms) : '-',
      diskless ? ms(cell.walPut.p99Ms) : '-',
      diskless ? count(cell.walObjectsStored / cell.windowS) : '-',
      count(cell.putsPerGiB),
      diskless ? `${ms(boundMs)} ${cell.ack.p99Ms <= boundMs ? 'met' : 'MISSED'}` : '-',
      diskless ? `${ms(p50BoundMs)} ${cell.ack.p50Ms <= p50BoundMs ? 'met' : 'over'}` : '-',
      `${Math.round(cell.serverCpuPercent)}%`,
      `${Math.round(cell.clientCpuPercent)}%`,
      cellNote(cell),
    ];
  });
}

const LATENCY_HEADER = ['setup', 'client', 'p50 ms', 'p99 ms', 'mean ms', 'max ms', 'acks/s', 'PUT p50', 'PUT p99', 'WAL obj/s', 'PUTs/GiB', 'p99 bound', 'p50 bound', 'server CPU', 'client CPU', 'note'];

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      setups: { type: 'string', default: SETUP_NAMES.join(',') },
      writers: { type: 'string', default: '1,16,64' },
      producers: { type: 'string', default: '1,16,64' },
      'cell-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      'flush-ms': { type: 'string', default: '20' },
      'gib-mib': { type: 'string', default: '128' },
      'append-kib': { type: 'string', default: '64' },
      'idle-streams': { type: 'string', default: '1000' },
      'idle-window-ms': { type: 'string', default: '30000' },
      s3: { type: 'string', default: 'auto' },
      'data-root': { type: 'string', default: os.tmpdir() },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const list = (flag: string, text: string, min: number, max: number) => (text.trim() === '' ? [] : text.split(',').map((part) => wholeNumberFlag(flag, part.trim(), min, max)));
  const setups = values.setups.split(',').map((name) => name.trim()) as SetupName[];
  for (const name of setups) if (!SETUP_NAMES.includes(name)) throw new Error(`unknown setup "${name}"; choose from ${SETUP_NAMES.join(', ')}`);
  const s3Mode = s3ModeFlag(values.s3);
  const options: Options = {
    setups,
    writers: list('writers', values.writers, 1, 1024),
    producers: list('producers', values.producers, 1, 1024),
    cellMs: wholeNumberFlag('cell-ms', values['cell-ms'], 100, 600_000),
    warmupMs: wholeNumberFlag('warmup-ms', values['warmup-ms'], 0, 600_000),
    flushMs: wholeNumberFlag('flush-ms', values['flush-ms'], 0, 10_000),
    gibMiB: wholeNumberFlag('gib-mib', values['gib-mib'], 0, 65_536),
    appendKiB: wholeNumberFlag('append-kib', values['append-kib'], 1, 65_536),
    idleStreams: wholeNumberFlag('idle-streams', values['idle-streams'], 0, 1_000_000),
    idleWindowMs: wholeNumberFlag('idle-window-ms', values['idle-window-ms'], 1_000, 3_600_000),
    dataRoot: values['data-root'],
  };
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  const s3From = setups.includes('ceph') ? s3Source(s3Mode) : ({ kind: 'off', reason: 'not asked for' } as const);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(
    [
      ...benchHeader('diskless benchmark', machine),
      `load average at start: ${os.loadavg().map((value) => value.toFixed(2)).join(' ')}; server pinned to core ${SERVER_CORE}${machine.tasksetAvailable ? '' : ' (taskset unavailable: not pinned)'}, clients in this process`,
      `data and fs-store dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); diskless --wal-object-flush-ms ${options.flushMs}, default --wal-object-bytes; ` +
        `cells: ${options.warmupMs} ms warm-up + ${options.cellMs} ms window; S3 for the ceph setup: ${s3From.kind === 'off' ? `off (${s3From.reason})` : s3From.kind}`,
      '',
    ].join('\n'),
  );

  let s3: BenchS3 | undefined;
  let s3Failure: string | undefined;
  const cells: LatencyCell[] = [];
  const failures: string[] = [];
  let gib: GibResult[] = [];
  let idle: IdleResult[] = [];
  try {
    if (setups.includes('ceph') && s3From.kind !== 'off') {
      try {
        s3 = await startBenchS3(s3From);
        if (s3.tempDir !== undefined) trackDataDir(s3.tempDir);
        say(`S3: ${s3.description}${s3.startMs > 0 ? `, started in ${(s3.startMs / 1000).toFixed(1)} s` : ''}`);
      } catch (error) {
        s3Failure = (error as Error).message.split('\n')[0];
        say(`S3 FAILED to start: ${s3Failure}`);
      }
    }
    for (const name of setups) {
      const setup = SETUPS[name];
      if (setup.store === 's3' && s3 === undefined) {
        say(`${name}: skipped (${s3Failure ?? (s3From.kind === 'off' ? s3From.reason : 'no S3')})`);
        continue;
      }
      let node: Node | undefined;
      try {
        node = await launch(setup, options, machine, s3);
        const storePids = setup.store === 's3' ? (s3?.pids ?? []) : [];
        for (const writers of options.writers) {
          const cell = await appendCell(node, writers, options, storePids);
          cells.push(cell);
          say(`${name}: ${setup.label}: append ×${writers}: p50 ${ms(cell.ack.p50Ms)} ms, p99 ${ms(cell.ack.p99Ms)} ms, mean ${ms(cell.ack.meanMs)} ms (${count(cell.ack.count)} acks; WAL PUT p99 ${ms(cell.walPut.p99Ms)} ms) ${cellNote(cell)}`);
        }
        for (const producers of options.producers) {
          const cell = await producerCell(node, producers, options, storePids);
          cells.push(cell);
          say(`${name}: ${setup.label}: producer ×${producers}: p50 ${ms(cell.ack.p50Ms)} ms, p99 ${ms(cell.ack.p99Ms)} ms, mean ${ms(cell.ack.meanMs)} ms (${count(cell.ack.count)} acks; WAL PUT p99 ${ms(cell.walPut.p99Ms)} ms) ${cellNote(cell)}`);
        }
        if (node.running.exitedEarly()) throw new Error(`server exited during the run:\n${node.running.outputTail()}`);
      } catch (error) {
        const message = `${name}: ${(error as Error).message}${node === undefined ? '' : `\n--- server output (tail) ---\n${node.running.outputTail()}`}`;
        failures.push(message);
        say(`FAILED ${message}`);
      } finally {
        if (node !== undefined) await stop(node);
      }
    }
  } finally {
    await s3?.stop();
  }

  const costSetups = (['wal', 'fs'] as const).filter((name) => setups.includes(name));
  if (options.gibMiB > 0) {
    for (const name of costSetups) {
      try {
        const result = await gibPhase(SETUPS[name], options, machine);
        gib = [...gib, result];
        say(
          `${name}: PUTs per GiB: ${options.gibMiB} MiB in ${options.appendKiB} KiB appends from ${GIB_WRITERS} writers (${result.mibPerS.toFixed(0)} MiB/s), closed and sealed: ` +
            `${result.puts} PUTs = ${result.putsPerGiB.toFixed(0)} per GiB (${result.walObjectsPerGiB.toFixed(0)} WAL objects + ${result.otherPutsPerGiB.toFixed(0)} other)`,
        );
      } catch (error) {
        failures.push(`${name} PUTs per GiB: ${(error as Error).message}`);
        say(`FAILED ${name} PUTs per GiB: ${(error as Error).message}`);
      }
    }
  }
  if (options.idleStreams > 0) {
    for (const name of costSetups) {
      try {
        const result = await idlePhase(SETUPS[name], options, machine);
        idle = [...idle, result];
        say(
          `${name}: idle: ${result.streamCount} streams created, one append each, sealed (--seal-idle-ms ${IDLE_SEAL_MS})${SETUPS[name].durability === 'object-store' ? ' and checkpointed' : ''} ${result.settleS.toFixed(1)} s after the last append; ` +
            `${result.setupRequests.put} PUTs, ${result.setupRequests.list} LISTs, ${result.setupRequests.delete + result.setupRequests.deleteMany} DELETEs to get there; ` +
            `in ${result.windowS.toFixed(0)} s idle: ${result.windowRequests.put} PUTs, ${result.windowRequests.get} GETs, ${result.windowRequests.list} LISTs => ${count(result.extrapolatedPerHour.put)} PUTs per hour (extrapolated)`,
        );
      } catch (error) {
        failures.push(`${name} idle: ${(error as Error).message}`);
        say(`FAILED ${name} idle: ${(error as Error).message}`);
      }
    }
  }

  say(`\nack latency (ms; PUT = WAL-object put timed in the server around the store, same window; p99 bound = flush ${options.flushMs} + PUT p99 + ${TARGET_SLACK_MS}):\n`);
  say(formatTable(LATENCY_HEADER, latencyRows(cells, options.flushMs), 2));
  say('\ndiskless ÷ wal, same run (p99 and mean):');
  for (const cell of cells) {
    if (cell.setup === 'wal') continue;
    const base = cells.find((candidate) => candidate.setup === 'wal' && candidate.client === cell.client && candidate.concurrency === cell.concurrency);
    if (base === undefined) continue;
    say(`  ${cell.setup.padEnd(8)} ${`${cell.client} ×${cell.concurrency}`.padEnd(14)} p99 ${(cell.ack.p99Ms / base.ack.p99Ms).toFixed(1)}x  mean ${(cell.ack.meanMs / base.ack.meanMs).toFixed(1)}x`);
  }
  if (gib.length > 0) {
    say(`\nPUTs per GiB appended (fs store, ${options.appendKiB} KiB appends, ${GIB_WRITERS} writers, stream closed and sealed):\n`);
    say(
      formatTable(
        ['setup', 'MiB', 'MiB/s', 'PUTs', 'PUTs/GiB', 'WAL objects/GiB', 'other PUTs/GiB'],
        gib.map((result) => [result.setup, count(result.appendedBytes / MIB), result.mibPerS.toFixed(0), count(result.puts), count(result.putsPerGiB), count(result.walObjectsPerGiB), count(result.otherPutsPerGiB)]),
      ),
    );
  }
  if (idle.length > 0) {
    say(`\nidle: requests per hour with ${options.idleStreams} sealed idle streams, diskless after its checkpoint (EXTRAPOLATED from a ${(options.idleWindowMs / 1000).toFixed(0)} s window):\n`);
    say(
      formatTable(
        ['setup', 'window s', 'PUTs in window', 'PUTs/hour (extrap.)', 'GETs/hour', 'LISTs/hour', 'DELETEs/hour', 'WAL objects in window', 'setup PUTs (one-time)'],
        idle.map((result) => [
          result.setup,
          result.windowS.toFixed(0),
          count(result.windowRequests.put),
          // Zero in the window says only that the rate is below one per window.
          result.windowRequests.put === 0 ? `0 (< ${count(3600 / result.windowS)})` : count(result.extrapolatedPerHour.put),
          count(result.extrapolatedPerHour.get),
          count(result.extrapolatedPerHour.list),
          count(result.extrapolatedPerHour.delete + result.extrapolatedPerHour.deleteMany),
          count(result.walObjectsInWindow),
          count(result.setupRequests.put),
        ]),
      ),
    );
  }

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `diskless-${fileTimestamp()}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, loadAverageAtEnd: os.loadavg(), options, s3: s3?.description, s3Failure, cells, gib, idle, failures }, null, 2)}\n`);
  say(`raw results: ${resultsPath}`);

  const targets: TargetCheck[] = cells
    .filter((cell) => SETUPS[cell.setup].durability === 'object-store')
    .map((cell) =>
      checkTarget(
        `diskless ack, ${cell.setup}, ${cell.client} ×${cell.concurrency}`,
        'p99 ms',
        cell.ack.p99Ms,
        'at-most',
        options.flushMs + cell.walPut.p99Ms + TARGET_SLACK_MS,
        `flush ${options.flushMs} + PUT p99 ${ms(cell.walPut.p99Ms)} + ${TARGET_SLACK_MS}`,
      ),
    );
  if (failures.length > 0) throw new Error(`${failures.length} part(s) failed:\n${failures.join('\n')}`);
  return { resultsPath, targets };
}
