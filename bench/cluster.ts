/**
 * Cluster (issue 14, "Speed"): three `cairn serve` nodes coordinated by a real 3-member etcd on
 * loopback, sharing one object store, against one node alone, in the same run, alternating.
 *
 *   npm run bench -- cluster [--repeat 2] [--duration-ms 5000] [--warmup-ms 1000] [--nodes 3]
 *                            [--streams 1000] [--writers 64] [--body-bytes 100]
 *                            [--history-streams 64] [--history-bytes 262144] [--readers 16]
 *                            [--live-duration-ms 5000] [--live-interval-ms 10] [--live-readers 3]
 *                            [--routed on] [--s3 off|auto|env|ceph] [--data-root DIR]
 *
 * Each cell (configuration × repetition) starts fresh nodes in fresh data directories (`--durability
 * wal`; the cluster's nodes join a fresh cluster name on the run's etcd and share one store: a
 * filesystem store directory, or S3 with `--s3`), waits until every node is ready and owns its
 * rendezvous share of the slots, creates the streams, measures the nodes idle for 3 s (their
 * background CPU: keep-alives, watches, timers), then runs three phases, each measured on its own:
 *
 * 1. appends: wrk (bench/lib/append.lua) with `--writers` connections split evenly over the nodes
 *    (one wrk per node), `--body-bytes` POSTs rotating over `--streams` streams, so each request
 *    reaches a node unrelated to its stream's owner, as behind a load balancer without stickiness.
 *    `--routed on` adds a configuration, "N nodes routed", whose wrk per node sends only the streams
 *    that node owns (nothing forwarded): the cluster's own costs without the hop.
 * 2. catch-up reads of sealed history: `--history-streams` closed streams of `--history-bytes`
 *    each, written before and waited for until wholly sealed; wrk (bench/lib/catch-up.lua) reads
 *    them whole from the start (`?offset=-1`, one response each), `--readers` connections split
 *    over the nodes. Any node answers these from the object store (docs/cluster.md "Reads").
 * 3. live tail delivery: bench/lib/live-generator.ts, one writer appending every
 *    `--live-interval-ms` through a node that does not own the stream (its appends are
 *    forwarded), `--live-readers` long-poll and as many SSE readers, spread over the nodes.
 *
 * Per phase: rate, p50/p99, CPU of every node over the window (/proc), CPU µs per request per node
 * and summed, the forwarded share (each node's `cairn_forwarded_requests_total` over the window,
 * summed, over the requests answered), etcd's CPU, everyone else's CPU; for catch-up reads also
 * the segment cache's hit share and object-store requests per read (the nodes' /metrics). Nothing is pinned: three
 * nodes and their load generators share the machine's cores. Then medians per configuration,
 * cluster ÷ single ratios, and a projection (labelled as such) from the measured CPU per append
 * net of idle.
 * Raw results: bench/results/cluster-<timestamp>.json.
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rendezvousAssignment, slotOf } from '../src/cluster/slots.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT } from '../src/config/limits.ts';
import { startEtcd, type EtcdCluster } from '../test/support/etcd.ts';
import { wholeSeconds } from './append.ts';
import { s3ModeFlag, s3Source, startBenchS3, type BenchS3, type S3Mode } from './lib/bench-s3.ts';
import { benchHeader, cellFlags, fileTimestamp, installInterruptCleanup, makeDataDir, removeDataDir, STREAM_PATH_ROOT, trackDataDir, trackServerPid, untrackServerPid, wholeNumberFlag, type FlaggableCell } from './lib/bench-server.ts';
import { cpuOfOthers, processCpuSeconds, snapshotAllProcessesCpu, type OthersCpu } from './lib/cpu.ts';
import type { LatencySummary } from './lib/latency-summary.ts';
import { runLiveGenerator, type LiveGeneratorResult } from './lib/live-generator.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { forEachConcurrently } from './lib/concurrently.ts';
import { median } from './lib/median.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatShare, formatTable, formatUs } from './lib/table.ts';
import { appendScript, catchUpScript, combineWrkResults, runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult, type WrkScript } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const STREAM_DIR = 'bench/cluster/';
const APPEND_PREFIX = `${STREAM_PATH_ROOT}${STREAM_DIR}a`;
const HISTORY_PREFIX = `${STREAM_PATH_ROOT}${STREAM_DIR}h`;
const LIVE_NAME = `${STREAM_DIR}live`;
const REQUEST_CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 10_000;
/** Node start and the slots' first assignment; a cluster node waits for etcd and the leader's map. */
const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 200;
/** Closed history is sealed within seconds; bounded generously for a busy machine. */
const SEALED_TIMEOUT_MS = 120_000;
/** How long a request retries 503s (a slot moving while the cluster settles). */
const RETRY_503_TIMEOUT_MS = 30_000;
const RETRY_PAUSE_MS = 100;
const HISTORY_APPEND_BYTES = 64 * 1024;
/** The idle window before the phases: what the nodes burn without load (keep-alives, watches, timers). */
const IDLE_WINDOW_MS = 3_000;
const LIVE_MESSAGE_BYTES = 100;
const LIVE_WARMUP_MS = 1_000;
/** The projection's cluster sizes (nodes, one core each). */
const PROJECTED_NODES = [3, 8, 16] as const;

