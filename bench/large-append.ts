/**
 * Workload 3, large appends: 1 MiB POSTs (application/octet-stream) to one stream from a few
 * concurrent writers; MB/s (10^6 bytes/s) acknowledged. Cairn (`--durability wal`) against the
 * reference server file-backed and in memory, in the same run.
 *
 *   npm run bench -- large-append [--duration-ms 4000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
 *                                 [--workloads 1x4] [--body-bytes 1048576] [--data-root DIR] [--cpu-prof]
 *
 * The same code path as bench/append.ts (its exported cell runner: fresh server per cell, wrk with
 * bench/lib/append.lua), with other defaults and MB/s as the headline. Cairn keeps unsealed bytes
 * in its hot tail (512 MiB budget by default) and seals 8 MiB segments to the filesystem object
 * store in the background; above the budget it answers 503 with Retry-After, which wrk counts as
 * non-2xx (flagged, and not counted as acknowledged).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  APPEND_TABLE_NOTES,
  appendTable,
  parseWorkloads,
  printFailures,
  ratioTo,
  runAppendCells,
  wholeSeconds,
  type AppendCell,
  type AppendCellSettings,
  type AppendWorkload,
} from './append.ts';
import { benchHeader, cellFlags, describePinning, fileTimestamp, installInterruptCleanup, parseServers, SERVER_NAMES, type ServerName } from './lib/bench-server.ts';
import { describeMachine } from './lib/machine.ts';
import { formatMs, formatRatio } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { WRK_INSTALL_HINT, wrkVersion } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const MIB = 1024 * 1024;
const WORKLOADS_DEFAULT = '1x4';
const TARGET_WORKLOAD = '3. large appends, durable';
const TARGET_MEGABYTES_PER_S = 300;

function formatMegabytes(value: number): string {
  return Number.isFinite(value) ? value.toFixed(value < 100 ? 1 : 0) : '-';
}

/** Issue 4's target for workload 3: Cairn's best large-append cell (the default runs only 1x4). */
function targetChecks(cells: readonly AppendCell[]): TargetCheck[] {
  const cairn = cells
    .filter((cell) => cell.server === 'cairn' && cell.failure === undefined)
    .sort((left, right) => (right.megabytesPerS ?? 0) - (left.megabytesPerS ?? 0))[0];
  const rateOf = (cell: AppendCell) => cell.megabytesPerS;
  const note =
    cairn === undefined
      ? undefined
      : [
          `${cairn.workload} x ${cairn.bodyBytes} B`,
          `${formatRatio(ratioTo(cells, cairn, 'ref-file', rateOf))} ref-file`,
          `${formatRatio(ratioTo(cells, cairn, 'ref-memory', rateOf))} ref-memory`,
          ...(cellFlags(cairn) === 'ok' ? [] : [cellFlags(cairn).replace(/^! /, '')]),
        ].join('; ');
  return [checkTarget(TARGET_WORKLOAD, 'MB/s', cairn?.megabytesPerS ?? Number.NaN, 'at-least', TARGET_MEGABYTES_PER_S, note)];
}

const USAGE = `npm run bench -- large-append [--duration-ms 4000] [--warmup-ms 1000] [--servers cairn,ref-file,ref-memory]
    [--workloads ${WORKLOADS_DEFAULT}] [--body-bytes ${MIB}] [--data-root DIR] [--cpu-prof]
Large appends (workload 3): wrk POSTs --body-bytes bodies to <streams>x<writers> workloads (default: one
stream, 4 writers), a fresh server per cell; MB/s = 10^6 bytes/s acknowledged. About 20 s with the defaults.
Each cell writes up to ~2 GB into its temporary data directory (deleted after the cell). See bench/README.md.
`;

interface Options {
  servers: ServerName[];
  workloads: AppendWorkload[];
  settings: AppendCellSettings;
}

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'duration-ms': { type: 'string', default: '4000' },
      'warmup-ms': { type: 'string', default: '1000' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      workloads: { type: 'string', default: WORKLOADS_DEFAULT },
      'body-bytes': { type: 'string', default: String(MIB) },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const bodyBytes = Number(values['body-bytes']);
  if (!Number.isInteger(bodyBytes) || bodyBytes < 1) throw new Error('--body-bytes must be a positive integer');
  return {
    servers: parseServers(values.servers),
    workloads: parseWorkloads(values.workloads),
    settings: {
      durationS: wholeSeconds('duration-ms', values['duration-ms']),
      warmupS: wholeSeconds('warmup-ms', values['warmup-ms']),
      bodyBytes,
      dataRoot: values['data-root'],
      cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${timestamp}`) : undefined,
      profilePrefix: 'cairn-large-append',
    },
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
  const { settings } = options;
  const machine = describeMachine(settings.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('large-append benchmark', machine),
      `load: ${wrk}, 1 thread; ${settings.bodyBytes}-byte POSTs (application/octet-stream), warm-up ${settings.warmupS} s, measure ${settings.durationS} s per cell`,
      `pinning: ${describePinning(machine, 'wrk')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); cairn with its defaults (hot-tail budget 512 MiB, 8 MiB segments on the fs store)`,
      '',
    ].join('\n'),
  );

  const megabytesOf = (cell: AppendCell) => cell.megabytesPerS;
  const cells = await runAppendCells(options.servers, options.workloads, settings, machine, (cell) =>
    `${formatMegabytes(cell.megabytesPerS ?? Number.NaN)} MB/s, p99 ${formatMs(cell.wrk?.latencyUs.p99 ?? Number.NaN)} ms`,
  );
  process.stdout.write(`\n${appendTable(cells, options.workloads, { header: 'MB/s', of: megabytesOf, format: formatMegabytes })}\n`);
  const failed = printFailures(cells);
  process.stdout.write(
    `\nMB/s = 10^6 bytes of acknowledged request bodies per second. A 503 from Cairn means its hot-tail budget was full\n` +
      `(sealing fell behind); it is flagged as non-2xx and not counted.\n${APPEND_TABLE_NOTES}`,
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `large-append-${timestamp}.json`);
  const { cpuProfileDir, ...config } = settings;
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk, config: { ...config, servers: options.servers, workloads: options.workloads }, cells }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (failed) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(cells) };
}
