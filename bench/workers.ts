/**
 * Workers (issue 14, "Speed"): small durable appends over many streams against `cairn serve
 * --workers 1` (one process, no forwarding) and `--workers 2` (a primary and two worker
 * processes sharing one port; a request reaching the worker that does not own its stream's slot
 * is forwarded to the owner over loopback HTTP), in the same run, alternating, several times.
 *
 *   npm run bench -- workers [--duration-ms 5000] [--warmup-ms 1000] [--repeat 3] [--workers 1,2] [--routed on]
 *                            [--streams 1000] [--writers 64] [--body-bytes 100] [--data-root DIR] [--cpu-prof]
 *
 * Each cell (worker count × repetition) is a fresh server in a fresh data directory (`--durability
 * wal`): create the streams, ask each stream's owner (`Cairn-Node` of a HEAD, which a forwarded
 * answer carries from the owner), warm up, then one measured wrk run (bench/lib/append.lua, one
 * thread, `--writers` connections, consecutive requests rotating over the streams). Repetitions
 * alternate the order (1,2 then 2,1, …) so slow drift of the machine hits both configurations alike.
 *
 * Per cell: appends/s, p50/p99, the CPU of the whole server process tree (primary and workers,
 * from /proc), CPU µs per append, wrk's CPU and everyone else's. Nothing is pinned: with two
 * workers the server needs both cores of a 2-core machine, so wrk shares them in every cell.
 *
 * Forwarded share, measured: halfway through the wrk run the established connections on the
 * server port are attributed to the worker holding their socket (/proc/net/tcp inodes against
 * /proc/<pid>/fd); a connection at worker w is forwarded for the streams w does not own, and wrk
 * spreads each connection's requests evenly over the streams, so the share is
 * Σ_w connections(w) × (streams not owned by w) / (connections × streams).
 * Forwarding CPU per forwarded request = (CPU µs/append at N − at 1) / forwarded share: everything
 * more workers cost per append is charged to forwarding.
 *
 * `--routed on` adds a configuration per N > 1, "routed": the same server, but wrk sends each
 * request straight to the peer listener of the worker that owns its stream (one wrk per worker,
 * the connections split evenly), so nothing is forwarded. It separates the cost of the forwarding
 * hop ((CPU/append at N − routed at N) / share) from what N workers cost without it (smaller WAL
 * batches per worker, two processes' fixed costs).
 *
 * Prints the cells, the medians per configuration, the forwarding cost and a projection to 16 and
 * 64 cores (labelled as such: measured per-append CPU × cores); writes raw results to
 * bench/results/workers-<timestamp>.json.
 */
