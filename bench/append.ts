/**
 * Append throughput and latency: Cairn (`--durability wal`, fsync before ack) against the upstream
 * reference server in file-backed mode (fsync per append) and in memory, under the same load.
 *
 *   npm run bench -- append [--duration-ms 5000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
 *                           [--workloads 1x1,1x16,1x64,100x64] [--body-bytes 100] [--data-root DIR] [--cpu-prof]
 *
 * Each cell (server × workload) gets a fresh server process in a fresh temporary data directory:
 * start, create the stream(s), warm up, measure, stop by PID, delete the directory. The server is
 * pinned to core 0 and the load generator (wrk, one thread) to core 1 when taskset works.
 * Workload `SxC` is S streams, C concurrent connections (writers) each sending 100-byte POSTs
 * back to back; with S > 1 consecutive requests rotate over the streams.
 * Durations are whole seconds (wrk's resolution): `--duration-ms` is rounded up.
 * Prints a table and writes raw results to bench/results/append-<timestamp>.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuOfOthers, snapshotAllProcessesCpu, type OthersCpu } from './lib/cpu.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { formatCount, formatMs, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import { runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** Both servers get the same URLs; Cairn requires this prefix, the reference accepts any path. */
const STREAM_PATH_PREFIX = '/v1/stream/bench/s';
const SERVER_CORE = '0';
const GENERATOR_CORE = '1';
/** Generator CPU at or above this share of one core means the numbers may be the generator's limit. */
const GENERATOR_SATURATED_PERCENT = 90;
/**
 * CPU used by all other processes during the window, in % of one core, above which the row is
 * flagged: on 2 cores a neighbour this busy competes with the pinned server or generator.
 */
const OTHER_CPU_BUSY_PERCENT = 15;

type ServerName = 'cairn' | 'ref-file' | 'ref-memory';
const SERVER_NAMES: readonly ServerName[] = ['cairn', 'ref-file', 'ref-memory'];
const SERVER_LABELS: Record<ServerName, string> = {
  cairn: 'cairn (wal)',
  'ref-file': 'reference (file)',
  'ref-memory': 'reference (memory)',
};

interface Workload {
  name: string;
  streamCount: number;
  connectionCount: number;
}

const WORKLOADS_DEFAULT = '1x1,1x16,1x64,100x64';

function parseWorkload(name: string): Workload {
  const match = /^(\d+)x(\d+)$/.exec(name.trim());
  if (match === null) throw new Error(`workload "${name}" is not <streams>x<writers>, e.g. 100x64`);
  const streamCount = Number(match[1]);
  const connectionCount = Number(match[2]);
  if (streamCount < 1 || connectionCount < 1) throw new Error(`workload "${name}" needs at least 1 stream and 1 writer`);
  return { name: name.trim(), streamCount, connectionCount };
}

function describeWorkload(workload: Workload): string {
  const streams = workload.streamCount === 1 ? '1 stream' : `${workload.streamCount} streams`;
  const writers = workload.connectionCount === 1 ? '1 writer' : `${workload.connectionCount} writers`;
  return `${streams}, ${writers}`;
}

interface Options {
  durationS: number;
  warmupS: number;
  servers: ServerName[];
  workloads: Workload[];
  bodyBytes: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

interface Cell {
  server: ServerName;
  workload: string;
  streamCount: number;
  connectionCount: number;
  /** Set when the cell could not run to the end; the other fields may then be absent. */
  failure?: string;
  wrk?: WrkResult;
  /** 2xx (and 3xx) responses per second over the measured window. */
  appendsPerS?: number;
  non2xxCount?: number;
  socketErrorCount?: number;
  serverCpuPercent?: number;
  generatorCpuPercent?: number;
  /** Machine busy time not used by the server or wrk, in % of one core. */
  otherCpuPercent?: number;
  otherCpuTop?: OthersCpu['top'];
  serverExit?: string;
}

function parseOptions(args: string[], timestamp: string): Options {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '5000' },
      'warmup-ms': { type: 'string', default: '1000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      workloads: { type: 'string', default: WORKLOADS_DEFAULT },
      'body-bytes': { type: 'string', default: '100' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
    },
  });
  const seconds = (flag: string, text: string) => {
    const ms = Number(text);
    if (!Number.isFinite(ms) || ms <= 0) throw new Error(`--${flag} must be a positive number of milliseconds`);
    return Math.max(1, Math.ceil(ms / 1000));
  };
  const servers = values.servers.split(',').map((name) => name.trim());
  for (const name of servers) {
    if (!SERVER_NAMES.includes(name as ServerName)) throw new Error(`unknown server "${name}"; choose from ${SERVER_NAMES.join(', ')}`);
  }
  const bodyBytes = Number(values['body-bytes']);
  if (!Number.isInteger(bodyBytes) || bodyBytes < 1) throw new Error('--body-bytes must be a positive integer');
  return {
    durationS: seconds('duration-ms', values['duration-ms']),
    warmupS: seconds('warmup-ms', values['warmup-ms']),
    servers: servers as ServerName[],
    workloads: values.workloads.split(',').map(parseWorkload),
    bodyBytes,
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
  };
}

