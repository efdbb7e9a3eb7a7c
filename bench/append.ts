/**
 * Workload 1, small appends: throughput and latency of 100-byte POSTs, Cairn (`--durability wal`,
 * fsync before ack) against the upstream reference server file-backed (fsync per append) and in
 * memory, under the same load in the same run.
 *
 *   npm run bench -- append [--duration-ms 5000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
 *                           [--workloads 1x1,1x16,1x64,1x256,1000x64] [--body-bytes 100]
 *                           [--data-root DIR] [--cpu-prof]
 *
 * Each cell (server × workload) gets a fresh server process in a fresh temporary data directory:
 * start, create the stream(s), warm up, measure, stop by PID, delete the directory. The server is
 * pinned to core 0 and the load generator (wrk, one thread) to core 1 when taskset works.
 * Workload `SxC` is S streams, C concurrent connections (writers) each sending POSTs back to back;
 * with S > 1 consecutive requests rotate over the streams. Durations are whole seconds (wrk's
 * resolution): `--duration-ms` is rounded up. Prints a table, writes raw results to
 * bench/results/append-<timestamp>.json and returns issue 4's targets for workload 1.
 *
 * The cell runner is exported for bench/large-append.ts (the same code path with 1 MiB bodies).
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
  OTHER_CPU_BUSY_PERCENT,
  parseServers,
  pinTo,
  SERVER_LABELS,
  SERVER_NAMES,
  STREAM_PATH_ROOT,
  withServer,
  type FlaggableCell,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import type { OthersCpu } from './lib/cpu.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { measureWrk } from './lib/wrk-cell.ts';
import { appendScript, runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** Stream i of a cell is at `${STREAM_PATH_PREFIX}${i}`. */
const STREAM_PATH_PREFIX = `${STREAM_PATH_ROOT}bench/s`;
/** Streams created at once before a cell (1,000 one by one would take seconds on the reference's file mode). */
const CREATE_CONCURRENCY = 16;
const CREATE_TIMEOUT_MS = 10_000;

export interface AppendWorkload {
  /** `<streams>x<writers>`, e.g. `1x64`. */
  name: string;
  streamCount: number;
  connectionCount: number;
}

/** Parses `1x1,1x64,1000x64` (`<streams>x<writers>`); throws on a malformed entry. */
export function parseWorkloads(text: string): AppendWorkload[] {
  return text.split(',').map((entry) => {
    const name = entry.trim();
    const match = /^(\d+)x(\d+)$/.exec(name);
    if (match === null) throw new Error(`workload "${name}" is not <streams>x<writers>, e.g. 1000x64`);
    const streamCount = Number(match[1]);
    const connectionCount = Number(match[2]);
    if (streamCount < 1 || connectionCount < 1) throw new Error(`workload "${name}" needs at least 1 stream and 1 writer`);
    return { name, streamCount, connectionCount };
  });
}

export function describeWorkload(workload: AppendWorkload): string {
  const streams = workload.streamCount === 1 ? '1 stream' : `${workload.streamCount.toLocaleString('en-US')} streams`;
  const writers = workload.connectionCount === 1 ? '1 writer' : `${workload.connectionCount} writers`;
  return `${streams}, ${writers}`;
}

export interface AppendCellSettings {
  warmupS: number;
  durationS: number;
  bodyBytes: number;
  dataRoot: string;
  /** Write a V8 CPU profile of each Cairn cell to `<dir>/<profilePrefix>-<workload>.cpuprofile`. */
  cpuProfileDir: string | undefined;
  profilePrefix: string;
}

export interface AppendCell extends FlaggableCell {
  server: ServerName;
  workload: string;
  streamCount: number;
  connectionCount: number;
  bodyBytes: number;
  wrk?: WrkResult;
  /** 2xx (and 3xx) responses per second over the measured window. */
  appendsPerS?: number;
  /** Request bodies acknowledged per second, in 10^6 bytes/s (appendsPerS × bodyBytes). */
  megabytesPerS?: number;
  /** Share of one core (%) used by the server over the measured window. */
  serverCpuPercent?: number;
  otherCpuTop?: OthersCpu['top'];
  serverExit?: string;
}

async function createStreams(baseUrl: string, count: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const response = await fetch(`${baseUrl}${STREAM_PATH_PREFIX}${index}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        signal: AbortSignal.timeout(CREATE_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      if (response.status !== 201 && response.status !== 200) throw new Error(`creating stream ${index} answered ${response.status}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CREATE_CONCURRENCY, count) }, worker));
}