import { readdirSync, readFileSync, readlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { wholeSeconds } from './append.ts';
import { benchHeader, cellFlags, fileTimestamp, installInterruptCleanup, STREAM_PATH_ROOT, wholeNumberFlag, withServer, type FlaggableCell } from './lib/bench-server.ts';
import { cpuOfOthers, processContextSwitches, processTreeCpuSeconds, processTreePids, snapshotAllProcessesCpu, treeCpuBetween, type OthersCpu } from './lib/cpu.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { forEachConcurrently } from './lib/concurrently.ts';
import { median } from './lib/median.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatShare, formatTable, formatUs } from './lib/table.ts';
import { appendScript, combineWrkResults, runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STREAM_PATH_PREFIX = `${STREAM_PATH_ROOT}bench/w`;
const REQUEST_CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long stream creation retries 503s while the workers join the primary's slot map. */
const CLUSTER_READY_TIMEOUT_MS = 20_000;
const CLUSTER_RETRY_PAUSE_MS = 100;
const NODE_HEADER = 'cairn-node';
const WORKER_INDEX_ENV = 'CAIRN_WORKER_INDEX';
/** The cores of the projection table (issue 14). */
const PROJECTED_CORES = [16, 64] as const;

const USAGE = `usage: npm run bench -- workers [flags]

Small durable appends (--durability wal) over many streams against cairn serve --workers 1 and
--workers 2 in the same run, alternating, --repeat times each; unpinned (the server needs both
cores). Per cell: appends/s, p50/p99, CPU of the server process tree, CPU us/append, wrk's CPU,
the measured share of forwarded requests; then medians, the forwarding cost per forwarded request,
and a projection to 16 and 64 cores.

  --duration-ms 5000    measured wrk run per cell (whole seconds)
  --warmup-ms 1000      wrk warm-up per cell (whole seconds)
  --repeat 3            cells per configuration (the medians are over these)
  --workers 1,2         configurations (the first is the baseline of the ratios)
  --routed on           also N workers with every request sent straight to its owner (off: skip)
  --streams 1000        streams written (requests rotate over them)
  --writers 64          wrk connections
  --body-bytes 100      append size
  --durability wal      cairn's --durability: wal, or memory (no fdatasync: separates the log's
                        cost per worker from the HTTP and forwarding costs)
  --data-root DIR       where the temporary data directories go (default: the OS temp dir)
  --cpu-prof            V8 CPU profiles of every server process, one directory per cell
                        (bench/results/cpuprof-<timestamp>/workers-<N>-<rep>/CPU.*.<pid>.*.cpuprofile)

About (9 + duration + warm-up) s per cell: 9 cells take about 2.5 minutes with the defaults.
`;

interface WorkersOptions {
  durationS: number;
  warmupS: number;
  repeatCount: number;
  configs: Config[];
  streamCount: number;
  connectionCount: number;
  bodyBytes: number;
  durability: 'wal' | 'memory';
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

/** One server configuration: `--workers N`, and whether requests go straight to their owner. */
interface Config {
  workerCount: number;
  routed: boolean;
  label: string;
}

function configOf(workerCount: number, routed: boolean): Config {
  return { workerCount, routed, label: `--workers ${workerCount}${routed ? ' routed' : ''}` };
}

/** Where wrk's connections sat halfway through the measured run. */
interface ConnectionSpread {
  /** Per worker process: its index, node id, established client connections, streams it owns. */
  workers: { pid: number; index: number | undefined; nodeId: string | undefined; connectionCount: number; ownedStreamCount: number }[];
  /** Share of requests forwarded (0..1), from the connection spread and stream ownership. */
  forwardedShare: number;
}

interface WorkersCell extends FlaggableCell {
  config: Config;
  repetition: number;
  wrk?: WrkResult;
  appendsPerS?: number;
  /** CPU of the server's whole process tree, % of one core, over the measured window. */
  serverCpuPercent?: number;
  /** Per server process (primary first), % of one core. */
  serverCpuByPid?: Record<string, number>;
  cpuUsPerAppend?: number;
  /** Context switches of the server processes per append: voluntary (waiting for I/O or a peer) and involuntary (preempted). */
  switchesPerAppend?: { voluntary: number; involuntary: number };
  otherCpuTop?: OthersCpu['top'];
  spread?: ConnectionSpread;
  /** Server processes that ended during the window (their CPU is missing). */
  lostPids?: number[];
  serverExit?: string;
  cpuProfileDir?: string;
}

function parseOptions(args: string[], timestamp: string): WorkersOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      repeat: { type: 'string', default: '3' },
      workers: { type: 'string', default: '1,2' },
      routed: { type: 'string', default: 'on' },
      streams: { type: 'string', default: '1000' },
      writers: { type: 'string', default: '64' },
      'body-bytes': { type: 'string', default: '100' },
      durability: { type: 'string', default: 'wal' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const workerCounts = values.workers.split(',').map((text) => wholeNumberFlag('workers', text.trim(), 1, 64));
  if (values.routed !== 'on' && values.routed !== 'off') throw new Error('--routed must be on or off');
  if (values.durability !== 'wal' && values.durability !== 'memory') throw new Error('--durability must be wal or memory');
  const configs = workerCounts.map((count) => configOf(count, false));
  if (values.routed === 'on') configs.push(...workerCounts.filter((count) => count > 1).map((count) => configOf(count, true)));
  return {
    durationS: wholeSeconds('duration-ms', values['duration-ms']),
    warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
    repeatCount: wholeNumberFlag('repeat', values.repeat, 1),
    configs,
    streamCount: wholeNumberFlag('streams', values.streams, 1),
    connectionCount: wholeNumberFlag('writers', values.writers, 1),
    bodyBytes: wholeNumberFlag('body-bytes', values['body-bytes'], 1),
    durability: values.durability,
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

/** A request, retried on 503 while the workers join the slot map (at most {@link CLUSTER_READY_TIMEOUT_MS}). */
async function requestWhenReady(url: string, init: RequestInit, deadlineMs: number): Promise<Response> {
  for (;;) {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (response.status !== 503 || performance.now() > deadlineMs) return response;
    await response.arrayBuffer();
    await sleep(CLUSTER_RETRY_PAUSE_MS);
  }
}

/** Creates the streams; returns each stream's owner node id (`Cairn-Node` of a HEAD; undefined outside cluster mode). */
async function createStreams(baseUrl: string, streamCount: number): Promise<(string | undefined)[]> {
  const deadlineMs = performance.now() + CLUSTER_READY_TIMEOUT_MS;
  const owners: (string | undefined)[] = new Array(streamCount);
  await forEachConcurrently(streamCount, REQUEST_CONCURRENCY, async (index) => {
    const url = `${baseUrl}${STREAM_PATH_PREFIX}${index}`;
    const created = await requestWhenReady(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } }, deadlineMs);
    await created.arrayBuffer();
    if (created.status !== 201 && created.status !== 200) throw new Error(`creating stream ${index} answered ${created.status}`);
    const head = await requestWhenReady(url, { method: 'HEAD' }, deadlineMs);
    await head.arrayBuffer();
    owners[index] = head.headers.get(NODE_HEADER) ?? undefined;
  });
  return owners;
}

/** Established TCP sockets of the machine: inode → local and remote port. */
function establishedSockets(): Map<string, { localPort: number; remotePort: number }> {
  const sockets = new Map<string, { localPort: number; remotePort: number }>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … inode (tenth field); st 01 = ESTABLISHED.
      const fields = line.trim().split(/\s+/);
      const localPort = Number.parseInt(fields[1]?.split(':').at(-1) ?? '', 16);
      const remotePort = Number.parseInt(fields[2]?.split(':').at(-1) ?? '', 16);
      if (fields[3] === '01' && fields[9] !== undefined) sockets.set(fields[9], { localPort, remotePort });
    }
  }
  return sockets;
}

/** Inodes of the socket fds process `pid` holds. */
function socketInodesOf(pid: number): string[] {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const inodes: string[] = [];
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match?.[1] !== undefined) inodes.push(match[1]);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/**
 * Inodes of the server side of the load generator's connections: established sockets with local
 * port `port`, less those whose peer is this process (its keep-alive fetch connections from
 * creating the streams).
 */
function serverSocketInodes(port: number): Set<string> {
  const sockets = establishedSockets();
  const ownPorts = new Set(socketInodesOf(process.pid).map((inode) => sockets.get(inode)?.localPort));
  const inodes = new Set<string>();
  for (const [inode, { localPort, remotePort }] of sockets) if (localPort === port && !ownPorts.has(remotePort)) inodes.add(inode);
  return inodes;
}

/** How many of `inodes` process `pid` holds open. */
function socketsHeld(pid: number, inodes: ReadonlySet<string>): number {
  return socketInodesOf(pid).filter((inode) => inodes.has(inode)).length;
}

/** The `--workers` index of a worker process (its environment), undefined for a process without one. */
function workerIndexOf(pid: number): number | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((variable) => variable.startsWith(`${WORKER_INDEX_ENV}=`));
    return entry === undefined ? undefined : Number(entry.slice(WORKER_INDEX_ENV.length + 1));
  } catch {
    return undefined;
  }
}