function serverCommand(server: ServerName, port: number, dataDir: string, options: Options, workload: Workload): string[] {
  const node = process.execPath;
  switch (server) {
    case 'cairn': {
      const profile =
        options.cpuProfileDir === undefined
          ? []
          : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`, `--cpu-prof-name=cairn-${workload.name}.cpuprofile`];
      return [node, ...profile, 'src/cli/main.ts', 'serve', '--port', String(port), '--data-dir', dataDir, '--durability', 'wal', '--log-level', 'warn'];
    }
    case 'ref-file':
      return [node, 'bench/reference-server.ts', '--port', String(port), '--data-dir', dataDir];
    case 'ref-memory':
      return [node, 'bench/reference-server.ts', '--port', String(port)];
  }
}

async function createStreams(baseUrl: string, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    const response = await fetch(`${baseUrl}${STREAM_PATH_PREFIX}${index}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
    });
    await response.arrayBuffer();
    if (response.status !== 201 && response.status !== 200) {
      throw new Error(`creating stream ${index} answered ${response.status}`);
    }
  }
}

async function runCell(server: ServerName, workload: Workload, options: Options, machine: Machine): Promise<Cell> {
  const cell: Cell = {
    server,
    workload: workload.name,
    streamCount: workload.streamCount,
    connectionCount: workload.connectionCount,
  };
  const dataDir = mkdtempSync(join(options.dataRoot, `cairn-bench-${server}-`));
  const serverPin = machine.tasksetAvailable ? ['taskset', '-c', SERVER_CORE] : [];
  const generatorPin = machine.tasksetAvailable ? ['taskset', '-c', GENERATOR_CORE] : [];
  let running: RunningServer | undefined;
  try {
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    running = await startServer({
      command: serverCommand(server, port, dataDir, options, workload),
      cwd: REPO_ROOT,
      pin: serverPin,
      readyUrl: `${baseUrl}${STREAM_PATH_PREFIX}ready-probe`,
    });
    await createStreams(baseUrl, workload.streamCount);
    const load = {
      baseUrl,
      connectionCount: workload.connectionCount,
      bodyBytes: options.bodyBytes,
      streamCount: workload.streamCount,
      pathPrefix: STREAM_PATH_PREFIX,
      pin: generatorPin,
    };
    await runWrk({ ...load, durationS: options.warmupS });
    const cpuBeforeS = running.cpuSeconds();
    const othersBefore = snapshotAllProcessesCpu();
    const startedMs = performance.now();
    const result = await runWrk({ ...load, durationS: options.durationS });
    const elapsedS = (performance.now() - startedMs) / 1000;
    const cpuAfterS = running.cpuSeconds();
    const othersAfter = snapshotAllProcessesCpu();
    const measuredS = result.durationUs / 1e6;
    cell.wrk = result;
    cell.non2xxCount = result.errors.status;
    cell.socketErrorCount = result.errors.connect + result.errors.read + result.errors.write + result.errors.timeout;
    cell.appendsPerS = (result.requests - result.errors.status) / measuredS;
    cell.serverCpuPercent = ((cpuAfterS - cpuBeforeS) / elapsedS) * 100;
    cell.generatorCpuPercent = (result.cpuSeconds / elapsedS) * 100;
    // The bench process itself reaps wrk, so its own (and wrk's) time is excluded with it.
    const others = cpuOfOthers(othersBefore, othersAfter, new Set([process.pid, running.pid]));
    cell.otherCpuPercent = (others.cpuS / elapsedS) * 100;
    cell.otherCpuTop = others.top;
    if (running.exitedEarly()) cell.failure = `server exited during the run:\n${running.outputTail()}`;
  } catch (error) {
    cell.failure = (error as Error).message;
    if (running !== undefined) cell.failure += `\n--- server output (tail) ---\n${running.outputTail()}`;
  } finally {
    if (running !== undefined) cell.serverExit = await running.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return cell;
}

function flagsOf(cell: Cell): string {
  const flags: string[] = [];
  if (cell.failure !== undefined) flags.push('FAILED');
  if ((cell.non2xxCount ?? 0) > 0) flags.push(`${cell.non2xxCount} non-2xx`);
  if ((cell.socketErrorCount ?? 0) > 0) flags.push(`${cell.socketErrorCount} socket errors`);
  if ((cell.generatorCpuPercent ?? 0) >= GENERATOR_SATURATED_PERCENT) flags.push('generator saturated?');
  if ((cell.otherCpuPercent ?? 0) >= OTHER_CPU_BUSY_PERCENT) flags.push('busy machine');
  return flags.length === 0 ? 'ok' : `! ${flags.join(', ')}`;
}

function ratio(cells: readonly Cell[], cell: Cell, against: ServerName): number {
  const other = cells.find((candidate) => candidate.server === against && candidate.workload === cell.workload);
  if (other?.appendsPerS === undefined || cell.appendsPerS === undefined || other.failure !== undefined) return Number.NaN;
  return cell.appendsPerS / other.appendsPerS;
}

function report(cells: readonly Cell[], workloads: readonly Workload[]): string {
  const rows = cells.map((cell) => {
    const workload = workloads.find((candidate) => candidate.name === cell.workload);
    const isCairn = cell.server === 'cairn';
    return [
      SERVER_LABELS[cell.server],
      workload === undefined ? cell.workload : describeWorkload(workload),
      formatCount(cell.appendsPerS ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p50 ?? Number.NaN),
      formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN),
      formatPercent(cell.serverCpuPercent ?? Number.NaN),
      formatPercent(cell.generatorCpuPercent ?? Number.NaN),
      formatPercent(cell.otherCpuPercent ?? Number.NaN),
      String(cell.non2xxCount ?? '-'),
      isCairn ? formatRatio(ratio(cells, cell, 'ref-file')) : '',
      isCairn ? formatRatio(ratio(cells, cell, 'ref-memory')) : '',
      flagsOf(cell),
    ];
  });
  return formatTable(
    ['server', 'workload', 'appends/s', 'p50 ms', 'p99 ms', 'srv CPU', 'gen CPU', 'other CPU', 'non-2xx', 'cairn/ref-file', 'cairn/ref-mem', 'flags'],
    rows,
    2,
  );
}