const USAGE = `usage: npm run bench -- cluster [flags]

A 3-node cluster (3 etcd members, 3 cairn serve nodes on loopback, one shared object store)
against one node, in the same run, alternating, --repeat times each. Phases per cell: small
appends over many streams sent to random nodes; catch-up reads of sealed history from any node;
live tail delivery (writer and readers on different nodes). Reports rates, p50/p99, the
forwarded share and CPU per request per node, cluster / single ratios and a projection.
Nothing is pinned.

  --repeat 2               cells per configuration (medians over these)
  --duration-ms 5000       measured wrk run per phase (whole seconds)
  --warmup-ms 1000         wrk warm-up per phase (whole seconds)
  --nodes 3                cluster size (the other configuration is one node)
  --streams 1000           append streams (requests rotate over them)
  --writers 64             append connections, split over the nodes
  --body-bytes 100         append size
  --history-streams 64     closed, sealed streams for the catch-up phase
  --history-bytes 262144   bytes per history stream (one read response each: keep it <= 4 MiB)
  --readers 16             catch-up connections, split over the nodes
  --live-duration-ms 5000  live phase: measured appends for this long (after 1 s of warm-up)
  --live-interval-ms 10    live phase: one append every this many ms
  --live-readers 3         live phase: long-poll readers, and as many SSE readers, spread over the nodes
  --routed on              also the cluster with each append sent to its stream's owner (nothing
                           forwarded: the cluster without the hop); off: skip it
  --s3 off                 shared store: off = a filesystem store directory; auto|env|ceph = S3
                           (S3_ENDPOINT, or a throwaway Ceph RGW; see bench/README.md "cold-read")
  --data-root DIR          where the temporary data directories go (default: the OS temp dir)

About 50 s per cell on a busy 2-core machine: 6 cells take about 5 minutes with the defaults.
`;

interface ClusterOptions {
  durationS: number;
  warmupS: number;
  repeatCount: number;
  nodeCount: number;
  streamCount: number;
  connectionCount: number;
  bodyBytes: number;
  historyStreamCount: number;
  historyBytes: number;
  readConnectionCount: number;
  liveDurationMs: number;
  liveIntervalMs: number;
  liveReaderCount: number;
  routed: boolean;
  s3: S3Mode;
  dataRoot: string;
}

interface Config {
  label: string;
  nodeCount: number;
  /** Cluster mode (etcd); false: a plain `cairn serve`. */
  cluster: boolean;
  /** Appends sent only to their stream's owner (nothing forwarded): the cluster without the hop. */
  routed: boolean;
}

/** One node of a cell. */
interface BenchNode {
  id: string;
  baseUrl: string;
  running: RunningServer;
}

/** What one measured window saw, beyond the load's own result. */
interface Window {
  elapsedS: number;
  /** CPU % of one core, per node. */
  nodeCpuPercent: number[];
  /** CPU seconds per node. */
  nodeCpuS: number[];
  /** Share of the nodes' CPU spent in the kernel (system time: socket I/O, fdatasync, page cache). */
  nodeSystemShare: number;
  /** Forwarded requests per node over the window (answered by the owner). */
  forwarded: number[];
  /** Over the window, all nodes: segment cache hits and misses, object-store requests. */
  cacheHits: number;
  cacheMisses: number;
  storeRequests: number;
  etcdCpuPercent: number;
  otherCpuPercent: number;
  otherCpuTop: OthersCpu['top'];
}

interface WrkPhase extends Window {
  wrk: WrkResult;
  /** 2xx responses. */
  answered: number;
  /** 2xx responses per second. */
  ratePerS: number;
  /** CPU µs per answered request, per node (that node's CPU over every request in the cluster). */
  cpuUsPerRequestByNode: number[];
  cpuUsPerRequest: number;
  forwardedShare: number;
  /** Catch-up phase: response bytes per request (the stream plus headers). */
  bytesPerRequest: number;
}

interface LivePhase extends Window {
  result: LiveGeneratorResult;
  writerNode: string;
  ownerNode: string;
}

interface ClusterCell extends FlaggableCell {
  config: Config;
  repetition: number;
  nodeIds: string[];
  startMs?: number;
  /** The nodes without load (streams created, history sealed), before the phases. */
  idle?: Window;
  appends?: WrkPhase;
  reads?: WrkPhase;
  live?: LivePhase;
}

function parseOptions(args: string[]): ClusterOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      repeat: { type: 'string', default: '2' },
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      nodes: { type: 'string', default: '3' },
      streams: { type: 'string', default: '1000' },
      writers: { type: 'string', default: '64' },
      'body-bytes': { type: 'string', default: '100' },
      'history-streams': { type: 'string', default: '64' },
      'history-bytes': { type: 'string', default: '262144' },
      readers: { type: 'string', default: '16' },
      'live-duration-ms': { type: 'string', default: '5000' },
      'live-interval-ms': { type: 'string', default: '10' },
      'live-readers': { type: 'string', default: '3' },
      routed: { type: 'string', default: 'on' },
      s3: { type: 'string', default: 'off' },
      'data-root': { type: 'string', default: tmpdir() },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  if (values.routed !== 'on' && values.routed !== 'off') throw new Error('--routed must be on or off');
  const s3Mode = s3ModeFlag(values.s3);
  const nodeCount = wholeNumberFlag('nodes', values.nodes, 2, 16);
  return {
    durationS: wholeSeconds('duration-ms', values['duration-ms']),
    warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
    repeatCount: wholeNumberFlag('repeat', values.repeat, 1),
    nodeCount,
    streamCount: wholeNumberFlag('streams', values.streams, 1),
    connectionCount: wholeNumberFlag('writers', values.writers, nodeCount),
    bodyBytes: wholeNumberFlag('body-bytes', values['body-bytes'], 1),
    historyStreamCount: wholeNumberFlag('history-streams', values['history-streams'], 1),
    historyBytes: wholeNumberFlag('history-bytes', values['history-bytes'], 1, 4 * 1024 * 1024),
    readConnectionCount: wholeNumberFlag('readers', values.readers, nodeCount),
    liveDurationMs: wholeNumberFlag('live-duration-ms', values['live-duration-ms'], 100),
    liveIntervalMs: wholeNumberFlag('live-interval-ms', values['live-interval-ms'], 1),
    liveReaderCount: wholeNumberFlag('live-readers', values['live-readers'], 1),
    routed: values.routed === 'on',
    s3: s3Mode,
    dataRoot: values['data-root'],
  };
}

