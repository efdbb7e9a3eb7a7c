/**
 * Workload 4, stream creation: 64 concurrent clients each issuing `PUT` to a new stream path
 * (Content-Type application/octet-stream, no body) back to back; creates/s = 201 responses per
 * second. Cairn (`--durability wal`: the creation is in the fsynced WAL before the 201) against
 * the reference server file-backed and in memory, in the same run.
 *
 *   npm run bench -- create [--duration-ms 4000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
 *                           [--connections 64] [--data-root DIR] [--cpu-prof]
 *
 * Each server gets a fresh process and data directory; wrk (one thread, pinned to core 1) runs
 * bench/lib/create.lua, which counts every response status, once to warm up and once measured,
 * with different path prefixes so every PUT creates a stream. Anything but 201 (200 = the path
 * already existed, errors) is counted and flagged.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { wholeSeconds } from './append.ts';
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
import { createScript, runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const PATH_PREFIX = `${STREAM_PATH_ROOT}bench/create/`;
const TARGET_WORKLOAD = '4. stream creation, durable';
const TARGET_CREATES_PER_S = 10_000;

interface Options {
  durationS: number;
  warmupS: number;
  servers: ServerName[];
  connectionCount: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

interface CreateCell extends FlaggableCell {
  server: ServerName;
  connectionCount: number;
  wrk?: WrkResult;
  /** 201 responses per second over the measured window. */
  createsPerS?: number;
  /** Responses per status in the measured window, e.g. `{ "201": 51234 }`. */
  statusCounts?: Record<string, number>;
  /** Responses other than 201 in the measured window (a 200 would mean a path was reused). */
  notCreatedCount?: number;
  serverCpuPercent?: number;
  otherCpuTop?: OthersCpu['top'];
  serverExit?: string;
}

async function runCell(server: ServerName, options: Options, machine: Machine): Promise<CreateCell> {
  const cell: CreateCell = { server, connectionCount: options.connectionCount };
  const settings = {
    dataRoot: options.dataRoot,
    ...(options.cpuProfileDir === undefined ? {} : { cpuProfile: { dir: options.cpuProfileDir, name: 'cairn-create.cpuprofile' } }),
  };
  const outcome = await withServer(server, machine, settings, async ({ baseUrl, running }) => {
    const load = { baseUrl, connectionCount: options.connectionCount, pin: pinTo(machine, GENERATOR_CORE) };
    await runWrk({ ...load, durationS: options.warmupS, script: createScript(`${PATH_PREFIX}warmup-`) });
    return measureWrk(running, { ...load, durationS: options.durationS, script: createScript(`${PATH_PREFIX}measured-`) });
  });
  const measured = outcome.value;
  if (measured !== undefined) {
    const statusCounts = measured.wrk.statusCounts ?? {};
    const createdCount = statusCounts['201'] ?? 0;
    cell.wrk = measured.wrk;
    cell.statusCounts = statusCounts;
    cell.createsPerS = createdCount / measured.measuredS;
    cell.notCreatedCount = measured.wrk.requests - createdCount;
    cell.socketErrorCount = measured.socketErrorCount;
    cell.serverCpuPercent = measured.serverCpuPercent;
    cell.generatorCpuPercent = measured.generatorCpuPercent;
    cell.otherCpuPercent = measured.otherCpuPercent;
    cell.otherCpuTop = measured.otherCpuTop;
  }
  if (outcome.failure !== undefined) cell.failure = outcome.failure;
  if (outcome.serverExit !== undefined) cell.serverExit = outcome.serverExit;
  return cell;
}

function flagsOf(cell: CreateCell): string {
  return cellFlags(cell, (cell.notCreatedCount ?? 0) > 0 ? [`${cell.notCreatedCount} not 201`] : []);
}

function ratio(cells: readonly CreateCell[], cell: CreateCell, against: ServerName): number {
  const other = cells.find((candidate) => candidate.server === against && candidate.failure === undefined);
  return other?.createsPerS === undefined || cell.createsPerS === undefined ? Number.NaN : cell.createsPerS / other.createsPerS;
}

function otherStatuses(cell: CreateCell): string {
  const entries = Object.entries(cell.statusCounts ?? {}).filter(([status]) => status !== '201');
  return entries.length === 0 ? (cell.statusCounts === undefined ? '-' : '0') : entries.map(([status, count]) => `${count}×${status}`).join(' ');
}