export async function main(args: string[]): Promise<void> {
  const timestamp = new Date().toISOString().replace(/[:.]/g, '-');
  const options = parseOptions(args, timestamp);
  const wrk = wrkVersion();
  if (wrk === undefined) {
    process.stderr.write(`${WRK_INSTALL_HINT}\n`);
    process.exitCode = 1;
    return;
  }
  const machine = describeMachine(options.dataRoot);
  process.stdout.write(
    [
      `append benchmark — ${machine.date}`,
      `machine: ${machine.cpuCount} cores, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.nodeVersion}`,
      `load: ${wrk}, 1 thread; ${options.bodyBytes}-byte POSTs (application/octet-stream), warm-up ${options.warmupS} s, measure ${options.durationS} s per cell`,
      `pinning: ${machine.tasksetAvailable ? `server on core ${SERVER_CORE}, wrk on core ${GENERATOR_CORE} (taskset)` : 'none (taskset unavailable)'}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const cells: Cell[] = [];
  const total = options.workloads.length * options.servers.length;
  for (const workload of options.workloads) {
    for (const server of options.servers) {
      const cell = await runCell(server, workload, options, machine);
      cells.push(cell);
      const summary =
        cell.failure === undefined
          ? `${formatCount(cell.appendsPerS ?? Number.NaN)} appends/s, p99 ${formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN)} ms, ${flagsOf(cell)}`
          : `FAILED: ${cell.failure.split('\n')[0]}`;
      process.stdout.write(`[${cells.length}/${total}] ${SERVER_LABELS[server]}, ${describeWorkload(workload)}: ${summary}\n`);
    }
  }

  process.stdout.write(`\n${report(cells, options.workloads)}\n`);
  const failures = cells.filter((cell) => cell.failure !== undefined);
  for (const cell of failures) process.stdout.write(`\nFAILED ${cell.server} ${cell.workload}:\n${cell.failure}\n`);
  process.stdout.write(
    '\nappends/s counts 2xx responses only; non-2xx = responses with status >= 400 (wrk does not report 3xx separately).\n' +
      'srv CPU / gen CPU / other CPU: share of one core used by the server / by wrk / by everything else on the machine\n' +
      `during the measured window; other CPU >= ${OTHER_CPU_BUSY_PERCENT}% means a neighbour competed for the cores (flagged).\n`,
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `append-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk, config, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (failures.length > 0) process.exitCode = 1;
}