/** A request, retried while it answers 503 (a slot settling), at most {@link RETRY_503_TIMEOUT_MS}. */
async function request(url: string, init: RequestInit = {}): Promise<Response> {
  const deadlineMs = performance.now() + RETRY_503_TIMEOUT_MS;
  for (;;) {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (response.status !== 503 || performance.now() > deadlineMs) return response;
    await response.arrayBuffer();
    await sleep(RETRY_PAUSE_MS);
  }
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

/** The counters a window compares, from one node's /metrics. */
interface NodeCounters {
  /** `cairn_forwarded_requests_total{outcome="answered"}` (0 outside cluster mode). */
  forwarded: number;
  /** Segment read units served from the segment cache, and fetched from the store. */
  cacheHits: number;
  cacheMisses: number;
  /** Object-store requests (every operation). */
  storeRequests: number;
}

async function nodeCounters(node: BenchNode): Promise<NodeCounters> {
  const text = await (await fetch(`${node.baseUrl}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text();
  const sum = (pattern: RegExp) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    forwarded: sum(/^cairn_forwarded_requests_total\{outcome="answered"\} (\d+(?:\.\d+)?)$/gm),
    cacheHits: sum(/^cairn_segment_cache_hits_total (\d+(?:\.\d+)?)$/gm),
    cacheMisses: sum(/^cairn_segment_cache_misses_total (\d+(?:\.\d+)?)$/gm),
    storeRequests: sum(/^cairn_object_store_request_duration_seconds_count\{[^}]*\} (\d+(?:\.\d+)?)$/gm),
  };
}

async function ownedSlots(node: BenchNode): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${node.baseUrl}/metrics`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })).text();
    const match = /^cairn_cluster_owned_slots (\d+)$/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

async function isReady(node: BenchNode): Promise<boolean> {
  try {
    const response = await fetch(`${node.baseUrl}/readyz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** Waits until every node is ready and, in a cluster, owns exactly its rendezvous share of the slots. */
async function waitSettled(nodes: readonly BenchNode[], cluster: boolean): Promise<void> {
  const target = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, nodes.map((node) => node.id));
  const share = (id: string) => target.filter((owner) => owner === id).length;
  const deadlineMs = performance.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ready = await Promise.all(nodes.map(isReady));
    const owned = cluster ? await Promise.all(nodes.map(ownedSlots)) : [];
    if (ready.every(Boolean) && (!cluster || owned.every((count, i) => count === share(nodes[i]?.id ?? '')))) return;
    if (performance.now() > deadlineMs) throw new Error(`nodes not settled after ${READY_TIMEOUT_MS} ms: ready ${ready.join(',')}, owned slots ${owned.join(',')}`);
    await sleep(READY_POLL_MS);
  }
}

/** User and system CPU seconds of a process (/proc/<pid>/stat, fields 14 and 15), in clock ticks: only their ratio is used. */
function userSystemTicks(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]), system: Number(fields[12]) };
  } catch {
    return { user: Number.NaN, system: Number.NaN };
  }
}

/** CPU seconds of every running etcd member. */
function etcdCpuSeconds(etcd: EtcdCluster | undefined): number {
  if (etcd === undefined) return 0;
  return etcd.members.reduce((sum, member) => sum + (member.pid === undefined ? 0 : processCpuSeconds(member.pid) || 0), 0);
}

/** Runs `load` and measures the nodes, etcd and everyone else over it. */
async function measured<T>(nodes: readonly BenchNode[], etcd: EtcdCluster | undefined, load: () => Promise<T>): Promise<{ value: T; window: Window }> {
  const countersBefore = await Promise.all(nodes.map(nodeCounters));
  const cpuBefore = nodes.map((node) => node.running.cpuSeconds());
  const ticksBefore = nodes.map((node) => userSystemTicks(node.running.pid));
  const etcdBefore = etcdCpuSeconds(etcd);
  const othersBefore = snapshotAllProcessesCpu();
  const startedMs = performance.now();
  const value = await load();
  const elapsedS = (performance.now() - startedMs) / 1000;
  const cpuAfter = nodes.map((node) => node.running.cpuSeconds());
  const ticksAfter = nodes.map((node) => userSystemTicks(node.running.pid));
  const ticks = ticksAfter.reduce(
    (sum, after, i) => ({ user: sum.user + after.user - (ticksBefore[i]?.user ?? 0), system: sum.system + after.system - (ticksBefore[i]?.system ?? 0) }),
    { user: 0, system: 0 },
  );
  const etcdAfter = etcdCpuSeconds(etcd);
  const othersAfter = snapshotAllProcessesCpu();
  const countersAfter = await Promise.all(nodes.map(nodeCounters));
  const delta = (pick: (counters: NodeCounters) => number) => countersAfter.reduce((sum, after, i) => sum + pick(after) - pick(countersBefore[i] as NodeCounters), 0);
  const excluded = new Set([process.pid, ...nodes.map((node) => node.running.pid), ...(etcd?.members.flatMap((member) => (member.pid === undefined ? [] : [member.pid])) ?? [])]);
  const others = cpuOfOthers(othersBefore, othersAfter, excluded);
  const nodeCpuS = cpuAfter.map((after, i) => after - (cpuBefore[i] ?? 0));
  return {
    value,
    window: {
      elapsedS,
      nodeCpuS,
      nodeSystemShare: ticks.system / (ticks.user + ticks.system),
      nodeCpuPercent: nodeCpuS.map((cpuS) => (cpuS / elapsedS) * 100),
      forwarded: countersAfter.map((after, i) => after.forwarded - (countersBefore[i]?.forwarded ?? 0)),
      cacheHits: delta((counters) => counters.cacheHits),
      cacheMisses: delta((counters) => counters.cacheMisses),
      storeRequests: delta((counters) => counters.storeRequests),
      etcdCpuPercent: ((etcdAfter - etcdBefore) / elapsedS) * 100,
      otherCpuPercent: (others.cpuS / elapsedS) * 100,
      otherCpuTop: others.top,
    },
  };
}

/** `total` connections split over the nodes as evenly as possible (the first nodes get the remainder). */
function splitConnections(total: number, nodeCount: number): number[] {
  return Array.from({ length: nodeCount }, (_, i) => Math.floor(total / nodeCount) + (i < total % nodeCount ? 1 : 0));
}

/** A wrk phase: one wrk per node with its share of the connections and its script, warm-up, then the measured run. */
async function wrkPhase(nodes: readonly BenchNode[], etcd: EtcdCluster | undefined, scriptOf: (node: BenchNode) => WrkScript, connectionCount: number, options: ClusterOptions): Promise<WrkPhase> {
  const split = splitConnections(connectionCount, nodes.length);
  const loads = nodes.map((node, i) => ({ baseUrl: node.baseUrl, connectionCount: split[i] ?? 1, script: scriptOf(node), pin: [] as string[] }));
  await Promise.all(loads.map((load) => runWrk({ ...load, durationS: options.warmupS })));
  const { value: results, window } = await measured(nodes, etcd, () => Promise.all(loads.map((load) => runWrk({ ...load, durationS: options.durationS }))));
  const wrk = combineWrkResults(results);
  const answered = wrk.requests - wrk.errors.status;
  const cpuUsPerRequestByNode = window.nodeCpuS.map((cpuS) => (cpuS * 1e6) / answered);
  return {
    ...window,
    wrk,
    answered,
    ratePerS: answered / (wrk.durationUs / 1e6),
    cpuUsPerRequestByNode,
    cpuUsPerRequest: cpuUsPerRequestByNode.reduce((sum, value) => sum + value, 0),
    forwardedShare: window.forwarded.reduce((sum, value) => sum + value, 0) / answered,
    bytesPerRequest: wrk.bytes / Math.max(1, wrk.requests),
  };
}

/** Creates the append streams and the closed history streams, each through a random node. */
async function createStreams(nodes: readonly BenchNode[], options: ClusterOptions): Promise<void> {
  const octet = { 'content-type': 'application/octet-stream' };
  await forEachConcurrently(options.streamCount, REQUEST_CONCURRENCY, async (index) => {
    const created = await request(`${pick(nodes).baseUrl}${APPEND_PREFIX}${index}`, { method: 'PUT', headers: octet });
    await created.arrayBuffer();
    if (created.status !== 201 && created.status !== 200) throw new Error(`creating append stream ${index} answered ${created.status}`);
  });
  await forEachConcurrently(options.historyStreamCount, REQUEST_CONCURRENCY, async (index) => {
    const url = (node: BenchNode) => `${node.baseUrl}${HISTORY_PREFIX}${index}`;
    const created = await request(url(pick(nodes)), { method: 'PUT', headers: octet });
    await created.arrayBuffer();
    if (created.status !== 201 && created.status !== 200) throw new Error(`creating history stream ${index} answered ${created.status}`);
    for (let written = 0; written < options.historyBytes; ) {
      const bytes = Math.min(HISTORY_APPEND_BYTES, options.historyBytes - written);
      written += bytes;
      const last = written >= options.historyBytes;
      // Appends are not idempotent: no retry here (a 503 fails the cell; the cluster has settled).
      const appended = await fetch(url(pick(nodes)), {
        method: 'POST',
        headers: last ? { ...octet, 'stream-closed': 'true' } : octet,
        body: Buffer.alloc(bytes, index % 251),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      await appended.arrayBuffer();
      if (appended.status !== 204) throw new Error(`appending to history stream ${index} answered ${appended.status}`);
    }
  });
}

/** Waits until every history stream is wholly sealed (HEAD: `Cairn-Sealed-Offset` = `Stream-Next-Offset`). */
async function waitHistorySealed(nodes: readonly BenchNode[], options: ClusterOptions): Promise<void> {
  const deadlineMs = performance.now() + SEALED_TIMEOUT_MS;
  const pending = new Set(Array.from({ length: options.historyStreamCount }, (_, i) => i));
  while (pending.size > 0) {
    for (const index of [...pending]) {
      const head = await request(`${pick(nodes).baseUrl}${HISTORY_PREFIX}${index}`, { method: 'HEAD' });
      await head.arrayBuffer();
      const sealedOffset = head.headers.get('cairn-sealed-offset');
      if (sealedOffset !== null && sealedOffset === head.headers.get('stream-next-offset')) pending.delete(index);
    }
    if (pending.size === 0) return;
    if (performance.now() > deadlineMs) throw new Error(`${pending.size} history streams not sealed after ${SEALED_TIMEOUT_MS} ms`);
    await sleep(500);
  }
}

/** `cairn serve` nodes of a cell, started at once; stopped by the caller (by PID). */
async function startNodes(config: Config, cellDir: string, etcd: EtcdCluster | undefined, clusterName: string, s3: BenchS3 | undefined): Promise<BenchNode[]> {
  const storeFlags = s3 === undefined ? ['--fs-store-dir', join(cellDir, 'objects')] : s3.cairnFlags(clusterName);
  const ids = Array.from({ length: config.nodeCount }, (_, i) => `n${i + 1}`);
  const started = await Promise.allSettled(
    ids.map(async (id) => {
      const port = await freePort();
      const clusterFlags = config.cluster && etcd !== undefined ? ['--cluster-etcd-endpoints', etcd.endpoints.join(','), '--cluster-name', clusterName, '--node-id', id] : [];
      const running = await startServer({
        command: [process.execPath, 'src/cli/main.ts', 'serve', '--port', String(port), '--data-dir', join(cellDir, id), '--durability', 'wal', '--log-level', 'warn', ...storeFlags, ...clusterFlags],
        cwd: REPO_ROOT,
        pin: [],
        readyUrl: `http://127.0.0.1:${port}/healthz`,
        readyTimeoutMs: READY_TIMEOUT_MS,
        ...(s3 === undefined ? {} : { env: s3.cairnEnv }),
      });
      trackServerPid(running.pid);
      return { id, baseUrl: `http://127.0.0.1:${port}`, running };
    }),
  );
  const nodes = started.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
  const failed = started.find((outcome) => outcome.status === 'rejected');
  if (failed !== undefined) {
    await stopNodes(nodes);
    throw (failed as PromiseRejectedResult).reason;
  }
  return nodes;
}

