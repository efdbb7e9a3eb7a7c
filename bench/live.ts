/**
 * Live latency (workload 6): one writer appends a small message every 10 ms to one stream while
 * long-poll and SSE readers tail it; append-to-delivery latency p50/p99/max per reader kind, for
 * Cairn (`--durability wal`) against the upstream reference server, file-backed and in memory.
 *
 *   npm run bench -- live [--duration-ms 10000] [--warmup-ms 1000] [--interval-ms 10]
 *                         [--long-poll-readers 4] [--sse-readers 4] [--message-bytes 100]
 *                         [--servers cairn,ref-file,ref-memory] [--data-root DIR] [--cpu-prof]
 *
 * Each server gets a fresh process (pinned to core 0) in a fresh data directory; the load
 * generator (bench/lib/live-generator.ts: the writer and all readers in one process, one clock,
 * pinned to core 1) creates a `text/plain` stream, waits until every reader waits, then appends on
 * a fixed schedule and checks that every reader got every message in order. About 15 s per
 * server, under a minute in all. Prints one table and writes raw results (every latency sample)
 * to bench/results/live-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
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
import type { LatencySummary } from './lib/latency-summary.ts';
import { runLiveGenerator, type LiveGeneratorResult } from './lib/live-generator.ts';
import { MESSAGE_BYTES_MIN } from './lib/live-readers.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STREAM_PATH = `${STREAM_PATH_ROOT}bench/live`;
/** Issue 4's targets for Cairn, p99 append-to-delivery in ms. */
const LONG_POLL_P99_TARGET_MS = 3;
const SSE_P99_TARGET_MS = 2;

const USAGE = `usage: npm run bench -- live [flags]

One writer appends a message every --interval-ms to one stream; long-poll and SSE readers tail it.
Reports append-to-delivery latency (writer writes the POST -> reader's socket read completes the
message) p50/p99/max per reader kind, and the append round trip, for each server. Every reader
must receive every message in order. About 15 s per server (under a minute by default).

  --duration-ms N         measured appends for this long (default 10000 = 1,000 appends)
  --warmup-ms N           appends before that, delivered and checked but not counted (default 1000)
  --interval-ms N         one append every N ms (default 10)
  --long-poll-readers N   (default 4)
  --sse-readers N         (default 4)
  --message-bytes N       size of each append (default 100, at least ${MESSAGE_BYTES_MIN})
  --servers LIST          of cairn,ref-file,ref-memory (default all)
  --data-root DIR         where temporary data directories go (default the OS temp dir)
  --cpu-prof              write a V8 CPU profile of each Cairn server to bench/results/cpuprof-<timestamp>/
  --help                  this text
`;

