/**
 * Fan-out (workload 7): 10,000 SSE readers, then (separately) 5,000 long-poll readers on one
 * stream; one append at a time, timed until every reader has it; and the server's memory per idle
 * connection. Cairn (`--durability wal`) against the upstream reference server, file-backed and
 * in memory, in the same run.
 *
 *   npm run bench -- fan-out [--sse-readers 10000] [--long-poll-readers 5000] [--appends 3]
 *                            [--append-gap-ms 500] [--connect-concurrency 256] [--source-addresses 4]
 *                            [--servers cairn,ref-file,ref-memory] [--phases sse,long-poll]
 *                            [--connect-timeout-ms 60000] [--delivery-timeout-ms 10000]
 *                            [--message-bytes 100] [--data-root DIR] [--cpu-prof]
 *
 * Every (server, phase) gets a fresh server process (pinned to core 0) in a fresh data directory,
 * so each phase starts from the same baseline memory. The load generator
 * (bench/lib/fan-out-generator.ts, pinned to core 1) warms the server up, reads its RSS, connects
 * the readers (bounded concurrency, spread over loopback source addresses), waits until the server
 * is idle, reads its RSS again, then makes the appends. Prints one table and writes raw results to
 * bench/results/fan-out-<timestamp>.json. About three minutes with the defaults (the file-backed reference is the slowest part).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  benchHeader,
  cellFlags,
  describePinning,
  fileTimestamp,
  GENERATOR_CORE,
  GENERATOR_SATURATED_PERCENT,
  installInterruptCleanup,
  parseServers,
  pinTo,
  SERVER_LABELS,
  SERVER_NAMES,
  STREAM_PATH_ROOT,
  withServer,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { cpuOfOthers, snapshotAllProcessesCpu, type OthersCpu } from './lib/cpu.ts';
import { runFanOutGenerator, type FanOutResult } from './lib/fan-out-generator.ts';
import { MESSAGE_BYTES_MIN, type ReaderKind } from './lib/live-readers.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { median } from './lib/median.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STREAM_PATH = `${STREAM_PATH_ROOT}bench/fan-out`;
/** Issue 4's targets for Cairn. */
const SSE_P99_TARGET_MS = 150;
const SSE_KIB_PER_CONNECTION_TARGET = 10;
const LONG_POLL_P99_TARGET_MS = 250;
/** The reader counts issue 4's targets are stated for. */
const SSE_READERS_TARGET = 10_000;
const LONG_POLL_READERS_TARGET = 5_000;
/** File descriptors a server needs besides the readers' sockets (WAL, listeners, the writer, slack). */
const SERVER_FDS_SPARE = 200;
const PHASES: readonly ReaderKind[] = ['sse', 'long-poll'];
const PHASE_LABELS: Record<ReaderKind, string> = { sse: 'SSE', 'long-poll': 'long-poll' };

const USAGE = `usage: npm run bench -- fan-out [flags]

Thousands of readers on one stream, one kind per phase (SSE, then long-poll), each phase on a
fresh server. Connects them all, waits until the server is idle, then makes single appends and
times each until every reader has it: delivery p50/p99/max over all (reader, append) pairs, and
server RSS per idle connection ((RSS connected and idle - RSS before) / readers). About three
minutes with the defaults, most of it the file-backed reference. Every wait is bounded: connecting
a phase's readers by --connect-timeout-ms, one append's delivery by --delivery-timeout-ms, each
wait for the server to go idle by 30 s.

  --sse-readers N            readers in the SSE phase (default 10000)
  --long-poll-readers N      readers in the long-poll phase (default 5000)
  --appends N                timed appends per phase (default 3)
  --append-gap-ms N          pause between appends, after the server went idle (default 500)
  --connect-concurrency N    readers connecting at once (default 256)
  --source-addresses N       spread readers over 127.0.0.2 … 127.0.0.(N+1) (default 4)
  --phases LIST              of sse,long-poll (default both)
  --servers LIST             of cairn,ref-file,ref-memory (default all)
  --connect-timeout-ms N     for connecting all readers of a phase (default 60000)
  --delivery-timeout-ms N    for one append to reach every reader (default 10000)
  --message-bytes N          size of each append (default 100, at least ${MESSAGE_BYTES_MIN})
  --data-root DIR            where temporary data directories go (default the OS temp dir)
  --cpu-prof                 write a V8 CPU profile of each Cairn server to bench/results/cpuprof-<timestamp>/
  --help                     this text
`;

