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
import {
  APPEND_TABLE_NOTES,
  appendTable,
  parseAppendOptions,
  printFailures,
  ratioTo,
  runAppendCells,
  writeAppendResults,
  type AppendCell,
} from './append.ts';
import { benchHeader, cellFlags, describePinning, fileTimestamp, installInterruptCleanup } from './lib/bench-server.ts';
import { describeMachine } from './lib/machine.ts';
import { formatMs, formatRatio } from './lib/table.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { WRK_INSTALL_HINT, wrkVersion } from './lib/wrk.ts';

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

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const timestamp = fileTimestamp();
  const options = parseAppendOptions(args, timestamp, { durationMs: 4000, workloads: WORKLOADS_DEFAULT, bodyBytes: MIB, profilePrefix: 'cairn-large-append' });
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

  const resultsPath = writeAppendResults('large-append', timestamp, machine, wrk, options, cells);
  if (failed) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(cells) };
}