function readNodeId(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'node-id'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Where the client connections on `port` are now, and the share of requests that are forwarded. */
function connectionSpread(rootPid: number, port: number, dataDir: string, owners: readonly (string | undefined)[]): ConnectionSpread {
  const inodes = serverSocketInodes(port);
  const workers: ConnectionSpread['workers'] = [];
  for (const pid of processTreePids(rootPid)) {
    const index = workerIndexOf(pid);
    const nodeId = index === undefined ? readNodeId(dataDir) : readNodeId(join(dataDir, 'workers', String(index)));
    const connectionCount = socketsHeld(pid, inodes);
    // A single process (--workers 1) answers everything itself: it owns every stream.
    const ownedStreamCount = owners.every((owner) => owner === undefined) ? owners.length : owners.filter((owner) => owner === nodeId).length;
    if (connectionCount > 0 || index !== undefined) workers.push({ pid, index, nodeId, connectionCount, ownedStreamCount });
  }
  const connectionTotal = workers.reduce((sum, worker) => sum + worker.connectionCount, 0);
  const forwarded = workers.reduce((sum, worker) => sum + worker.connectionCount * (owners.length - worker.ownedStreamCount), 0);
  return { workers, forwardedShare: connectionTotal === 0 ? Number.NaN : forwarded / (connectionTotal * owners.length) };
}

/** TCP ports process `pid` listens on. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(socketInodesOf(pid));
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // st 0A = LISTEN
      if (fields[3] === '0A' && fields[9] !== undefined && inodes.has(fields[9])) ports.push(Number.parseInt(fields[1]?.split(':').at(-1) ?? '', 16));
    }
  }
  return ports;
}

/** Context switches summed over the server process tree (threads of each process included). */
function treeContextSwitches(rootPid: number): Map<number, { voluntary: number; involuntary: number }> {
  const perPid = new Map<number, { voluntary: number; involuntary: number }>();
  for (const pid of processTreePids(rootPid)) {
    let voluntary = 0;
    let involuntary = 0;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      const switches = processContextSwitches(Number(task));
      if (switches === undefined) continue;
      voluntary += switches.voluntary;
      involuntary += switches.involuntary;
    }
    perPid.set(pid, { voluntary, involuntary });
  }
  return perPid;
}

