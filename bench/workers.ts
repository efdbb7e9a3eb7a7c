/**
 * Workers (issue 14, "Speed"): small durable appends over many streams against `cairn serve
 * --workers 1` (one process, no forwarding) and `--workers 2` (a primary and two worker
 * processes sharing one port; a request reaching the worker that does not own its stream's slot
 * is forwarded to the owner over loopback HTTP), in the same run, alternating, several times.
 *
 *   npm run bench -- workers [--duration-ms 5000] [--warmup-ms 1000] [--repeat 3] [--workers 1,2]
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
import { cpuOfOthers, processTreeCpuSeconds, processTreePids, snapshotAllProcessesCpu, treeCpuBetween, type OthersCpu } from './lib/cpu.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { appendScript, runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

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
  --streams 1000        streams written (requests rotate over them)
  --writers 64          wrk connections
  --body-bytes 100      append size
  --data-root DIR       where the temporary data directories go (default: the OS temp dir)
  --cpu-prof            V8 CPU profiles of every server process, one directory per cell
                        (bench/results/cpuprof-<timestamp>/workers-<N>-<rep>/CPU.*.<pid>.*.cpuprofile)

About (7 + duration + warm-up) s per cell: 6 cells take about 1.3 minutes with the defaults.
`;

interface WorkersOptions {
  durationS: number;
  warmupS: number;
  repeatCount: number;
  workerCounts: number[];
  streamCount: number;
  connectionCount: number;
  bodyBytes: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

/** Where wrk's connections sat halfway through the measured run. */
interface ConnectionSpread {
  /** Per worker process: its index, node id, established client connections, streams it owns. */
  workers: { pid: number; index: number | undefined; nodeId: string | undefined; connectionCount: number; ownedStreamCount: number }[];
  /** Share of requests forwarded (0..1), from the connection spread and stream ownership. */
  forwardedShare: number;
}