/**
 * One cell: a fresh `server`, `workload.streamCount` streams created (application/octet-stream),
 * wrk warm-up for `warmupS`, then a measured wrk run of `durationS` with `bodyBytes` POSTs from
 * `workload.connectionCount` connections. Never rejects; a failure is in `failure`.
 */
export async function runAppendCell(server: ServerName, workload: AppendWorkload, settings: AppendCellSettings, machine: Machine): Promise<AppendCell> {
  const cell: AppendCell = {
    server,
    workload: workload.name,
    streamCount: workload.streamCount,
    connectionCount: workload.connectionCount,
    bodyBytes: settings.bodyBytes,
  };
  const cpuProfile =
    settings.cpuProfileDir === undefined ? undefined : { dir: settings.cpuProfileDir, name: `${settings.profilePrefix}-${workload.name}.cpuprofile` };
  const outcome = await withServer(server, machine, { dataRoot: settings.dataRoot, ...(cpuProfile === undefined ? {} : { cpuProfile }) }, async ({ baseUrl, running }) => {
    await createStreams(baseUrl, workload.streamCount);
    const load = {
      baseUrl,
      connectionCount: workload.connectionCount,
      script: appendScript(settings.bodyBytes, workload.streamCount, STREAM_PATH_PREFIX),
      pin: pinTo(machine, GENERATOR_CORE),
    };
    await runWrk({ ...load, durationS: settings.warmupS });
    return measureWrk(running, { ...load, durationS: settings.durationS });
  });
  const measured = outcome.value;
  if (measured !== undefined) {
    cell.wrk = measured.wrk;
    cell.non2xxCount = measured.non2xxCount;
    cell.socketErrorCount = measured.socketErrorCount;
    cell.appendsPerS = (measured.wrk.requests - measured.non2xxCount) / measured.measuredS;
    cell.megabytesPerS = (cell.appendsPerS * settings.bodyBytes) / 1e6;
    cell.serverCpuPercent = measured.serverCpuPercent;
    cell.generatorCpuPercent = measured.generatorCpuPercent;
    cell.otherCpuPercent = measured.otherCpuPercent;
    cell.otherCpuTop = measured.otherCpuTop;
  }
  if (outcome.failure !== undefined) cell.failure = outcome.failure;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

/** Cairn's rate over the reference's in the same workload (`rate` picks the column); NaN when either is missing. */
export function ratioTo(cells: readonly AppendCell[], cell: AppendCell, against: ServerName, rate: (cell: AppendCell) => number | undefined): number {
  const other = cells.find((candidate) => candidate.server === against && candidate.workload === cell.workload);
  const mine = rate(cell);
  const theirs = other === undefined || other.failure !== undefined ? undefined : rate(other);
  return mine === undefined || theirs === undefined ? Number.NaN : mine / theirs;
}

/**
 * The results table of append cells. `rate` is the throughput column (header and value, e.g.
 * appends/s or MB/s); the ratio columns divide Cairn's rate by the reference's.
 */
export function appendTable(
  cells: readonly AppendCell[],
  workloads: readonly AppendWorkload[],
  rate: { header: string; of: (cell: AppendCell) => number | undefined; format: (value: number) => string },
): string {
  const rows = cells.map((cell) => {
    const workload = workloads.find((candidate) => candidate.name === cell.workload);
    const isCairn = cell.server === 'cairn';
    return [
      SERVER_LABELS[cell.server],
      workload === undefined ? cell.workload : describeWorkload(workload),
      rate.format(rate.of(cell) ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p50 ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p999 ?? Number.NaN),
      formatPercent(cell.serverCpuPercent ?? Number.NaN),
      formatPercent(cell.generatorCpuPercent ?? Number.NaN),
      formatPercent(cell.otherCpuPercent ?? Number.NaN),
      String(cell.non2xxCount ?? '-'),
      isCairn ? formatRatio(ratioTo(cells, cell, 'ref-file', rate.of)) : '',
      isCairn ? formatRatio(ratioTo(cells, cell, 'ref-memory', rate.of)) : '',
      cellFlags(cell),
    ];
  });
  return formatTable(
    ['server', 'workload', rate.header, 'p50 ms', 'p99 ms', 'p999 ms', 'srv CPU', 'gen CPU', 'other CPU', 'non-2xx', 'cairn/ref-file', 'cairn/ref-mem', 'flags'],
    rows,
    2,
  );
}

/** The explanation printed under an append table. */
export const APPEND_TABLE_NOTES =
  'Only 2xx responses count; non-2xx = responses with status >= 400 (wrk does not report 3xx separately). Latencies are wrk\'s.\n' +
  'srv CPU / gen CPU / other CPU: share of one core used by the server / by wrk / by everything else on the machine\n' +
  `during the measured window; other CPU >= ${OTHER_CPU_BUSY_PERCENT}% means a neighbour competed for the cores (flagged).\n`;

/**
 * Runs every workload against every server (workload-major, so a neighbour's load spreads over the
 * servers of a workload), printing a progress line per cell.
 */
export async function runAppendCells(
  servers: readonly ServerName[],
  workloads: readonly AppendWorkload[],
  settings: AppendCellSettings,
  machine: Machine,
  summarise: (cell: AppendCell) => string,
): Promise<AppendCell[]> {
  const cells: AppendCell[] = [];
  const total = workloads.length * servers.length;
  for (const workload of workloads) {
    for (const server of servers) {
      const cell = await runAppendCell(server, workload, settings, machine);
      cells.push(cell);
      const summary = cell.failure === undefined ? `${summarise(cell)}, ${cellFlags(cell)}` : `FAILED: ${cell.failure.split('\n')[0]}`;
      process.stdout.write(`[${cells.length}/${total}] ${SERVER_LABELS[server]}, ${describeWorkload(workload)}: ${summary}\n`);
    }
  }
  return cells;
}

/** Prints the failures of cells that failed; true when there were any. */
export function printFailures(cells: readonly AppendCell[]): boolean {
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server} ${cell.workload}:\n${cell.failure}\n`);
  return failures.length > 0;
}

const ONE_STREAM_WORKLOAD = '1. small appends, one stream, 64 writers, durable';
const MANY_STREAMS_WORKLOAD = '1. same, 1,000 streams';

/** Issue 4's targets for workload 1 (Cairn's 1x64 and 1000x64 cells). */
function targetChecks(cells: readonly AppendCell[]): TargetCheck[] {
  const cairn = (workload: string) => cells.find((cell) => cell.server === 'cairn' && cell.workload === workload && cell.failure === undefined);
  const rateOf = (cell: AppendCell) => cell.appendsPerS;
  const flagsNote = (cell: AppendCell | undefined) => {
    const flags = cell === undefined ? 'ok' : cellFlags(cell);
    return flags === 'ok' ? [] : [flags.replace(/^! /, '')];
  };
  const one = cairn('1x64');
  const fileRatio = one === undefined ? Number.NaN : ratioTo(cells, one, 'ref-file', rateOf);
  const memoryRatio = one === undefined ? Number.NaN : ratioTo(cells, one, 'ref-memory', rateOf);
  const rateNote = [`${formatRatio(fileRatio)} ref-file`, `${formatRatio(memoryRatio)} ref-memory`, ...flagsNote(one)].join('; ');
  const referenceRate = (server: ServerName) => {
    const rate = cells.find((cell) => cell.server === server && cell.workload === '1x64')?.appendsPerS;
    return `${server} ${formatCount(rate ?? Number.NaN)} appends/s`;
  };
  const many = cairn('1000x64');
  const manyRatios = many === undefined ? [] : [`${formatRatio(ratioTo(cells, many, 'ref-file', rateOf))} ref-file`, `${formatRatio(ratioTo(cells, many, 'ref-memory', rateOf))} ref-memory`];
  return [
    checkTarget(ONE_STREAM_WORKLOAD, 'appends/s', one?.appendsPerS ?? Number.NaN, 'at-least', 25_000, rateNote),
    checkTarget(ONE_STREAM_WORKLOAD, '× ref file', fileRatio, 'at-least', 15, referenceRate('ref-file')),
    checkTarget(ONE_STREAM_WORKLOAD, '× ref memory', memoryRatio, 'at-least', 1.3, referenceRate('ref-memory')),
    checkTarget(ONE_STREAM_WORKLOAD, 'p99 ms', (one?.wrk?.latencyUs.p99 ?? Number.NaN) / 1000, 'at-most', 10, `p50 ${formatMs(one?.wrk?.latencyUs.p50 ?? Number.NaN)} ms, p999 ${formatMs(one?.wrk?.latencyUs.p999 ?? Number.NaN)} ms`),
    checkTarget(MANY_STREAMS_WORKLOAD, 'appends/s', many?.appendsPerS ?? Number.NaN, 'at-least', 20_000, [...manyRatios, ...flagsNote(many)].join('; ')),
  ];
}

const WORKLOADS_DEFAULT = '1x1,1x16,1x64,1x256,1000x64';

const USAGE = `npm run bench -- append [--duration-ms 5000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
    [--workloads ${WORKLOADS_DEFAULT}] [--body-bytes 100] [--data-root DIR] [--cpu-prof]
Small appends (workload 1): wrk POSTs --body-bytes bodies to <streams>x<writers> workloads, each server
in a fresh process and data directory per cell. About 1.75 minutes with the defaults (15 cells of ~7 s).
--cpu-prof writes a V8 CPU profile of every Cairn cell (read it with: npm run bench -- profile-top <file>).
See bench/README.md (append).
`;

/** What an append-shaped benchmark (append, large-append) runs. */
export interface AppendOptions {
  servers: ServerName[];
  workloads: AppendWorkload[];
  settings: AppendCellSettings;
}

/** The flag defaults that differ between append-shaped benchmarks. */
export interface AppendDefaults {
  durationMs: number;
  workloads: string;
  bodyBytes: number;
  /** CPU profiles are named `<profilePrefix>-<workload>.cpuprofile`. */
  profilePrefix: string;
}

/** The options, or undefined when `--help` asked for the usage text. */
export function parseAppendOptions(args: string[], timestamp: string, defaults: AppendDefaults): AppendOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: String(defaults.durationMs) },
      'warmup-ms': { type: 'string', default: '1000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      workloads: { type: 'string', default: defaults.workloads },
      'body-bytes': { type: 'string', default: String(defaults.bodyBytes) },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const bodyBytes = wholeNumberFlag('body-bytes', values['body-bytes'], 1);
  return {
    servers: parseServers(values.servers),
    workloads: parseWorkloads(values.workloads),
    settings: {
      durationS: wholeSeconds('duration-ms', values['duration-ms']),
      warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
      bodyBytes,
      dataRoot: values['data-root'],
      cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
      profilePrefix: defaults.profilePrefix,
    },
  };
}

/** Writes bench/results/<name>-<timestamp>.json, prints where it and any CPU profiles went; returns the JSON's path. */
export function writeAppendResults(name: string, timestamp: string, machine: Machine, wrk: string, options: AppendOptions, cells: readonly AppendCell[]): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `${name}-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options.settings;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk, config: { ...config, servers: options.servers, workloads: options.workloads }, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  return resultsPath;
}

/** `--<flag>` in milliseconds, rounded up to whole seconds (wrk's resolution), at least 1. */
export function wholeSeconds(flag: string, text: string): number {
  const ms = Number(text);
  if (!Number.isFinite(ms) || ms <= 0) throw new Error(`--${flag} must be a positive number of milliseconds`);
  return Math.max(1, Math.ceil(ms / 1000));
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const timestamp = fileTimestamp();
  const options = parseAppendOptions(args, timestamp, { durationMs: 5000, workloads: WORKLOADS_DEFAULT, bodyBytes: 100, profilePrefix: 'cairn-append' });
  if (options === undefined) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const wrk = wrkVersion();
  if (wrk === undefined) throw new Error(WRK_INSTALL_HINT);
  installInterruptCleanup();
  const { settings } = options;
  const machine = describeMachine(settings.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('append benchmark', machine),
      `load: ${wrk}, 1 thread; ${settings.bodyBytes}-byte POSTs (application/octet-stream), warm-up ${settings.warmupS} s, measure ${settings.durationS} s per cell`,
      `pinning: ${describePinning(machine, 'wrk')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells = await runAppendCells(options.servers, options.workloads, settings, machine, (cell) =>
    `${formatCount(cell.appendsPerS ?? Number.NaN)} appends/s, p99 ${formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN)} ms`,
  );
  process.stdout.write(`\n${appendTable(cells, options.workloads, { header: 'appends/s', of: (cell) => cell.appendsPerS, format: formatCount })}\n`);
  const failed = printFailures(cells);
  process.stdout.write(`\n${APPEND_TABLE_NOTES}`);

  const resultsPath = writeAppendResults('append', timestamp, machine, wrk, options, cells);
  if (failed) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(cells) };
}