function switchesBetween(before: ReadonlyMap<number, { voluntary: number; involuntary: number }>, after: ReadonlyMap<number, { voluntary: number; involuntary: number }>): { voluntary: number; involuntary: number } {
  let voluntary = 0;
  let involuntary = 0;
  for (const [pid, now] of after) {
    voluntary += now.voluntary - (before.get(pid)?.voluntary ?? 0);
    involuntary += now.involuntary - (before.get(pid)?.involuntary ?? 0);
  }
  return { voluntary, involuntary };
}

/** One wrk run per worker, straight to its peer listener with only the streams it owns. */
interface RoutedTarget {
  pid: number;
  nodeId: string;
  baseUrl: string;
  streamIndices: number[];
}

/** Every worker's peer listener (its listening port other than the shared one) and the streams it owns. */
function routedTargets(rootPid: number, sharedPort: number, dataDir: string, owners: readonly (string | undefined)[]): RoutedTarget[] {
  const targets: RoutedTarget[] = [];
  for (const pid of processTreePids(rootPid)) {
    const index = workerIndexOf(pid);
    if (index === undefined) continue;
    const nodeId = readNodeId(join(dataDir, 'workers', String(index)));
    const peerPort = listeningPorts(pid).find((port) => port !== sharedPort);
    if (nodeId === undefined || peerPort === undefined) throw new Error(`worker ${index} (pid ${pid}): no node id or peer listener found`);
    const streamIndices = owners.flatMap((owner, stream) => (owner === nodeId ? [stream] : []));
    targets.push({ pid, nodeId, baseUrl: `http://127.0.0.1:${peerPort}`, streamIndices });
  }
  if (targets.length === 0 || targets.reduce((sum, target) => sum + target.streamIndices.length, 0) !== owners.length) {
    throw new Error('routed: the workers found do not own every stream');
  }
  return targets;
}