async function stopNodes(nodes: readonly BenchNode[]): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      await node.running.stop();
      untrackServerPid(node.running.pid);
    }),
  );
}

/** The live phase: the writer on a node that does not own the stream (when there is one), readers spread over every node. */
async function livePhase(nodes: readonly BenchNode[], etcd: EtcdCluster | undefined, config: Config, options: ClusterOptions): Promise<LivePhase> {
  const ownerId = config.cluster ? (rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, nodes.map((node) => node.id))[slotOf(LIVE_NAME, CLUSTER_SLOT_COUNT_DEFAULT)] ?? '') : (nodes[0]?.id ?? '');
  const writer = nodes.find((node) => node.id !== ownerId) ?? (nodes[0] as BenchNode);
  const { value: result, window } = await measured(nodes, etcd, () =>
    runLiveGenerator({
      baseUrl: writer.baseUrl,
      streamPath: `${STREAM_PATH_ROOT}${LIVE_NAME}`,
      serverPid: writer.running.pid,
      longPollReaderCount: options.liveReaderCount,
      sseReaderCount: options.liveReaderCount,
      intervalMs: options.liveIntervalMs,
      warmupMs: LIVE_WARMUP_MS,
      durationMs: options.liveDurationMs,
      messageBytes: LIVE_MESSAGE_BYTES,
      pin: [],
      readerBaseUrls: nodes.map((node) => node.baseUrl),
    }),
  );
  return { ...window, result, writerNode: writer.id, ownerNode: ownerId };
}