interface Options {
  readerCounts: Record<ReaderKind, number>;
  appendCount: number;
  appendGapMs: number;
  connectConcurrency: number;
  sourceAddressCount: number;
  phases: ReaderKind[];
  servers: ServerName[];
  connectTimeoutMs: number;
  deliveryTimeoutMs: number;
  messageBytes: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

interface Cell {
  server: ServerName;
  kind: ReaderKind;
  readerCount: number;
  failure?: string;
  result?: Omit<FanOutResult, 'failure'>;
  /** The server's open-files limit (soft), from /proc/<pid>/limits. */
  serverFdLimit?: number;
  /** The generator's CPU in its busiest delivery window, in % of one core. */
  generatorCpuPercent?: number;
  /** Everything else on the machine over the generator's run, in % of one core. */
  otherCpuPercent?: number;
  otherCpuTop?: OthersCpu['top'];
  serverExit?: string;
}

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'sse-readers': { type: 'string', default: String(SSE_READERS_TARGET) },
      'long-poll-readers': { type: 'string', default: String(LONG_POLL_READERS_TARGET) },
      appends: { type: 'string', default: '3' },
      'append-gap-ms': { type: 'string', default: '500' },
      'connect-concurrency': { type: 'string', default: '256' },
      'source-addresses': { type: 'string', default: '4' },
      phases: { type: 'string', default: PHASES.join(',') },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      'connect-timeout-ms': { type: 'string', default: '60000' },
      'delivery-timeout-ms': { type: 'string', default: '10000' },
      'message-bytes': { type: 'string', default: '100' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const phases = values.phases.split(',').map((phase) => phase.trim());
  for (const phase of phases) if (!PHASES.includes(phase as ReaderKind)) throw new Error(`unknown phase "${phase}"; choose from ${PHASES.join(', ')}`);
  return {
    readerCounts: { sse: wholeNumberFlag('sse-readers', values['sse-readers'], 1), 'long-poll': wholeNumberFlag('long-poll-readers', values['long-poll-readers'], 1) },
    appendCount: wholeNumberFlag('appends', values.appends, 1),
    appendGapMs: wholeNumberFlag('append-gap-ms', values['append-gap-ms'], 0),
    connectConcurrency: wholeNumberFlag('connect-concurrency', values['connect-concurrency'], 1),
    sourceAddressCount: wholeNumberFlag('source-addresses', values['source-addresses'], 1, 250),
    phases: phases as ReaderKind[],
    servers: parseServers(values.servers),
    connectTimeoutMs: wholeNumberFlag('connect-timeout-ms', values['connect-timeout-ms'], 1),
    deliveryTimeoutMs: wholeNumberFlag('delivery-timeout-ms', values['delivery-timeout-ms'], 1),
    messageBytes: wholeNumberFlag('message-bytes', values['message-bytes'], MESSAGE_BYTES_MIN),
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

/** The soft `Max open files` of process `pid`; NaN when unreadable or unlimited. */
function openFilesLimit(pid: number): number {
  try {
    const match = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]);
  } catch {
    return Number.NaN;
  }
}

async function runCell(server: ServerName, kind: ReaderKind, options: Options, machine: Machine): Promise<Cell> {
  const readerCount = options.readerCounts[kind];
  const cell: Cell = { server, kind, readerCount };
  const cpuProfile = server === 'cairn' && options.cpuProfileDir !== undefined ? { dir: options.cpuProfileDir, name: `cairn-fan-out-${kind}.cpuprofile` } : undefined;
  const outcome = await withServer(server, machine, { dataRoot: options.dataRoot, ...(cpuProfile === undefined ? {} : { cpuProfile }) }, async ({ baseUrl, running }) => {
    cell.serverFdLimit = openFilesLimit(running.pid);
    if (cell.serverFdLimit < readerCount + SERVER_FDS_SPARE) {
      throw new Error(`the server may open only ${cell.serverFdLimit} files, fewer than ${readerCount} readers need (raise \`ulimit -n\` before running)`);
    }
    const othersBefore = snapshotAllProcessesCpu();
    const startedMs = performance.now();
    const result = await runFanOutGenerator({
      baseUrl,
      streamPath: STREAM_PATH,
      serverPid: running.pid,
      kind,
      readerCount,
      appendCount: options.appendCount,
      appendGapMs: options.appendGapMs,
      connectConcurrency: options.connectConcurrency,
      sourceAddressCount: options.sourceAddressCount,
      messageBytes: options.messageBytes,
      connectTimeoutMs: options.connectTimeoutMs,
      deliveryTimeoutMs: options.deliveryTimeoutMs,
      pin: pinTo(machine, GENERATOR_CORE),
    });
    const wallMs = performance.now() - startedMs;
    const others = cpuOfOthers(othersBefore, snapshotAllProcessesCpu(), new Set([process.pid, running.pid, result.pid]));
    return { result, wallMs, others };
  });
  const measured = outcome.value;
  if (measured !== undefined) {
    const { pid, failure, ...result } = measured.result;
    cell.result = result;
    if (failure !== undefined) cell.failure = failure;
    cell.generatorCpuPercent = result.appends.length === 0 ? Number.NaN : Math.max(...result.appends.map((append) => append.generatorCpuPercent));
    cell.otherCpuPercent = (measured.others.cpuS * 100_000) / measured.wallMs;
    cell.otherCpuTop = measured.others.top;
  }
  if (outcome.failure !== undefined) cell.failure = cell.failure === undefined ? outcome.failure : `${cell.failure}\n${outcome.failure}`;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

/** A cell's p99 over all (reader, append) pairs; ∞ when a connected reader missed an append or readers failed to connect. */
function p99Of(cell: Cell | undefined): number {
  const result = cell?.result;
  if (cell === undefined || result === undefined || result.appends.length === 0) return Number.NaN;
  const missing = result.readerCount * result.appends.length - result.deliveredCount;
  // 1% or more of the pairs missing: the 99th percentile is not a delivery at all.
  if (missing >= 0.01 * result.readerCount * result.appends.length) return Number.POSITIVE_INFINITY;
  return result.latency.p99Ms ?? Number.POSITIVE_INFINITY;
}

function kibPerConnection(cell: Cell | undefined): number {
  const bytes = cell?.result?.rssPerReaderBytes;
  return bytes === undefined || bytes === null ? Number.NaN : bytes / 1024;
}

function ratio(cells: readonly Cell[], kind: ReaderKind, against: ServerName, value: (cell: Cell | undefined) => number): number {
  const of = (server: ServerName) => value(cells.find((cell) => cell.server === server && cell.kind === kind));
  return of('cairn') / of(against);
}

function flagsOf(cell: Cell): string {
  const extra: string[] = [];
  const result = cell.result;
  if (result !== undefined) {
    if (result.connectedCount < result.readerCount) extra.push(`${formatCount(result.readerCount - result.connectedCount)} not connected`);
    const expectedPairs = result.connectedCount * result.appends.length;
    if (result.deliveredCount < expectedPairs) extra.push(`${formatCount(expectedPairs - result.deliveredCount)} deliveries missing`);
    if (result.failedReaderCount > 0) extra.push(`${formatCount(result.failedReaderCount)} readers failed`);
    if (result.reconnectCount > 0) extra.push(`${result.reconnectCount} SSE reconnects`);
    if (!result.idleConnected.idle || result.appends.some((append) => !append.settle.idle)) extra.push('server not idle between appends');
    if (result.appends.some((append) => append.status < 200 || append.status > 299)) extra.push('append failed');
  }
  return cellFlags(cell, extra);
}

/** A latency in ms for the table; Infinity (null once through JSON) is a delivery that never came. */
function ms(value: number | null | undefined): string {
  if (value === undefined) return '-';
  if (value === null || value === Number.POSITIVE_INFINITY) return '∞';
  return formatMs(value * 1000);
}

function report(cells: readonly Cell[]): string {
  const rows = cells.map((cell) => {
    const result = cell.result;
    const isCairn = cell.server === 'cairn';
    const appends = result?.appends ?? [];
    const pairs = result === undefined ? Number.NaN : result.readerCount * appends.length;
    return [
      SERVER_LABELS[cell.server],
      `${formatCount(cell.readerCount)} ${PHASE_LABELS[cell.kind]}`,
      result === undefined ? '-' : formatCount(result.connectedCount),
      result === undefined ? '-' : (result.connectMs / 1000).toFixed(1),
      result === undefined ? '-' : `${formatCount(result.deliveredCount)}/${formatCount(pairs)}`,
      appends.length === 0 ? '-' : ms(result?.latency.p50Ms),
      appends.length === 0 ? '-' : ms(p99Of(cell)),
      appends.length === 0 ? '-' : ms(result?.latency.maxMs),
      ms(median(appends.map((append) => append.ackMs))),
      formatCount(median(appends.map((append) => append.serverCpuMs))),
      Number.isFinite(kibPerConnection(cell)) ? kibPerConnection(cell).toFixed(1) : '-',
      formatPercent(cell.generatorCpuPercent ?? Number.NaN),
      formatPercent(cell.otherCpuPercent ?? Number.NaN),
      isCairn ? formatRatio(ratio(cells, cell.kind, 'ref-file', p99Of)) : '',
      isCairn ? formatRatio(ratio(cells, cell.kind, 'ref-memory', p99Of)) : '',
      flagsOf(cell),
    ];
  });
  return formatTable(
    [
      'server',
      'readers',
      'connected',
      'connect s',
      'delivered',
      'p50 ms',
      'p99 ms',
      'max ms',
      'append ms',
      'srv CPU ms',
      'KiB/conn',
      'gen CPU',
      'other CPU',
      'p99 ÷ ref-file',
      'p99 ÷ ref-mem',
      'flags',
    ],
    rows,
    2,
  );
}

function targets(cells: readonly Cell[], options: Options, resultsPath: string): BenchOutcome {
  const checks: TargetCheck[] = [];
  const notesFor = (kind: ReaderKind, value: (cell: Cell | undefined) => number, what: string) => {
    const cairn = cells.find((cell) => cell.server === 'cairn' && cell.kind === kind);
    const notes: string[] = [];
    for (const against of ['ref-file', 'ref-memory'] as const) {
      const times = ratio(cells, kind, against, value);
      if (!Number.isNaN(times)) notes.push(`${formatRatio(times)} ${against} ${what}`);
    }
    const target = kind === 'sse' ? SSE_READERS_TARGET : LONG_POLL_READERS_TARGET;
    if (options.readerCounts[kind] !== target) notes.push(`measured with ${formatCount(options.readerCounts[kind])} readers, not ${formatCount(target)}`);
    if (cairn !== undefined) {
      const flags = flagsOf(cairn);
      if (flags !== 'ok') notes.push(flags.replace(/^! /, ''));
    }
    return { cairn, note: notes.join('; ') };
  };
  if (options.phases.includes('sse')) {
    const workload = '7. fan-out, 10,000 SSE readers';
    const latency = notesFor('sse', p99Of, 'p99');
    checks.push(checkTarget(workload, 'p99 ms', p99Of(latency.cairn), 'at-most', SSE_P99_TARGET_MS, latency.note));
    const memory = notesFor('sse', kibPerConnection, 'KiB/conn');
    checks.push(checkTarget(workload, 'server KiB per idle SSE connection', kibPerConnection(memory.cairn), 'at-most', SSE_KIB_PER_CONNECTION_TARGET, memory.note));
  }
  if (options.phases.includes('long-poll')) {
    const latency = notesFor('long-poll', p99Of, 'p99');
    checks.push(checkTarget('7. fan-out, 5,000 long-poll readers', 'p99 ms', p99Of(latency.cairn), 'at-most', LONG_POLL_P99_TARGET_MS, latency.note));
  }
  return { resultsPath, targets: checks };
}

export async function main(args: string[]): Promise<BenchOutcome | void> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) return;
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  const readers = options.phases.map((kind) => `${formatCount(options.readerCounts[kind])} ${PHASE_LABELS[kind]}`).join(', then ');
  process.stdout.write(
    [
      ...benchHeader('fan-out benchmark', machine),
      `load: ${readers} readers on one stream (a fresh server per phase), ${options.appendCount} single ${options.messageBytes}-byte appends (text/plain) per phase, ` +
        `${options.connectConcurrency} connecting at once from ${options.sourceAddressCount} loopback addresses; one generator process (bench/lib/fan-out-generator.ts)`,
      `pinning: ${describePinning(machine, 'generator')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: Cell[] = [];
  const total = options.servers.length * options.phases.length;
  for (const kind of options.phases) {
    for (const server of options.servers) {
      const cell = await runCell(server, kind, options, machine);
      cells.push(cell);
      const result = cell.result;
      const summary =
        result !== undefined && result.appends.length > 0
          ? `${formatCount(result.connectedCount)} connected in ${(result.connectMs / 1000).toFixed(1)} s, p99 ${ms(p99Of(cell))} ms, ` +
            `${Number.isFinite(kibPerConnection(cell)) ? kibPerConnection(cell).toFixed(1) : '-'} KiB/conn, ${flagsOf(cell)}`
          : `FAILED: ${(cell.failure ?? 'no result').split('\n')[0]}`;
      process.stdout.write(`[${cells.length}/${total}] ${SERVER_LABELS[server]}, ${formatCount(cell.readerCount)} ${PHASE_LABELS[kind]}: ${summary}\n`);
    }
  }

  process.stdout.write(`\n${report(cells)}\n`);
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server} ${cell.kind}:\n${cell.failure}\n`);
  process.stdout.write(
    '\nDelivery: from the writer writing the POST to the reader\'s socket read that completes the message (one clock, one process),\n' +
      'over every (reader, append) pair; p99 is ∞ when 1% or more of the pairs were never delivered. append ms: median POST round trip.\n' +
      'srv CPU ms: median server CPU per append, from the append until the server is idle again (long-poll: includes the re-polls).\n' +
      'KiB/conn: (server RSS with all readers connected and idle - RSS before connecting, after a warm-up) / readers; RSS counts the\n' +
      'process\'s memory (JS heap incl. garbage not yet collected, buffers, native), not kernel socket buffers.\n' +
      `gen CPU: the generator in its busiest delivery window (>= ${GENERATOR_SATURATED_PERCENT}%: it may be the limit); other CPU: everything else over the phase.\n` +
      'p99 ÷ ref: Cairn\'s p99 over the reference\'s (below 1 = Cairn faster).\n',
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `fan-out-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, config, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (failures.length > 0) process.exitCode = 1;
  return targets(cells, options, resultsPath);
}