async function runCell(config: Config, repetition: number, options: WorkersOptions, machine: Machine): Promise<WorkersCell> {
  const cell: WorkersCell = { config, repetition };
  const profileDir =
    options.cpuProfileDir === undefined ? undefined : join(options.cpuProfileDir, `workers-${config.workerCount}${config.routed ? '-routed' : ''}-${repetition}`);
  if (profileDir !== undefined) cell.cpuProfileDir = profileDir;
  const outcome = await withServer(
    'cairn',
    machine,
    {
      dataRoot: options.dataRoot,
      cairnFlags: ['--workers', String(config.workerCount), '--durability', options.durability],
      pinned: false,
      ...(profileDir === undefined ? {} : { cpuProfile: { dir: profileDir } }),
    },
    async ({ baseUrl, running, dataDir }) => {
      const owners = await createStreams(baseUrl, options.streamCount);
      const sharedPort = Number(new URL(baseUrl).port);
      const targets = config.routed ? routedTargets(running.pid, sharedPort, dataDir, owners) : undefined;
      const loads =
        targets === undefined
          ? [{ baseUrl, connectionCount: options.connectionCount, script: appendScript(options.bodyBytes, options.streamCount, STREAM_PATH_PREFIX), pin: [] }]
          : targets.map((target) => ({
              baseUrl: target.baseUrl,
              connectionCount: Math.max(1, Math.round(options.connectionCount / targets.length)),
              script: appendScript(options.bodyBytes, options.streamCount, STREAM_PATH_PREFIX, target.streamIndices),
              pin: [],
            }));
      await Promise.all(loads.map((load) => runWrk({ ...load, durationS: options.warmupS })));
      const treeBefore = processTreeCpuSeconds(running.pid);
      const switchesBefore = treeContextSwitches(running.pid);
      const othersBefore = snapshotAllProcessesCpu();
      const startedMs = performance.now();
      const wrkRuns = Promise.all(loads.map((load) => runWrk({ ...load, durationS: options.durationS })));
      await sleep((options.durationS * 1000) / 2);
      const spread =
        targets === undefined
          ? connectionSpread(running.pid, sharedPort, dataDir, owners)
          : {
              // Each wrk talks to one worker's peer listener about that worker's streams only.
              workers: targets.map((target) => ({
                pid: target.pid,
                index: workerIndexOf(target.pid),
                nodeId: target.nodeId,
                connectionCount: socketsHeld(target.pid, serverSocketInodes(Number(new URL(target.baseUrl).port))),
                ownedStreamCount: target.streamIndices.length,
              })),
              forwardedShare: 0,
            };
      const wrk = combineWrkResults(await wrkRuns);
      const elapsedS = (performance.now() - startedMs) / 1000;
      const treeAfter = processTreeCpuSeconds(running.pid);
      const switches = switchesBetween(switchesBefore, treeContextSwitches(running.pid));
      const othersAfter = snapshotAllProcessesCpu();
      const others = cpuOfOthers(othersBefore, othersAfter, new Set([process.pid, ...treeBefore.keys(), ...treeAfter.keys()]));
      return { wrk, elapsedS, spread, switches, tree: treeCpuBetween(treeBefore, treeAfter), treeBefore, treeAfter, others };
    },
  );
  const measured = outcome.value;
  if (measured !== undefined) {
    const { wrk, elapsedS, tree, others } = measured;
    const acknowledged = wrk.requests - wrk.errors.status;
    cell.wrk = wrk;
    cell.non2xxCount = wrk.errors.status;
    cell.socketErrorCount = wrk.errors.connect + wrk.errors.read + wrk.errors.write + wrk.errors.timeout;
    cell.appendsPerS = acknowledged / (wrk.durationUs / 1e6);
    cell.serverCpuPercent = (tree.cpuS / elapsedS) * 100;
    cell.serverCpuByPid = Object.fromEntries([...measured.treeAfter].map(([pid, afterS]) => [String(pid), ((afterS - (measured.treeBefore.get(pid) ?? 0)) / elapsedS) * 100]));
    cell.cpuUsPerAppend = (tree.cpuS * 1e6) / acknowledged;
    cell.switchesPerAppend = { voluntary: measured.switches.voluntary / acknowledged, involuntary: measured.switches.involuntary / acknowledged };
    cell.generatorCpuPercent = (wrk.cpuSeconds / elapsedS) * 100;
    cell.otherCpuPercent = (others.cpuS / elapsedS) * 100;
    cell.otherCpuTop = others.top;
    cell.spread = measured.spread;
    if (tree.lostPids.length > 0) cell.lostPids = tree.lostPids;
  }
  if (outcome.failure !== undefined) cell.failure = outcome.failure;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

/** Context switches per append, voluntary+involuntary, e.g. `0.41+0.12`. */
function formatSwitches(switches: { voluntary: number; involuntary: number } | undefined): string {
  return switches === undefined ? '-' : `${switches.voluntary.toFixed(2)}+${switches.involuntary.toFixed(2)}`;
}

/** e.g. `32/32` connections per worker. */
function describeSpread(spread: ConnectionSpread | undefined): string {
  if (spread === undefined) return '-';
  return spread.workers.map((worker) => worker.connectionCount).join('/');
}

function cellRow(cell: WorkersCell): string[] {
  return [
    cell.config.label,
    String(cell.repetition),
    formatCount(cell.appendsPerS ?? Number.NaN),
    formatMs(cell.wrk?.latencyUs.p50 ?? Number.NaN),
    formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN),
    formatPercent(cell.serverCpuPercent ?? Number.NaN),
    formatUs(cell.cpuUsPerAppend ?? Number.NaN),
    formatSwitches(cell.switchesPerAppend),
    formatPercent(cell.generatorCpuPercent ?? Number.NaN),
    formatPercent(cell.otherCpuPercent ?? Number.NaN),
    describeSpread(cell.spread),
    formatShare(cell.spread?.forwardedShare ?? Number.NaN),
    cellFlags(cell, (cell.lostPids?.length ?? 0) > 0 ? ['server process ended'] : []),
  ];
}