interface Options {
  durationMs: number;
  warmupMs: number;
  intervalMs: number;
  longPollReaderCount: number;
  sseReaderCount: number;
  messageBytes: number;
  servers: ServerName[];
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

interface Cell {
  server: ServerName;
  failure?: string;
  result?: Omit<LiveGeneratorResult, 'failure'>;
  /** Server CPU over the generator's run, in % of one core. */
  serverCpuPercent?: number;
  /** The generator's CPU over its measured window, in % of one core. */
  generatorCpuPercent?: number;
  otherCpuPercent?: number;
  otherCpuTop?: OthersCpu['top'];
  serverExit?: string;
}

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '10000' },
      'warmup-ms': { type: 'string', default: '1000' },
      'interval-ms': { type: 'string', default: '10' },
      'long-poll-readers': { type: 'string', default: '4' },
      'sse-readers': { type: 'string', default: '4' },
      'message-bytes': { type: 'string', default: '100' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const options: Options = {
    durationMs: wholeNumberFlag('duration-ms', values['duration-ms'], 1),
    warmupMs: wholeNumberFlag('warmup-ms', values['warmup-ms'], 0),
    intervalMs: wholeNumberFlag('interval-ms', values['interval-ms'], 1),
    longPollReaderCount: wholeNumberFlag('long-poll-readers', values['long-poll-readers'], 0),
    sseReaderCount: wholeNumberFlag('sse-readers', values['sse-readers'], 0),
    messageBytes: wholeNumberFlag('message-bytes', values['message-bytes'], MESSAGE_BYTES_MIN),
    servers: parseServers(values.servers),
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
  if (options.longPollReaderCount + options.sseReaderCount === 0) throw new Error('need at least one reader');
  return options;
}

async function runCell(server: ServerName, options: Options, machine: Machine): Promise<Cell> {
  const cell: Cell = { server };
  const cpuProfile = server === 'cairn' && options.cpuProfileDir !== undefined ? { dir: options.cpuProfileDir, name: 'cairn-live.cpuprofile' } : undefined;
  const outcome = await withServer(server, machine, { dataRoot: options.dataRoot, ...(cpuProfile === undefined ? {} : { cpuProfile }) }, async ({ baseUrl, running }) => {
    const othersBefore = snapshotAllProcessesCpu();
    const serverCpuBeforeS = running.cpuSeconds();
    const startedMs = performance.now();
    const result = await runLiveGenerator({
      baseUrl,
      streamPath: STREAM_PATH,
      serverPid: running.pid,
      longPollReaderCount: options.longPollReaderCount,
      sseReaderCount: options.sseReaderCount,
      intervalMs: options.intervalMs,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      messageBytes: options.messageBytes,
      pin: pinTo(machine, GENERATOR_CORE),
    });
    const wallMs = performance.now() - startedMs;
    const serverCpuS = running.cpuSeconds() - serverCpuBeforeS;
    const others = cpuOfOthers(othersBefore, snapshotAllProcessesCpu(), new Set([process.pid, running.pid, result.pid]));
    return { result, wallMs, serverCpuS, others };
  });
  const measured = outcome.value;
  if (measured !== undefined) {
    const { pid, failure, ...result } = measured.result;
    cell.result = result;
    if (failure !== undefined) cell.failure = failure;
    cell.serverCpuPercent = (measured.serverCpuS * 100_000) / measured.wallMs;
    cell.generatorCpuPercent = (result.cpuS * 100_000) / result.elapsedMs;
    cell.otherCpuPercent = (measured.others.cpuS * 100_000) / measured.wallMs;
    cell.otherCpuTop = measured.others.top;
  }
  if (outcome.failure !== undefined) cell.failure = cell.failure === undefined ? outcome.failure : `${cell.failure}\n${outcome.failure}`;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

type Kind = 'longPoll' | 'sse';
const KIND_LABELS: Record<Kind, string> = { longPoll: 'long-poll', sse: 'SSE' };

/** A p99 from JSON: null stands for Infinity when messages were not delivered. */
function p99Of(cell: Cell | undefined, kind: Kind): number {
  const side = cell?.failure === undefined ? cell?.result?.[kind] : undefined;
  if (side === undefined || side.readerCount === 0) return Number.NaN;
  return side.undeliveredCount > 0 ? Number.POSITIVE_INFINITY : (side.latency.p99Ms ?? Number.NaN);
}

function ratio(cells: readonly Cell[], kind: Kind, against: ServerName): number {
  return p99Of(cells.find((cell) => cell.server === 'cairn'), kind) / p99Of(cells.find((cell) => cell.server === against), kind);
}

function flagsOf(cell: Cell): string {
  const extra: string[] = [];
  const result = cell.result;
  if (result !== undefined) {
    const incomplete = result.readers.filter((reader) => reader.failure !== undefined || reader.receivedCount !== result.appendCount).length;
    if (incomplete > 0) extra.push(`${incomplete} readers incomplete`);
    if (result.appendFailureCount > 0) extra.push(`${result.appendFailureCount} appends failed`);
    if (result.lateAppendCount > 0) extra.push(`${result.lateAppendCount} appends late`);
    if (!result.settle.idle) extra.push('server not idle at start');
  }
  return cellFlags(cell, extra);
}

function ms(summary: LatencySummary | undefined, pick: 'p50Ms' | 'p99Ms' | 'maxMs'): string {
  // Infinity (an undelivered message) arrives as null.
  if (summary === undefined || summary.count === 0) return '-';
  const value = summary[pick];
  return value === null ? '∞' : formatMs(value * 1000);
}

function report(cells: readonly Cell[]): string {
  const rows: string[][] = [];
  for (const cell of cells) {
    for (const kind of ['longPoll', 'sse'] as const) {
      const side = cell.result?.[kind];
      if (side !== undefined && side.readerCount === 0) continue;
      const isCairn = cell.server === 'cairn';
      const expected = cell.result === undefined || side === undefined ? Number.NaN : side.readerCount * (cell.result.appendCount - cell.result.warmupAppendCount);
      rows.push([
        SERVER_LABELS[cell.server],
        `${side?.readerCount ?? '-'} ${KIND_LABELS[kind]}`,
        ms(side?.latency, 'p50Ms'),
        ms(side?.latency, 'p99Ms'),
        ms(side?.latency, 'maxMs'),
        side === undefined ? '-' : `${formatCount(expected - side.undeliveredCount)}/${formatCount(expected)}`,
        ms(cell.result?.appendLatency, 'p50Ms'),
        ms(cell.result?.appendLatency, 'p99Ms'),
        formatPercent(cell.serverCpuPercent ?? Number.NaN),
        formatPercent(cell.generatorCpuPercent ?? Number.NaN),
        formatPercent(cell.otherCpuPercent ?? Number.NaN),
        isCairn ? formatRatio(ratio(cells, kind, 'ref-file')) : '',
        isCairn ? formatRatio(ratio(cells, kind, 'ref-memory')) : '',
        flagsOf(cell),
      ]);
    }
  }
  return formatTable(
    ['server', 'readers', 'p50 ms', 'p99 ms', 'max ms', 'delivered', 'append p50', 'append p99', 'srv CPU', 'gen CPU', 'other CPU', 'p99 ÷ ref-file', 'p99 ÷ ref-mem', 'flags'],
    rows,
    2,
  );
}

function targets(cells: readonly Cell[], options: Options, resultsPath: string): BenchOutcome {
  const cairn = cells.find((cell) => cell.server === 'cairn');
  const checks: TargetCheck[] = [];
  const add = (kind: Kind, workload: string, thresholdMs: number, readerCount: number) => {
    if (readerCount === 0) return;
    const notes: string[] = [];
    for (const against of ['ref-file', 'ref-memory'] as const) {
      const times = ratio(cells, kind, against);
      if (!Number.isNaN(times)) notes.push(`${formatRatio(times)} ${against} p99`);
    }
    if (cairn !== undefined) {
      const flags = flagsOf(cairn);
      if (flags !== 'ok') notes.push(flags.replace(/^! /, ''));
    }
    checks.push(checkTarget(workload, 'p99 ms', p99Of(cairn, kind), 'at-most', thresholdMs, notes.join('; ')));
  };
  add('longPoll', '6. live, long-poll', LONG_POLL_P99_TARGET_MS, options.longPollReaderCount);
  add('sse', '6. live, SSE', SSE_P99_TARGET_MS, options.sseReaderCount);
  return { resultsPath, targets: checks };
}

export async function main(args: string[]): Promise<BenchOutcome | void> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) return;
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  const appendCount = Math.ceil(options.durationMs / options.intervalMs);
  process.stdout.write(
    [
      ...benchHeader('live benchmark', machine),
      `load: 1 writer, one ${options.messageBytes}-byte append (text/plain) every ${options.intervalMs} ms: ${Math.ceil(options.warmupMs / options.intervalMs)} warm-up + ${appendCount} measured; ` +
        `${options.longPollReaderCount} long-poll + ${options.sseReaderCount} SSE readers; all in one generator process (bench/lib/live-generator.ts)`,
      `pinning: ${describePinning(machine, 'generator')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: Cell[] = [];
  for (const [index, server] of options.servers.entries()) {
    const cell = await runCell(server, options, machine);
    cells.push(cell);
    const result = cell.result;
    const summary =
      cell.failure === undefined && result !== undefined
        ? `long-poll p99 ${ms(result.longPoll.latency, 'p99Ms')} ms, SSE p99 ${ms(result.sse.latency, 'p99Ms')} ms, append p99 ${ms(result.appendLatency, 'p99Ms')} ms, ${flagsOf(cell)}`
        : `FAILED: ${(cell.failure ?? 'no result').split('\n')[0]}`;
    process.stdout.write(`[${index + 1}/${options.servers.length}] ${SERVER_LABELS[server]}: ${summary}\n`);
  }

  process.stdout.write(`\n${report(cells)}\n`);
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server}:\n${cell.failure}\n`);
  process.stdout.write(
    '\nLatency: from the writer writing the POST to the reader\'s socket read that completes the message (one clock, one process);\n' +
      `over ${appendCount} measured appends × readers of that kind; a message never delivered counts as ∞. delivered = messages received / expected.\n` +
      'append p50/p99: the POST round trip. p99 ÷ ref: Cairn\'s p99 over the reference\'s (below 1 = Cairn faster).\n' +
      'srv CPU / other CPU: share of one core over the whole run; gen CPU: the generator over its measured window.\n',
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `live-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, config, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profile: ${cpuProfileDir}\n`);
  if (failures.length > 0) process.exitCode = 1;
  return targets(cells, options, resultsPath);
}