async function runCell(config: Config, repetition: number, options: ClusterOptions, etcd: EtcdCluster | undefined, s3: BenchS3 | undefined, timestamp: string): Promise<ClusterCell> {
  const cell: ClusterCell = { config, repetition, nodeIds: [] };
  const cellDir = makeDataDir(options.dataRoot, `cluster-${config.nodeCount}`);
  const clusterName = `bench-${timestamp}-${config.nodeCount}-${repetition}`.toLowerCase();
  let nodes: BenchNode[] = [];
  try {
    const startedMs = performance.now();
    nodes = await startNodes(config, cellDir, etcd, clusterName, s3);
    cell.nodeIds = nodes.map((node) => node.id);
    await waitSettled(nodes, config.cluster);
    cell.startMs = performance.now() - startedMs;
    await createStreams(nodes, options);
    await waitHistorySealed(nodes, options);
    cell.idle = (await measured(nodes, etcd, () => sleep(IDLE_WINDOW_MS))).window;
    const owners = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, nodes.map((node) => node.id));
    const ownedBy = (node: BenchNode) => Array.from({ length: options.streamCount }, (_, i) => i).filter((i) => owners[slotOf(`${STREAM_DIR}a${i}`, CLUSTER_SLOT_COUNT_DEFAULT)] === node.id);
    const appendsOf = (node: BenchNode) =>
      config.routed ? appendScript(options.bodyBytes, options.streamCount, APPEND_PREFIX, ownedBy(node)) : appendScript(options.bodyBytes, options.streamCount, APPEND_PREFIX);
    cell.appends = await wrkPhase(nodes, etcd, appendsOf, options.connectionCount, options);
    cell.reads = await wrkPhase(nodes, etcd, () => catchUpScript(options.historyStreamCount, HISTORY_PREFIX), options.readConnectionCount, options);
    cell.live = await livePhase(nodes, etcd, config, options);
    const exited = nodes.filter((node) => node.running.exitedEarly());
    if (exited.length > 0) cell.failure = `nodes exited during the cell: ${exited.map((node) => `${node.id}:\n${node.running.outputTail()}`).join('\n')}`;
  } catch (error) {
    cell.failure = `${(error as Error).message}${nodes.map((node) => `\n--- ${node.id} output (tail) ---\n${node.running.outputTail()}`).join('')}`;
  } finally {
    await stopNodes(nodes);
    removeDataDir(cellDir);
  }
  const phases = [cell.appends, cell.reads].filter((phase) => phase !== undefined);
  cell.non2xxCount = phases.reduce((sum, phase) => sum + phase.wrk.errors.status, 0) + (cell.live?.result.appendFailureCount ?? 0);
  cell.socketErrorCount = phases.reduce((sum, phase) => sum + phase.wrk.errors.connect + phase.wrk.errors.read + phase.wrk.errors.write + phase.wrk.errors.timeout, 0);
  cell.otherCpuPercent = Math.max(...phases.map((phase) => phase.otherCpuPercent), cell.live?.otherCpuPercent ?? 0);
  return cell;
}

/** CPU µs per request of all nodes, less what they used idle (the cell's idle window) over the same time. */
function netCpuUs(phase: WrkPhase | undefined, idle: Window | undefined): number {
  if (phase === undefined || idle === undefined) return Number.NaN;
  const idleS = idle.nodeCpuPercent.reduce((sum, percent) => sum + percent, 0) / 100 * phase.elapsedS;
  return ((phase.nodeCpuS.reduce((sum, cpuS) => sum + cpuS, 0) - idleS) * 1e6) / phase.answered;
}

/** e.g. `41.0+40.2+39.8 = 121`: CPU µs per request of each node, and their sum. */
function formatPerNode(phase: WrkPhase | undefined): string {
  if (phase === undefined) return '-';
  if (phase.cpuUsPerRequestByNode.length === 1) return formatUs(phase.cpuUsPerRequest);
  return `${phase.cpuUsPerRequestByNode.map(formatUs).join('+')} = ${formatUs(phase.cpuUsPerRequest)}`;
}