interface ConfigSummary {
  config: Config;
  runCount: number;
  appendsPerS: number;
  p50Us: number;
  p99Us: number;
  serverCpuPercent: number;
  cpuUsPerAppend: number;
  /** Voluntary + involuntary context switches of the server processes per append. */
  switchesPerAppend: number;
  generatorCpuPercent: number;
  otherCpuPercent: number;
  forwardedShare: number;
}

function summarize(config: Config, cells: readonly WorkersCell[]): ConfigSummary {
  const ok = cells.filter((cell) => cell.config.label === config.label && cell.failure === undefined && cell.appendsPerS !== undefined);
  const of = (pick: (cell: WorkersCell) => number | undefined) => median(ok.map((cell) => pick(cell) ?? Number.NaN));
  return {
    config,
    runCount: ok.length,
    appendsPerS: of((cell) => cell.appendsPerS),
    p50Us: of((cell) => cell.wrk?.latencyUs.p50),
    p99Us: of((cell) => cell.wrk?.latencyUs.p99),
    serverCpuPercent: of((cell) => cell.serverCpuPercent),
    cpuUsPerAppend: of((cell) => cell.cpuUsPerAppend),
    switchesPerAppend: of((cell) => (cell.switchesPerAppend === undefined ? undefined : cell.switchesPerAppend.voluntary + cell.switchesPerAppend.involuntary)),
    generatorCpuPercent: of((cell) => cell.generatorCpuPercent),
    otherCpuPercent: of((cell) => cell.otherCpuPercent),
    forwardedShare: of((cell) => cell.spread?.forwardedShare),
  };
}

/** CPU µs a forwarded request costs beyond a local one: the extra CPU per append over the share forwarded. */
function forwardingCostUs(base: ConfigSummary, scaled: ConfigSummary): number {
  return (scaled.cpuUsPerAppend - base.cpuUsPerAppend) / scaled.forwardedShare;
}