interface WorkersCell extends FlaggableCell {
  workerCount: number;
  repetition: number;
  wrk?: WrkResult;
  appendsPerS?: number;
  /** CPU of the server's whole process tree, % of one core, over the measured window. */
  serverCpuPercent?: number;
  /** Per server process (primary first), % of one core. */
  serverCpuByPid?: Record<string, number>;
  cpuUsPerAppend?: number;
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
      streams: { type: 'string', default: '1000' },
      writers: { type: 'string', default: '64' },
      'body-bytes': { type: 'string', default: '100' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const workerCounts = values.workers.split(',').map((text) => wholeNumberFlag('workers', text.trim(), 1, 64));
  return {
    durationS: wholeSeconds('duration-ms', values['duration-ms']),
    warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
    repeatCount: wholeNumberFlag('repeat', values.repeat, 1),
    workerCounts,
    streamCount: wholeNumberFlag('streams', values.streams, 1),
    connectionCount: wholeNumberFlag('writers', values.writers, 1),
    bodyBytes: wholeNumberFlag('body-bytes', values['body-bytes'], 1),
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

/** Runs `each(i)` for i in [0, count) with {@link REQUEST_CONCURRENCY} at a time. */
async function forEachConcurrently(count: number, each: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await each(next++);
  };
  await Promise.all(Array.from({ length: Math.min(REQUEST_CONCURRENCY, count) }, lane));
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
  await forEachConcurrently(streamCount, async (index) => {
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

async function runCell(workerCount: number, repetition: number, options: WorkersOptions, machine: Machine): Promise<WorkersCell> {
  const cell: WorkersCell = { workerCount, repetition };
  const profileDir = options.cpuProfileDir === undefined ? undefined : join(options.cpuProfileDir, `workers-${workerCount}-${repetition}`);
  if (profileDir !== undefined) cell.cpuProfileDir = profileDir;
  const outcome = await withServer(
    'cairn',
    machine,
    {
      dataRoot: options.dataRoot,
      cairnFlags: ['--workers', String(workerCount)],
      pinned: false,
      ...(profileDir === undefined ? {} : { cpuProfile: { dir: profileDir } }),
    },
    async ({ baseUrl, running, dataDir }) => {
      const owners = await createStreams(baseUrl, options.streamCount);
      const load = {
        baseUrl,
        connectionCount: options.connectionCount,
        script: appendScript(options.bodyBytes, options.streamCount, STREAM_PATH_PREFIX),
        pin: [],
      };
      await runWrk({ ...load, durationS: options.warmupS });
      const treeBefore = processTreeCpuSeconds(running.pid);
      const othersBefore = snapshotAllProcessesCpu();
      const startedMs = performance.now();
      const wrkRun = runWrk({ ...load, durationS: options.durationS });
      await sleep((options.durationS * 1000) / 2);
      const spread = connectionSpread(running.pid, Number(new URL(baseUrl).port), dataDir, owners);
      const wrk = await wrkRun;
      const elapsedS = (performance.now() - startedMs) / 1000;
      const treeAfter = processTreeCpuSeconds(running.pid);
      const othersAfter = snapshotAllProcessesCpu();
      const others = cpuOfOthers(othersBefore, othersAfter, new Set([process.pid, ...treeBefore.keys(), ...treeAfter.keys()]));
      return { wrk, elapsedS, spread, tree: treeCpuBetween(treeBefore, treeAfter), treeBefore, treeAfter, others };
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

function median(values: readonly number[]): number {
  const finite = values.filter(Number.isFinite).sort((left, right) => left - right);
  if (finite.length === 0) return Number.NaN;
  const middle = Math.floor(finite.length / 2);
  return finite.length % 2 === 1 ? (finite[middle] as number) : ((finite[middle - 1] as number) + (finite[middle] as number)) / 2;
}

function formatUs(value: number): string {
  return Number.isFinite(value) ? (value < 100 ? value.toFixed(1) : value.toFixed(0)) : '-';
}

function formatShare(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : '-';
}

/** e.g. `32/32` connections per worker. */
function describeSpread(spread: ConnectionSpread | undefined): string {
  if (spread === undefined) return '-';
  return spread.workers.map((worker) => worker.connectionCount).join('/');
}

function cellRow(cell: WorkersCell): string[] {
  return [
    `--workers ${cell.workerCount}`,
    String(cell.repetition),
    formatCount(cell.appendsPerS ?? Number.NaN),
    formatMs(cell.wrk?.latencyUs.p50 ?? Number.NaN),
    formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN),
    formatPercent(cell.serverCpuPercent ?? Number.NaN),
    formatUs(cell.cpuUsPerAppend ?? Number.NaN),
    formatPercent(cell.generatorCpuPercent ?? Number.NaN),
    formatPercent(cell.otherCpuPercent ?? Number.NaN),
    describeSpread(cell.spread),
    formatShare(cell.spread?.forwardedShare ?? Number.NaN),
    cellFlags(cell, (cell.lostPids?.length ?? 0) > 0 ? ['server process ended'] : []),
  ];
}

interface ConfigSummary {
  workerCount: number;
  runCount: number;
  appendsPerS: number;
  p50Us: number;
  p99Us: number;
  serverCpuPercent: number;
  cpuUsPerAppend: number;
  generatorCpuPercent: number;
  otherCpuPercent: number;
  forwardedShare: number;
}

function summarize(workerCount: number, cells: readonly WorkersCell[]): ConfigSummary {
  const ok = cells.filter((cell) => cell.workerCount === workerCount && cell.failure === undefined && cell.appendsPerS !== undefined);
  const of = (pick: (cell: WorkersCell) => number | undefined) => median(ok.map((cell) => pick(cell) ?? Number.NaN));
  return {
    workerCount,
    runCount: ok.length,
    appendsPerS: of((cell) => cell.appendsPerS),
    p50Us: of((cell) => cell.wrk?.latencyUs.p50),
    p99Us: of((cell) => cell.wrk?.latencyUs.p99),
    serverCpuPercent: of((cell) => cell.serverCpuPercent),
    cpuUsPerAppend: of((cell) => cell.cpuUsPerAppend),
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
  const order = (repetition: number) => (repetition % 2 === 1 ? options.workerCounts : [...options.workerCounts].reverse());
  process.stdout.write(
    [
      ...benchHeader('workers benchmark', machine),
      `load: ${wrkLine}, 1 thread, ${options.connectionCount} connections; ${options.bodyBytes}-byte POSTs over ${options.streamCount.toLocaleString('en-US')} streams, cairn --durability wal; warm-up ${options.warmupS} s, measure ${options.durationS} s per cell`,
      `configurations: ${options.workerCounts.map((count) => `--workers ${count}`).join(', ')}; ${options.repeatCount} cells each, alternating (${order(1).join(',')} then ${order(2).join(',')}, …)`,
      `pinning: none — with --workers 2 the server needs both cores, so server and wrk share the cores in every cell (wrk's own CPU is reported)`,
      `load average at start: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: WorkersCell[] = [];
  for (let repetition = 1; repetition <= options.repeatCount; repetition++) {
    for (const workerCount of order(repetition)) {
      const cell = await runCell(workerCount, repetition, options, machine);
      cells.push(cell);
      process.stdout.write(
        `  --workers ${workerCount} #${repetition}: ${cell.failure === undefined ? `${formatCount(cell.appendsPerS ?? Number.NaN)} appends/s, ${formatUs(cell.cpuUsPerAppend ?? Number.NaN)} CPU us/append, forwarded ${formatShare(cell.spread?.forwardedShare ?? Number.NaN)}` : 'FAILED'}\n`,
      );
    }
  }

  const header = ['config', 'run', 'appends/s', 'p50 ms', 'p99 ms', 'srv CPU', 'CPU us/append', 'wrk CPU', 'other CPU', 'conns/worker', 'forwarded', 'flags'];
  process.stdout.write(`\ncells:\n${formatTable(header, cells.map(cellRow), 1)}\n`);

  const summaries = options.workerCounts.map((count) => summarize(count, cells));
  const base = summaries[0];
  const summaryRows = summaries.map((summary) => [
    `--workers ${summary.workerCount}`,
    String(summary.runCount),
    formatCount(summary.appendsPerS),
    formatMs(summary.p50Us),
    formatMs(summary.p99Us),
    formatPercent(summary.serverCpuPercent),
    formatUs(summary.cpuUsPerAppend),
    formatPercent(summary.generatorCpuPercent),
    formatPercent(summary.otherCpuPercent),
    formatShare(summary.forwardedShare),
    base === undefined ? '-' : formatRatio(summary.appendsPerS / base.appendsPerS),
  ]);
  process.stdout.write(
    `\nmedians per configuration:\n${formatTable(['config', 'runs', 'appends/s', 'p50 ms', 'p99 ms', 'srv CPU', 'CPU us/append', 'wrk CPU', 'other CPU', 'forwarded', `x workers-${base?.workerCount ?? '?'}`], summaryRows, 1)}\n`,
  );

  const scaled = summaries.filter((summary) => base !== undefined && summary.workerCount > base.workerCount && base.workerCount === 1);
  const forwarding = scaled.map((summary) => ({ summary, costUs: base === undefined ? Number.NaN : forwardingCostUs(base, summary) }));
  if (base !== undefined && forwarding.length > 0) {
    const rows = forwarding.map(({ summary, costUs }) => [
      `--workers ${summary.workerCount}`,
      formatShare(summary.forwardedShare),
      formatShare((summary.workerCount - 1) / summary.workerCount),
      formatUs(base.cpuUsPerAppend),
      formatUs(summary.cpuUsPerAppend),
      formatUs(summary.cpuUsPerAppend - base.cpuUsPerAppend),
      formatUs(costUs),
    ]);
    process.stdout.write(
      `\nforwarding (medians):\n${formatTable(['config', 'forwarded (measured)', '(N-1)/N', 'CPU us/append at 1', 'at N', 'extra', 'CPU us per forwarded request'], rows, 1)}\n`,
    );

    const last = forwarding[forwarding.length - 1];
    if (last !== undefined && Number.isFinite(last.costUs)) {
      const localUs = base.cpuUsPerAppend;
      const projectionRows = [last.summary.workerCount, ...PROJECTED_CORES].map((cores) => {
        const share = (cores - 1) / cores;
        const cpuUs = localUs + share * last.costUs;
        return [
          cores === last.summary.workerCount ? `${cores} (measured: ${formatCount(last.summary.appendsPerS)}/s)` : String(cores),
          formatShare(share),
          formatUs(cpuUs),
          formatCount((cores * 1e6) / cpuUs),
          formatRatio(((cores * 1e6) / cpuUs) / (1e6 / localUs)),
          formatPercent((localUs / cpuUs) * 100),
        ];
      });
      process.stdout.write(
        [
          '',
          `PROJECTION (not measured) for N cores running N workers: CPU us/append = ${formatUs(localUs)} (measured at --workers 1) + (N-1)/N x ${formatUs(last.costUs)} (measured forwarding cost);`,
          'appends/s = N x 10^6 / that; assumes every core busy with the server alone (load generator elsewhere), connections spread evenly,',
          'streams spread evenly over slots, the disk keeping up with N write-ahead logs, and no other shared limit.',
          formatTable(['cores', 'forwarded', 'CPU us/append', 'appends/s', 'x 1 core', 'per-core efficiency'], projectionRows, 1),
          '',
        ].join('\n'),
      );
    }
  }

  for (const cell of cells.filter((candidate) => candidate.failure !== undefined)) {
    process.stdout.write(`\n--workers ${cell.workerCount} #${cell.repetition} FAILED:\n${cell.failure}\n`);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `workers-${timestamp}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk: wrkLine, options, cells, summaries, forwarding: forwarding.map(({ summary, costUs }) => ({ workerCount: summary.workerCount, costUs })) }, null, 2)}\n`);
  process.stdout.write(`\nraw results: ${resultsPath}\n`);
  if (options.cpuProfileDir !== undefined) process.stdout.write(`CPU profiles: ${options.cpuProfileDir} (pids per cell in the JSON's serverCpuByPid and spread)\n`);
  if (cells.some((cell) => cell.failure !== undefined)) process.exitCode = 1;
}