function report(cells: readonly CreateCell[]): string {
  const rows = cells.map((cell) => {
    const isCairn = cell.server === 'cairn';
    return [
      SERVER_LABELS[cell.server],
      String(cell.connectionCount),
      formatCount(cell.createsPerS ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p50 ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p999 ?? Number.NaN),
      formatPercent(cell.serverCpuPercent ?? Number.NaN),
      formatPercent(cell.generatorCpuPercent ?? Number.NaN),
      formatPercent(cell.otherCpuPercent ?? Number.NaN),
      otherStatuses(cell),
      isCairn ? formatRatio(ratio(cells, cell, 'ref-file')) : '',
      isCairn ? formatRatio(ratio(cells, cell, 'ref-memory')) : '',
      flagsOf(cell),
    ];
  });
  return formatTable(
    ['server', 'clients', 'creates/s', 'p50 ms', 'p99 ms', 'p999 ms', 'srv CPU', 'gen CPU', 'other CPU', 'not 201', 'cairn/ref-file', 'cairn/ref-mem', 'flags'],
    rows,
    1,
  );
}

function targetChecks(cells: readonly CreateCell[]): TargetCheck[] {
  const cairn = cells.find((cell) => cell.server === 'cairn' && cell.failure === undefined);
  const flags = cairn === undefined ? 'ok' : flagsOf(cairn);
  const note =
    cairn === undefined
      ? undefined
      : [
          `${cairn.connectionCount} clients`,
          `${formatRatio(ratio(cells, cairn, 'ref-file'))} ref-file`,
          `${formatRatio(ratio(cells, cairn, 'ref-memory'))} ref-memory`,
          ...(flags === 'ok' ? [] : [flags.replace(/^! /, '')]),
        ].join('; ');
  return [checkTarget(TARGET_WORKLOAD, 'creates/s', cairn?.createsPerS ?? Number.NaN, 'at-least', TARGET_CREATES_PER_S, note)];
}

const USAGE = `npm run bench -- create [--duration-ms 4000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
    [--connections 64] [--data-root DIR] [--cpu-prof]
Stream creation (workload 4): wrk PUTs new stream paths from --connections clients; creates/s = 201s per second.
A fresh server per row; about 20 s with the defaults. See bench/README.md (create).
`;

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '4000' },
      'warmup-ms': { type: 'string', default: '1000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      connections: { type: 'string', default: '64' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const connectionCount = wholeNumberFlag('connections', values.connections, 1, 10_000);
  return {
    durationS: wholeSeconds('duration-ms', values['duration-ms']),
    warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
    servers: parseServers(values.servers),
    connectionCount,
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const wrk = wrkVersion();
  if (wrk === undefined) throw new Error(WRK_INSTALL_HINT);
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('create benchmark', machine),
      `load: ${wrk}, 1 thread, ${options.connectionCount} connections; PUT to a new path per request (application/octet-stream, no body), ` +
        `warm-up ${options.warmupS} s, measure ${options.durationS} s per server`,
      `pinning: ${describePinning(machine, 'wrk')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: CreateCell[] = [];
  for (const server of options.servers) {
    const cell = await runCell(server, options, machine);
    cells.push(cell);
    const summary =
      cell.failure === undefined
        ? `${formatCount(cell.createsPerS ?? Number.NaN)} creates/s, p99 ${formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN)} ms, ${flagsOf(cell)}`
        : `FAILED: ${cell.failure.split('\n')[0]}`;
    process.stdout.write(`[${cells.length}/${options.servers.length}] ${SERVER_LABELS[server]}: ${summary}\n`);
  }
  process.stdout.write(`\n${report(cells)}\n`);
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server}:\n${cell.failure}\n`);
  process.stdout.write(
    '\ncreates/s counts 201 responses only; "not 201" lists every other status (count×status) and is flagged.\n' +
      'srv CPU / gen CPU / other CPU: share of one core used by the server / by wrk / by everything else on the machine\n' +
      `during the measured window; other CPU >= ${OTHER_CPU_BUSY_PERCENT}% means a neighbour competed for the cores (flagged).\n`,
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `create-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk, config, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (failures.length > 0) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(cells) };
}