export async function main(args: string[]): Promise<void> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const wrkLine = wrkVersion();
  if (wrkLine === undefined) throw new Error(WRK_INSTALL_HINT);
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  const order = (repetition: number) => (repetition % 2 === 1 ? options.configs : [...options.configs].reverse());
  process.stdout.write(
    [
      ...benchHeader('workers benchmark', machine),
      `load: ${wrkLine}, 1 thread, ${options.connectionCount} connections; ${options.bodyBytes}-byte POSTs over ${options.streamCount.toLocaleString('en-US')} streams, cairn --durability ${options.durability}; warm-up ${options.warmupS} s, measure ${options.durationS} s per cell`,
      `configurations: ${options.configs.map((config) => config.label).join(', ')}; ${options.repeatCount} cells each, order alternating (forward, then reversed, …)`,
      '  routed = the same server, wrk sending each request straight to its owner\'s peer listener (one wrk per worker, connections split): nothing forwarded',
      `pinning: none — with --workers 2 the server needs both cores, so server and wrk share the cores in every cell (wrk's own CPU is reported)`,
      `load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: WorkersCell[] = [];
  for (let repetition = 1; repetition <= options.repeatCount; repetition++) {
    for (const config of order(repetition)) {
      const cell = await runCell(config, repetition, options, machine);
      cells.push(cell);
      process.stdout.write(
        `  ${config.label} #${repetition}: ${cell.failure === undefined ? `${formatCount(cell.appendsPerS ?? Number.NaN)} appends/s, ${formatUs(cell.cpuUsPerAppend ?? Number.NaN)} CPU us/append, forwarded ${formatShare(cell.spread?.forwardedShare ?? Number.NaN)}` : 'FAILED'}\n`,
      );
    }
  }

  const header = ['config', 'run', 'appends/s', 'p50 ms', 'p99 ms', 'srv CPU', 'CPU us/append', 'ctx sw/append', 'wrk CPU', 'other CPU', 'conns/worker', 'forwarded', 'flags'];
  process.stdout.write(`\ncells:\n${formatTable(header, cells.map(cellRow), 1)}\n`);

  const summaries = options.configs.map((config) => summarize(config, cells));
  const base = summaries[0];
  const summaryRows = summaries.map((summary) => [
    summary.config.label,
    String(summary.runCount),
    formatCount(summary.appendsPerS),
    formatMs(summary.p50Us),
    formatMs(summary.p99Us),
    formatPercent(summary.serverCpuPercent),
    formatUs(summary.cpuUsPerAppend),
    Number.isFinite(summary.switchesPerAppend) ? summary.switchesPerAppend.toFixed(2) : '-',
    formatPercent(summary.generatorCpuPercent),
    formatPercent(summary.otherCpuPercent),
    formatShare(summary.forwardedShare),
    base === undefined ? '-' : formatRatio(summary.appendsPerS / base.appendsPerS),
  ]);
  process.stdout.write(
    `\nmedians per configuration:\n${formatTable(['config', 'runs', 'appends/s', 'p50 ms', 'p99 ms', 'srv CPU', 'CPU us/append', 'ctx sw/append', 'wrk CPU', 'other CPU', 'forwarded', `x ${base?.config.label ?? '?'}`], summaryRows, 1)}\n`,
  );

  // Forwarding cost: only against a one-worker baseline (no forwarding there).
  const forwarding =
    base === undefined || base.config.workerCount !== 1 || base.config.routed
      ? []
      : summaries
          .filter((summary) => summary.config.workerCount > 1 && !summary.config.routed)
          .map((summary) => {
            const routed = summaries.find((candidate) => candidate.config.routed && candidate.config.workerCount === summary.config.workerCount);
            return {
              summary,
              routed,
              costUs: forwardingCostUs(base, summary),
              hopCostUs: routed === undefined ? Number.NaN : (summary.cpuUsPerAppend - routed.cpuUsPerAppend) / summary.forwardedShare,
            };
          });
  if (base !== undefined && forwarding.length > 0) {
    const rows = forwarding.map(({ summary, routed, costUs, hopCostUs }) => [
      summary.config.label,
      formatShare(summary.forwardedShare),
      formatShare((summary.config.workerCount - 1) / summary.config.workerCount),
      formatUs(base.cpuUsPerAppend),
      formatUs(summary.cpuUsPerAppend),
      formatUs(costUs),
      formatUs(routed?.cpuUsPerAppend ?? Number.NaN),
      formatUs(hopCostUs),
    ]);
    process.stdout.write(
      [
        '',
        'forwarding (medians; CPU us per append of the whole server process tree):',
        formatTable(['config', 'forwarded (measured)', '(N-1)/N', 'at 1 worker', 'at N', 'us/forwarded, all extra', 'at N routed', 'us/forwarded, hop only'], rows, 1),
        '  all extra = (at N - at 1 worker) / forwarded: everything N workers cost more per append, charged to forwarding',
        '  hop only  = (at N - at N routed) / forwarded: the same server without forwarding as the baseline',
        '',
      ].join('\n'),
    );

    const last = forwarding[forwarding.length - 1];
    if (last !== undefined && Number.isFinite(last.costUs)) {
      const localUs = base.cpuUsPerAppend;
      const routedUs = last.routed?.cpuUsPerAppend ?? Number.NaN;
      const projectionRows = [last.summary.config.workerCount, ...PROJECTED_CORES].map((cores) => {
        const share = (cores - 1) / cores;
        const cpuUs = localUs + share * last.costUs;
        const splitUs = routedUs + share * last.hopCostUs;
        return [
          cores === last.summary.config.workerCount ? `${cores} (measured: ${formatCount(last.summary.appendsPerS)}/s)` : String(cores),
          formatShare(share),
          formatUs(cpuUs),
          formatCount((cores * 1e6) / cpuUs),
          formatRatio((cores * 1e6) / cpuUs / (1e6 / localUs)),
          formatUs(splitUs),
          formatCount((cores * 1e6) / splitUs),
        ];
      });
      process.stdout.write(
        [
          '',
          'PROJECTION (not measured) for N cores running N workers, appends/s = N x 10^6 / (CPU us per append):',
          `  A: CPU us/append = ${formatUs(localUs)} (measured, 1 worker) + (N-1)/N x ${formatUs(last.costUs)} (measured, all extra charged to forwarding)`,
          `  B: CPU us/append = ${formatUs(routedUs)} (measured, ${last.summary.config.workerCount} workers routed) + (N-1)/N x ${formatUs(last.hopCostUs)} (measured, hop only)`,
          '  assumes every core busy with the server alone (load generator elsewhere), connections and streams spread evenly,',
          '  the disk keeping up with N write-ahead logs, and no other shared limit; the measured row shows how far that is from this machine.',
          formatTable(['cores', 'forwarded', 'A: us/append', 'A: appends/s', 'A: x 1 core', 'B: us/append', 'B: appends/s'], projectionRows, 1),
          '',
        ].join('\n'),
      );
    }
  }

  for (const cell of cells.filter((candidate) => candidate.failure !== undefined)) {
    process.stdout.write(`\n${cell.config.label} #${cell.repetition} FAILED:\n${cell.failure}\n`);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `workers-${timestamp}.json`);
  const forwardingJson = forwarding.map(({ summary, costUs, hopCostUs }) => ({ config: summary.config.label, costUs, hopCostUs }));
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk: wrkLine, options, cells, summaries, forwarding: forwardingJson }, null, 2)}\n`);
  process.stdout.write(`\nraw results: ${resultsPath}\n`);
  if (options.cpuProfileDir !== undefined) process.stdout.write(`CPU profiles: ${options.cpuProfileDir} (pids per cell in the JSON's serverCpuByPid and spread)\n`);
  if (cells.some((cell) => cell.failure !== undefined)) process.exitCode = 1;
}