function wrkRow(cell: ClusterCell, phase: WrkPhase | undefined, extra: string[] = []): string[] {
  return [
    cell.config.label,
    String(cell.repetition),
    formatCount(phase?.ratePerS ?? Number.NaN),
    ...extra,
    formatMs(phase?.wrk.latencyUs.p50 ?? Number.NaN),
    formatMs(phase?.wrk.latencyUs.p99 ?? Number.NaN),
    phase === undefined ? '-' : phase.nodeCpuPercent.map(formatPercent).join('/'),
    cell.idle === undefined ? '-' : cell.idle.nodeCpuPercent.map(formatPercent).join('/'),
    formatPerNode(phase),
    formatUs(netCpuUs(phase, cell.idle)),
    formatPercent((phase?.nodeSystemShare ?? Number.NaN) * 100),
    formatShare(phase?.forwardedShare ?? Number.NaN),
    formatPercent(phase?.etcdCpuPercent ?? Number.NaN),
    formatPercent(phase?.otherCpuPercent ?? Number.NaN),
    phase === undefined ? cellFlags({ failure: cell.failure }) : cellFlags({ non2xxCount: phase.wrk.errors.status, socketErrorCount: phase.wrk.errors.connect + phase.wrk.errors.read + phase.wrk.errors.write + phase.wrk.errors.timeout, otherCpuPercent: phase.otherCpuPercent }),
  ];
}

function latencyCells(summary: LatencySummary | undefined): string[] {
  return [formatMs((summary?.p50Ms ?? Number.NaN) * 1000), formatMs((summary?.p99Ms ?? Number.NaN) * 1000)];
}

function liveRow(cell: ClusterCell): string[] {
  const live = cell.live;
  const result = live?.result;
  const undelivered = (result?.longPoll.undeliveredCount ?? 0) + (result?.sse.undeliveredCount ?? 0);
  const flags: string[] = [];
  if (result?.failure !== undefined) flags.push(`failed: ${result.failure.split('\n')[0] ?? ''}`);
  if (undelivered > 0) flags.push(`${undelivered} undelivered`);
  if ((result?.lateAppendCount ?? 0) > 0) flags.push(`${result?.lateAppendCount} late appends`);
  return [
    cell.config.label,
    String(cell.repetition),
    live === undefined ? '-' : `${live.writerNode} (owner ${live.ownerNode})`,
    ...latencyCells(result?.appendLatency),
    ...latencyCells(result?.longPoll.latency),
    ...latencyCells(result?.sse.latency),
    live === undefined ? '-' : live.nodeCpuPercent.map(formatPercent).join('/'),
    formatPercent(live?.otherCpuPercent ?? Number.NaN),
    live === undefined ? cellFlags({ failure: cell.failure }) : cellFlags({ non2xxCount: result?.appendFailureCount ?? 0, otherCpuPercent: live.otherCpuPercent }, flags),
  ];
}

interface Summary {
  config: Config;
  runCount: number;
  appendsPerS: number;
  appendP50Us: number;
  appendP99Us: number;
  appendCpuUs: number;
  appendCpuUsNet: number;
  appendCpuUsPerNodeMax: number;
  idleCpuPercent: number;
  appendForwarded: number;
  readsPerS: number;
  readMegabytesPerS: number;
  readP50Us: number;
  readP99Us: number;
  readCpuUs: number;
  readCpuUsNet: number;
  readForwarded: number;
  longPollP50Ms: number;
  longPollP99Ms: number;
  sseP50Ms: number;
  sseP99Ms: number;
  liveAppendP50Ms: number;
  otherCpuPercent: number;
}

function summarize(config: Config, cells: readonly ClusterCell[]): Summary {
  const ok = cells.filter((cell) => cell.config.label === config.label && cell.failure === undefined);
  const of = (get: (cell: ClusterCell) => number | undefined) => median(ok.map((cell) => get(cell) ?? Number.NaN));
  return {
    config,
    runCount: ok.length,
    appendsPerS: of((cell) => cell.appends?.ratePerS),
    appendP50Us: of((cell) => cell.appends?.wrk.latencyUs.p50),
    appendP99Us: of((cell) => cell.appends?.wrk.latencyUs.p99),
    appendCpuUs: of((cell) => cell.appends?.cpuUsPerRequest),
    appendCpuUsNet: of((cell) => netCpuUs(cell.appends, cell.idle)),
    idleCpuPercent: of((cell) => cell.idle?.nodeCpuPercent.reduce((sum, percent) => sum + percent, 0)),
    appendCpuUsPerNodeMax: of((cell) => (cell.appends === undefined ? undefined : Math.max(...cell.appends.cpuUsPerRequestByNode))),
    appendForwarded: of((cell) => cell.appends?.forwardedShare),
    readsPerS: of((cell) => cell.reads?.ratePerS),
    readMegabytesPerS: of((cell) => (cell.reads === undefined ? undefined : (cell.reads.wrk.bytes / (cell.reads.wrk.durationUs / 1e6)) / 1e6)),
    readP50Us: of((cell) => cell.reads?.wrk.latencyUs.p50),
    readP99Us: of((cell) => cell.reads?.wrk.latencyUs.p99),
    readCpuUs: of((cell) => cell.reads?.cpuUsPerRequest),
    readCpuUsNet: of((cell) => netCpuUs(cell.reads, cell.idle)),
    readForwarded: of((cell) => cell.reads?.forwardedShare),
    longPollP50Ms: of((cell) => cell.live?.result.longPoll.latency.p50Ms),
    longPollP99Ms: of((cell) => cell.live?.result.longPoll.latency.p99Ms),
    sseP50Ms: of((cell) => cell.live?.result.sse.latency.p50Ms),
    sseP99Ms: of((cell) => cell.live?.result.sse.latency.p99Ms),
    liveAppendP50Ms: of((cell) => cell.live?.result.appendLatency.p50Ms),
    otherCpuPercent: of((cell) => cell.otherCpuPercent),
  };
}

export async function main(args: string[]): Promise<void> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args);
  if (options === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const wrkLine = wrkVersion();
  if (wrkLine === undefined) throw new Error(WRK_INSTALL_HINT);
  installInterruptCleanup();
  const machine: Machine = describeMachine(options.dataRoot);
  const configs: Config[] = [
    { label: '1 node', nodeCount: 1, cluster: false, routed: false },
    { label: `${options.nodeCount} nodes`, nodeCount: options.nodeCount, cluster: true, routed: false },
    ...(options.routed ? [{ label: `${options.nodeCount} nodes routed`, nodeCount: options.nodeCount, cluster: true, routed: true }] : []),
  ];
  const s3From = s3Source(options.s3);
  process.stdout.write(
    [
      ...benchHeader('cluster benchmark', machine),
      `configurations: ${configs.map((config) => config.label).join(', ')} (the cluster: 3 etcd members, one shared store; routed: each append sent to its stream's owner); ${options.repeatCount} cells each, order alternating`,
      `appends: ${wrkLine}, ${options.connectionCount} connections split over the nodes (one wrk per node), ${options.bodyBytes}-byte POSTs over ${options.streamCount.toLocaleString('en-US')} streams, --durability wal; warm-up ${options.warmupS} s, measure ${options.durationS} s`,
      `catch-up: ${options.historyStreamCount} closed, sealed streams of ${options.historyBytes.toLocaleString('en-US')} bytes read whole (?offset=-1), ${options.readConnectionCount} connections split over the nodes`,
      `live: one append every ${options.liveIntervalMs} ms for ${options.liveDurationMs} ms (after 1 s warm-up) through a node not owning the stream; ${options.liveReaderCount} long-poll + ${options.liveReaderCount} SSE readers spread over the nodes`,
      `store: ${s3From.kind === 'off' ? `filesystem store directory shared by the nodes (${options.s3 === 'off' ? '--s3 off' : s3From.reason})` : s3From.kind}`,
      'pinning: none (the nodes, etcd and the load generators share the cores)',
      `load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  let etcd: EtcdCluster | undefined;
  let s3: BenchS3 | undefined;
  const cells: ClusterCell[] = [];
  try {
    const etcdStartedMs = performance.now();
    etcd = await startEtcd(3);
    process.stdout.write(`etcd: 3 members healthy in ${((performance.now() - etcdStartedMs) / 1000).toFixed(1)} s\n`);
    if (s3From.kind !== 'off') {
      s3 = await startBenchS3(s3From);
      if (s3.tempDir !== undefined) trackDataDir(s3.tempDir);
      process.stdout.write(`S3: ${s3.description}\n`);
    }
    for (let repetition = 1; repetition <= options.repeatCount; repetition++) {
      for (const config of repetition % 2 === 1 ? configs : [...configs].reverse()) {
        const cell = await runCell(config, repetition, options, etcd, s3, timestamp);
        cells.push(cell);
        process.stdout.write(
          `  ${config.label} #${repetition}: ${
            cell.failure === undefined
              ? `${formatCount(cell.appends?.ratePerS ?? Number.NaN)} appends/s (${formatUs(cell.appends?.cpuUsPerRequest ?? Number.NaN)} CPU us/append, forwarded ${formatShare(cell.appends?.forwardedShare ?? Number.NaN)}), ${formatCount(cell.reads?.ratePerS ?? Number.NaN)} catch-ups/s, live SSE p50 ${formatMs((cell.live?.result.sse.latency.p50Ms ?? Number.NaN) * 1000)} ms`
              : `FAILED: ${cell.failure.split('\n')[0] ?? ''}`
          }\n`,
        );
      }
    }
  } finally {
    await etcd?.stop();
    await s3?.stop();
  }

  const wrkHeader = (rate: string, extra: string[] = []) => ['config', 'run', rate, ...extra, 'p50 ms', 'p99 ms', 'node CPU', 'idle node CPU', 'CPU us/req per node = sum', 'net of idle', 'kernel', 'forwarded', 'etcd CPU', 'other CPU', 'flags'];
  process.stdout.write(`\nappends (cells):\n${formatTable(wrkHeader('appends/s'), cells.map((cell) => wrkRow(cell, cell.appends)), 1)}\n`);
  process.stdout.write(
    `\ncatch-up reads of sealed history (cells; one request = one whole stream):\n${formatTable(
      wrkHeader('reads/s', ['MB/s', 'bytes/read', 'cache hit', 'store req/read']),
      cells.map((cell) =>
        wrkRow(cell, cell.reads, [
          formatCount(cell.reads === undefined ? Number.NaN : cell.reads.wrk.bytes / (cell.reads.wrk.durationUs / 1e6) / 1e6),
          formatCount(cell.reads?.bytesPerRequest ?? Number.NaN),
          cell.reads === undefined ? '-' : formatShare(cell.reads.cacheHits / (cell.reads.cacheHits + cell.reads.cacheMisses)),
          cell.reads === undefined ? '-' : (cell.reads.storeRequests / cell.reads.answered).toFixed(2),
        ]),
      ),
      1,
    )}\n`,
  );
  process.stdout.write(
    `\nlive tail delivery (cells; append-to-delivery ms):\n${formatTable(
      ['config', 'run', 'writer node', 'append p50', 'append p99', 'long-poll p50', 'long-poll p99', 'SSE p50', 'SSE p99', 'node CPU', 'other CPU', 'flags'],
      cells.map(liveRow),
      1,
    )}\n`,
  );

  const summaries = configs.map((config) => summarize(config, cells));
  const single = summaries[0] as Summary;
  const cluster = summaries[1] as Summary;
  const routed = summaries[2];
  const others = summaries.slice(1);
  const medianRows = (label: string, get: (summary: Summary) => number, format: (value: number) => string) => [
    label,
    ...summaries.map((summary) => format(get(summary))),
    ...others.map((summary) => formatRatio(get(summary) / get(single))),
  ];
  const ms = (value: number) => formatMs(value * 1000);
  process.stdout.write(
    `\nmedians (cells: ${summaries.map((summary) => `${summary.config.label} ${summary.runCount}`).join(', ')}):\n${formatTable(
      ['', ...summaries.map((summary) => summary.config.label), ...others.map((summary) => `${summary.config.label} / ${single.config.label}`)],
      [
        medianRows('appends/s', (summary) => summary.appendsPerS, formatCount),
        medianRows('append p50 ms', (summary) => summary.appendP50Us, formatMs),
        medianRows('append p99 ms', (summary) => summary.appendP99Us, formatMs),
        medianRows('node CPU idle (all nodes)', (summary) => summary.idleCpuPercent, formatPercent),
        medianRows('append CPU us (all nodes)', (summary) => summary.appendCpuUs, formatUs),
        medianRows('append CPU us net of idle', (summary) => summary.appendCpuUsNet, formatUs),
        medianRows('append CPU us (busiest node)', (summary) => summary.appendCpuUsPerNodeMax, formatUs),
        medianRows('appends forwarded', (summary) => summary.appendForwarded, formatShare),
        medianRows('catch-ups/s', (summary) => summary.readsPerS, formatCount),
        medianRows('catch-up MB/s', (summary) => summary.readMegabytesPerS, formatCount),
        medianRows('catch-up p50 ms', (summary) => summary.readP50Us, formatMs),
        medianRows('catch-up p99 ms', (summary) => summary.readP99Us, formatMs),
        medianRows('catch-up CPU us (all nodes)', (summary) => summary.readCpuUs, formatUs),
        medianRows('catch-up CPU us net of idle', (summary) => summary.readCpuUsNet, formatUs),
        medianRows('catch-ups forwarded', (summary) => summary.readForwarded, formatShare),
        medianRows('live append p50 ms', (summary) => summary.liveAppendP50Ms, ms),
        medianRows('live long-poll p50 ms', (summary) => summary.longPollP50Ms, ms),
        medianRows('live long-poll p99 ms', (summary) => summary.longPollP99Ms, ms),
        medianRows('live SSE p50 ms', (summary) => summary.sseP50Ms, ms),
        medianRows('live SSE p99 ms', (summary) => summary.sseP99Ms, ms),
        medianRows('other CPU (worst phase)', (summary) => summary.otherCpuPercent, formatPercent),
      ],
      1,
    )}\n`,
  );

  // Projection from CPU per append: each node on its own core, requests spread evenly.
  // Net of idle: at full load the nodes' fixed background cost is spread over far more appends.
  const localUs = single.appendCpuUsNet;
  const hopUs = (cluster.appendCpuUsNet - single.appendCpuUsNet) / cluster.appendForwarded;
  // B: the routed cluster as the base (N nodes' own costs without the hop), and the hop alone.
  const routedUs = routed?.appendCpuUsNet ?? Number.NaN;
  const hopOnlyUs = (cluster.appendCpuUsNet - routedUs) / cluster.appendForwarded;
  if (Number.isFinite(localUs) && Number.isFinite(hopUs)) {
    const rows = PROJECTED_NODES.map((nodeCount) => {
      const share = (nodeCount - 1) / nodeCount;
      const cpuUs = localUs + share * hopUs;
      const splitUs = routedUs + share * hopOnlyUs;
      return [
        String(nodeCount),
        formatShare(share),
        formatUs(cpuUs),
        formatCount((nodeCount * 1e6) / cpuUs),
        formatRatio((nodeCount * 1e6) / cpuUs / (1e6 / localUs)),
        formatUs(splitUs),
        formatCount((nodeCount * 1e6) / splitUs),
        formatCount((nodeCount * 1e6) / routedUs),
      ];
    });
    process.stdout.write(
      [
        '',
        `PROJECTION (not measured): N nodes with one core each, appends/s = N x 10^6 / (CPU us per append); one node alone: 10^6 / ${formatUs(localUs)} = ${formatCount(1e6 / localUs)}/s`,
        `  A: CPU us per append = ${formatUs(localUs)} (measured, 1 node, net of idle) + (N-1)/N x ${formatUs(hopUs)} (measured: (${formatUs(cluster.appendCpuUsNet)} - ${formatUs(localUs)}) / ${formatShare(cluster.appendForwarded)} forwarded; everything the cluster costs more per append, charged to forwarding)`,
        `  B: CPU us per append = ${formatUs(routedUs)} (measured, ${cluster.config.label} routed, net of idle) + (N-1)/N x ${formatUs(hopOnlyUs)} (measured: (${formatUs(cluster.appendCpuUsNet)} - ${formatUs(routedUs)}) / ${formatShare(cluster.appendForwarded)}: the hop only)`,
        '  routed: B without forwarding (clients or a load balancer sending each append to its owner)',
        '  assumes every node busy with the server alone (load generators, etcd elsewhere), even spread, disks keeping up, no other shared limit.',
        formatTable(['nodes', 'forwarded (N-1)/N', 'A: us/append', 'A: appends/s', 'A: x 1 node', 'B: us/append', 'B: appends/s', 'routed: appends/s'], rows, 1),
        '',
      ].join('\n'),
    );
  }

  for (const cell of cells.filter((candidate) => candidate.failure !== undefined)) {
    process.stdout.write(`\n${cell.config.label} #${cell.repetition} FAILED:\n${cell.failure}\n`);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `cluster-${timestamp}.json`);
  const slim = cells.map((cell) => ({ ...cell, live: cell.live === undefined ? undefined : { ...cell.live, result: { ...cell.live.result, longPoll: { ...cell.live.result.longPoll, samplesMs: undefined }, sse: { ...cell.live.result.sse, samplesMs: undefined } } } }));
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk: wrkLine, options, cells: slim, summaries, projection: { localUs, hopUs, routedUs, hopOnlyUs } }, null, 2)}\n`);
  process.stdout.write(`\nraw results: ${resultsPath}\n`);
  if (cells.some((cell) => cell.failure !== undefined)) process.exitCode = 1;
}
