/**
 * Recovery (issue 4, workload 9): restart time after `kill -9` with 1 GiB of WAL to replay, for
 * Cairn (`--durability wal`) and, as the baseline, the upstream reference server file-backed.
 *
 *   npm run bench -- recovery [--wal-mib 1024] [--streams 16] [--append-bytes 65536]
 *                             [--servers cairn,ref-file] [--ingest-timeout-ms 600000]
 *                             [--restart-timeout-ms 120000] [--data-root DIR] [--cpu-prof]
 *
 * Cairn is started so that nothing leaves the WAL before the crash: no checkpoint (its threshold
 * above the WAL written), no seal (largest segment size, seal timers of a day, a hot-tail budget
 * far above the data). Every byte acknowledged is then in the WAL only, and a restart replays all
 * of it into the hot tails. See usage() for the phases and their bounds.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseOffsetToken } from '../src/protocol/offset.ts';
import { runCatchUpReader } from './lib/catch-up-reader.ts';
import { cpuOfOthers, snapshotAllProcessesCpu } from './lib/cpu.ts';
import { diskUsage, type DiskUsage } from './lib/disk-usage.ts';
import { createStream, headOffsets, ingest } from './lib/ingest.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { processMemory, type ProcessMemory } from './lib/process-memory.ts';
import { formatPercent, formatRatio, formatTable } from './lib/table.ts';
import {
  benchHeader,
  describePinning,
  fileTimestamp,
  GENERATOR_CORE,
  installInterruptCleanup,
  makeDataDir,
  OTHER_CPU_BUSY_PERCENT,
  parseServers,
  pinTo,
  removeDataDir,
  SERVER_CORE,
  SERVER_LABELS,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { crash, launch, stopTimed, type CairnRecoveryLog, type Launched } from './lib/restart.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STREAM_PATH_PREFIX = '/v1/stream/recovery/s';
const READY_PATH = '/v1/stream/recovery-ready-probe';
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const WORKLOAD = '9. recovery';
const TARGET_S_PER_GIB = 2;
/** The servers this benchmark can restart with data (the reference's memory mode loses everything). */
type RecoveryServer = Exclude<ServerName, 'ref-memory'>;
const RECOVERY_SERVERS: readonly RecoveryServer[] = ['cairn', 'ref-file'];
/** A fresh server's start (no data) is quick. */
const FRESH_START_TIMEOUT_MS = 30_000;
const HEAD_POLL_MS = 20;
/** The CLI's largest --segment-size-bytes: no stream reaches it, so no size-triggered seal. */
const SEGMENT_SIZE_BYTES_MAX = GIB;
const DAY_MS = 86_400_000;

interface Options {
  walBytes: number;
  streamCount: number;
  appendBytes: number;
  servers: RecoveryServer[];
  ingestTimeoutMs: number;
  restartTimeoutMs: number;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

function usage(): string {
  return `usage: npm run bench -- recovery [flags]

Workload 9 of issue 4: restart after kill -9 with 1 GiB of WAL to replay. Servers: cairn
(--durability wal) and ref-file (the reference server, file-backed, as the baseline).

Per server (fresh data directory, server on core ${SERVER_CORE}):
  1. ingest --wal-mib over --streams streams in --append-bytes POSTs, one sequential writer per
     stream, all streams at once. Cairn runs with --checkpoint-wal-bytes above that, the largest
     --segment-size-bytes (1 GiB), --seal-idle-ms and --unsealed-age-ms-max of a day and a hot-tail
     budget of at least 4 GiB, so every acknowledged byte is in the WAL only (checked: no
     checkpoint file, HEAD's Cairn-Sealed-Offset at 0)
  2. HEAD every stream (Stream-Next-Offset = the byte count written); the WAL size on disk
     (<data-dir>/wal; for the reference: its whole data directory)
  3. kill -9 by PID; start again on the same data; time from spawn until it answers HTTP, and
     until a HEAD of every stream shows the full Stream-Next-Offset
  4. read every stream back from -1 (bench/lib/catch-up-reader.ts on core ${GENERATOR_CORE}): byte
     count and every append's stamp checked
Result: seconds, and seconds per GiB of WAL (target ≤ ${TARGET_S_PER_GIB} s/GiB).

Flags:
  --wal-mib N              MiB to ingest (default 1024; e.g. 128 for a quick run)
  --streams N              streams (default 16)
  --append-bytes N         bytes per POST (default 65536)
  --servers LIST           cairn,ref-file (default both)
  --ingest-timeout-ms MS   ingest limit per server (default 600000)
  --restart-timeout-ms MS  limit for the restart until every HEAD is complete (default 120000)
  --data-root DIR          where the temporary data directories go (default ${tmpdir()})
  --cpu-prof               V8 CPU profile of Cairn's restarted process (its recovery) in bench/results/

Every phase is bounded; the default run takes about a minute (mostly ingest: 1 GiB fsynced
per server). Raw results: bench/results/recovery-<timestamp>.json.
`;
}

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'wal-mib': { type: 'string', default: '1024' },
      streams: { type: 'string', default: '16' },
      'append-bytes': { type: 'string', default: '65536' },
      servers: { type: 'string', default: RECOVERY_SERVERS.join(',') },
      'ingest-timeout-ms': { type: 'string', default: '600000' },
      'restart-timeout-ms': { type: 'string', default: '120000' },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(usage());
    return undefined;
  }
  const servers = parseServers(values.servers);
  for (const name of servers) {
    if (name === 'ref-memory') throw new Error('ref-memory cannot restart with its data; choose from cairn, ref-file');
  }
  const walBytes = wholeNumberFlag('wal-mib', values['wal-mib'], 1, 64 * 1024) * MIB;
  const streamCount = wholeNumberFlag('streams', values.streams, 1, 10_000);
  // The catch-up reader checks an 8-byte stamp per append.
  const appendBytes = wholeNumberFlag('append-bytes', values['append-bytes'], 8, 64 * MIB);
  const streamBytes = walBytes / streamCount;
  if (!Number.isInteger(streamBytes) || streamBytes % appendBytes !== 0) {
    throw new Error('--wal-mib must split into --streams equal streams of whole --append-bytes appends');
  }
  if (streamBytes >= SEGMENT_SIZE_BYTES_MAX) throw new Error('each stream must stay below 1 GiB (the largest segment size), or Cairn seals it: use more --streams');
  return {
    walBytes,
    streamCount,
    appendBytes,
    servers: servers as RecoveryServer[],
    ingestTimeoutMs: wholeNumberFlag('ingest-timeout-ms', values['ingest-timeout-ms'], 1000, 3_600_000),
    restartTimeoutMs: wholeNumberFlag('restart-timeout-ms', values['restart-timeout-ms'], 1000, 3_600_000),
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-recovery-${timestamp}`) : undefined,
  };
}

/** Flags that keep every acknowledged byte in Cairn's WAL: no checkpoint, no seal, no backpressure. */
function cairnFlags(options: Options): string[] {
  const roomyBytes = String(Math.max(4 * GIB, 4 * options.walBytes));
  return [
    '--checkpoint-wal-bytes',
    roomyBytes,
    '--segment-size-bytes',
    String(SEGMENT_SIZE_BYTES_MAX),
    '--seal-idle-ms',
    String(DAY_MS),
    '--unsealed-age-ms-max',
    String(DAY_MS),
    '--hot-tail-budget-bytes',
    roomyBytes,
  ];
}

/** The byte position of a Cairn offset token (src/protocol/offset.ts: it ends in a slack digit). */
function positionOf(offset: string | undefined): number {
  return (offset === undefined ? undefined : parseOffsetToken(offset))?.position ?? Number.NaN;
}

// ------------------------------------------------------------------------------------------------

interface Ingest {
  bytes: number;
  appendCount: number;
  elapsedMs: number;
  /** 503/429 answers retried (Cairn's hot-tail budget should never push back here). */
  rejectedCount: number;
}

interface Recovery {
  /** How the crashed process ended (`signal SIGKILL`). */
  crashExit: string;
  /** Spawn until the server answered HTTP, in ms. */
  startMs: number;
  /** Spawn until a HEAD of every stream showed the full Stream-Next-Offset, in ms. */
  allStreamsMs: number;
  /** allStreamsMs in s per GiB of WAL (Cairn) or data directory (reference). */
  sPerGiB: number;
  cairnLog?: CairnRecoveryLog;
  /** The server's CPU from spawn to every HEAD complete, in s (Node's start included). */
  serverCpuS: number;
  /** Every other process's CPU over the same window, in % of one core. */
  otherCpuPercent: number;
  memory: ProcessMemory;
  /** Streams read back whole and in order / streams. */
  verifiedCount: number;
  verifyFailures: string[];
  verifyMs: number;
}

interface Row {
  server: RecoveryServer;
  failure?: string;
  warnings: string[];
  ingest?: Ingest;
  /** Spawn until HTTP of the same server on an empty data directory, in ms: the part of a restart that is not recovery. */
  emptyStartMs?: number;
  /** Server RSS at the crash (Cairn: the hot tails hold everything). */
  memoryAtCrash?: ProcessMemory;
  /** What the restart has to read: Cairn's WAL directory, or the reference's whole data directory. */
  replayUsage?: DiskUsage;
  walFiles?: string[];
  recovery?: Recovery;
}

async function ingestAll(launched: Launched, options: Options): Promise<Ingest> {
  const streamBytes = options.walBytes / options.streamCount;
  const deadlineMs = performance.now() + options.ingestTimeoutMs;
  const urls = Array.from({ length: options.streamCount }, (_, index) => `${launched.baseUrl}${STREAM_PATH_PREFIX}${index}`);
  for (const url of urls) await createStream(url);
  const startedMs = performance.now();
  const results = await Promise.all(urls.map((url) => ingest(url, streamBytes, options.appendBytes, deadlineMs)));
  return {
    bytes: results.reduce((sum, result) => sum + result.bytes, 0),
    appendCount: results.reduce((sum, result) => sum + result.appendCount, 0),
    elapsedMs: performance.now() - startedMs,
    rejectedCount: results.reduce((sum, result) => sum + result.rejectedCount, 0),
  };
}

/**
 * Polls HEAD of every stream until each shows the Stream-Next-Offset it had before the crash
 * (`expectedOffsets[i]`); resolves when all do, rejects at `deadlineMs` with the last answers.
 */
async function waitForAllStreams(launched: Launched, expectedOffsets: readonly string[], deadlineMs: number): Promise<void> {
  const pending = new Map(expectedOffsets.map((offset, index) => [index, offset]));
  const lastAnswers = new Map<number, string>();
  for (;;) {
    for (const [index, expected] of [...pending]) {
      try {
        const offsets = await headOffsets(`${launched.baseUrl}${STREAM_PATH_PREFIX}${index}`);
        if (offsets.next === expected) pending.delete(index);
        else lastAnswers.set(index, offsets.next);
      } catch (error) {
        // e.g. 404 while a server still loads its streams: not yet.
        lastAnswers.set(index, (error as Error).message);
      }
    }
    if (pending.size === 0) return;
    if (performance.now() > deadlineMs) {
      const [index, expected] = [...pending][0] ?? [0, ''];
      throw new Error(`${pending.size} of ${expectedOffsets.length} streams not complete within the restart limit (s${index}: ${lastAnswers.get(index)}, expected ${expected})`);
    }
    await sleep(HEAD_POLL_MS);
  }
}

async function verifyAll(launched: Launched, options: Options, machine: Machine): Promise<{ verifiedCount: number; failures: string[]; elapsedMs: number }> {
  const streamBytes = options.walBytes / options.streamCount;
  const failures: string[] = [];
  const startedMs = performance.now();
  for (let index = 0; index < options.streamCount; index++) {
    const result = await runCatchUpReader({
      url: `${launched.baseUrl}${STREAM_PATH_PREFIX}${index}`,
      expectedBytes: streamBytes,
      stampIntervalBytes: options.appendBytes,
      client: 'raw',
      pin: pinTo(machine, GENERATOR_CORE),
    });
    if (result.failure !== undefined) failures.push(`s${index}: ${result.failure}`);
  }
  return { verifiedCount: options.streamCount - failures.length, failures, elapsedMs: performance.now() - startedMs };
}

async function runServer(server: RecoveryServer, options: Options, machine: Machine): Promise<Row> {
  const row: Row = { server, warnings: [] };
  const dataDir = makeDataDir(options.dataRoot, `recovery-${server}`);
  const say = (text: string) => process.stdout.write(`  ${SERVER_LABELS[server]}: ${text}\n`);
  const flags = server === 'cairn' ? cairnFlags(options) : [];
  const streamBytes = options.walBytes / options.streamCount;
  let launched: Launched | undefined;
  try {
    launched = await launch({ server, dataDir, machine, cairnFlags: flags, readyTimeoutMs: FRESH_START_TIMEOUT_MS, readyPath: READY_PATH });
    row.emptyStartMs = launched.startMs;
    const ingested = await ingestAll(launched, options);
    row.ingest = ingested;
    say(
      `ingested ${ingested.bytes / MIB} MiB (${ingested.appendCount} × ${options.appendBytes} B over ${options.streamCount} streams) in ` +
        `${(ingested.elapsedMs / 1000).toFixed(1)} s (${(ingested.bytes / 1e6 / (ingested.elapsedMs / 1000)).toFixed(0)} MB/s)` +
        (ingested.rejectedCount > 0 ? `, ${ingested.rejectedCount} appends refused and retried` : ''),
    );
    const expectedOffsets: string[] = [];
    for (let index = 0; index < options.streamCount; index++) {
      const offsets = await headOffsets(`${launched.baseUrl}${STREAM_PATH_PREFIX}${index}`);
      expectedOffsets.push(offsets.next);
      // Cairn's offsets are byte positions; the reference's also count 5 bytes of framing per append.
      if (server === 'cairn' && positionOf(offsets.next) !== streamBytes) throw new Error(`before the crash, stream ${index} is at ${offsets.next}, not ${streamBytes} bytes`);
      if (offsets.sealed !== undefined && positionOf(offsets.sealed) !== 0) row.warnings.push(`stream ${index} partly sealed before the crash`);
    }
    if (server === 'cairn') {
      const walDir = join(dataDir, 'wal');
      row.walFiles = readdirSync(walDir).sort();
      row.replayUsage = diskUsage(walDir);
      if (row.walFiles.some((name) => name.startsWith('checkpoint-'))) row.warnings.push('a checkpoint was written: less WAL to replay');
    } else {
      row.replayUsage = diskUsage(dataDir);
    }
    row.memoryAtCrash = processMemory(launched.running.pid);
    const replayBytes = row.replayUsage.bytes;
    say(
      `${server === 'cairn' ? 'WAL' : 'data directory'}: ${(replayBytes / MIB).toFixed(0)} MiB in ${row.replayUsage.fileCount} files; ` +
        `RSS ${(row.memoryAtCrash.rssBytes / MIB).toFixed(0)} MiB; kill -9`,
    );

    const crashExit = await crash(launched);
    launched = undefined;
    const othersBefore = snapshotAllProcessesCpu();
    const windowStartMs = performance.now();
    launched = await launch({
      server,
      dataDir,
      machine,
      cairnFlags: flags,
      readyTimeoutMs: options.restartTimeoutMs,
      readyPath: READY_PATH,
      ...(options.cpuProfileDir === undefined || server !== 'cairn' ? {} : { cpuProfile: { dir: options.cpuProfileDir, name: 'cairn-recovery-restart.cpuprofile' } }),
    });
    const startMs = launched.startMs;
    await waitForAllStreams(launched, expectedOffsets, windowStartMs + options.restartTimeoutMs);
    // Measured from just before launch(); launch() measures from its spawn, a few ms later.
    const allStreamsMs = Math.max(startMs, performance.now() - windowStartMs);
    const serverCpuS = launched.running.cpuSeconds();
    const others = cpuOfOthers(othersBefore, snapshotAllProcessesCpu(), new Set([process.pid, launched.running.pid]));
    const memory = processMemory(launched.running.pid);
    say(`restarted: answered HTTP after ${(startMs / 1000).toFixed(2)} s, every stream complete after ${(allStreamsMs / 1000).toFixed(2)} s`);
    const verified = await verifyAll(launched, options, machine);
    row.recovery = {
      crashExit,
      startMs,
      allStreamsMs,
      sPerGiB: allStreamsMs / 1000 / (replayBytes / GIB),
      serverCpuS,
      otherCpuPercent: (others.cpuS / (allStreamsMs / 1000)) * 100,
      memory,
      verifiedCount: verified.verifiedCount,
      verifyFailures: verified.failures,
      verifyMs: verified.elapsedMs,
      ...(launched.recovery === undefined ? {} : { cairnLog: launched.recovery }),
    };
    say(`read back: ${verified.verifiedCount} of ${options.streamCount} streams whole and in order (${(verified.elapsedMs / 1000).toFixed(1)} s)`);
    if (launched.running.exitedEarly()) throw new Error('server exited');
  } catch (error) {
    const text = (error as Error).message;
    row.failure = text;
    if (launched !== undefined) row.failure += `\n--- server output (tail) ---\n${launched.running.outputTail().slice(-2000)}`;
    say(`FAILED: ${text.split('\n')[0]}`);
  } finally {
    if (launched !== undefined) await stopTimed(launched);
    removeDataDir(dataDir);
  }
  return row;
}

// ------------------------------------------------------------------------------------------------
// Report

function flagsOf(row: Row, options: Options): string {
  const flags: string[] = [];
  if (row.failure !== undefined) flags.push('FAILED');
  flags.push(...row.warnings);
  const recovery = row.recovery;
  if (recovery !== undefined) {
    if (recovery.verifiedCount < options.streamCount) flags.push(`${options.streamCount - recovery.verifiedCount} streams read back wrong`);
    if (recovery.otherCpuPercent >= OTHER_CPU_BUSY_PERCENT) flags.push('busy machine');
  }
  return flags.length === 0 ? 'ok' : `! ${flags.join(', ')}`;
}

function table(rows: readonly Row[], options: Options): string {
  const refFile = rows.find((row) => row.server === 'ref-file' && row.recovery !== undefined);
  const body = rows.map((row) => {
    const recovery = row.recovery;
    const log = recovery?.cairnLog;
    const seconds = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(2));
    return [
      SERVER_LABELS[row.server],
      row.replayUsage === undefined ? '-' : `${(row.replayUsage.bytes / MIB).toFixed(0)} (${row.server === 'cairn' ? 'WAL' : 'data'})`,
      row.ingest === undefined ? '-' : (row.ingest.bytes / 1e6 / (row.ingest.elapsedMs / 1000)).toFixed(0),
      seconds(row.emptyStartMs),
      seconds(recovery?.startMs),
      seconds(recovery?.allStreamsMs),
      recovery === undefined ? '-' : recovery.sPerGiB.toFixed(2),
      recovery === undefined || row.emptyStartMs === undefined || row.replayUsage === undefined
        ? '-'
        : ((recovery.allStreamsMs - row.emptyStartMs) / 1000 / (row.replayUsage.bytes / GIB)).toFixed(2),
      log === undefined ? '-' : `${log.recoveryMs} / ${log.walReplayMs?.toFixed(0) ?? '-'}`,
      log === undefined ? '-' : String(log.replayedRecords),
      recovery === undefined ? '-' : recovery.serverCpuS.toFixed(2),
      row.memoryAtCrash === undefined ? '-' : (row.memoryAtCrash.rssBytes / MIB).toFixed(0),
      recovery === undefined ? '-' : (recovery.memory.rssBytes / MIB).toFixed(0),
      recovery === undefined ? '-' : `${recovery.verifiedCount}/${options.streamCount}`,
      formatPercent(recovery?.otherCpuPercent ?? Number.NaN),
      row.server === 'cairn' && refFile?.recovery !== undefined && recovery !== undefined ? formatRatio(recovery.allStreamsMs / refFile.recovery.allStreamsMs) : '',
      flagsOf(row, options),
    ];
  });
  return formatTable(
    [
      'server',
      'replayed MiB',
      'ingest MB/s',
      'empty start s',
      'HTTP s',
      'all streams s',
      's/GiB',
      'over empty s/GiB',
      'recovery / replay ms (log)',
      'records',
      'srv CPU s',
      'RSS MiB crash',
      'RSS MiB after',
      'read back',
      'other CPU',
      'time ÷ ref-file',
      'flags',
    ],
    body,
    1,
  );
}

function targets(rows: readonly Row[], options: Options): TargetCheck[] {
  const cairn = rows.find((row) => row.server === 'cairn');
  if (cairn === undefined) return [];
  const recovery = cairn.recovery;
  const refFile = rows.find((row) => row.server === 'ref-file')?.recovery;
  const ok = recovery !== undefined && cairn.failure === undefined && recovery.verifiedCount === options.streamCount;
  const note = [
    recovery === undefined ? '' : `${(recovery.allStreamsMs / 1000).toFixed(2)} s for ${((cairn.replayUsage?.bytes ?? 0) / MIB).toFixed(0)} MiB of WAL (HTTP after ${(recovery.startMs / 1000).toFixed(2)} s)`,
    refFile === undefined ? '' : `ref-file ${(refFile.allStreamsMs / 1000).toFixed(2)} s`,
    options.walBytes === GIB ? '' : `only ${options.walBytes / MIB} MiB written, not 1 GiB`,
    cairn.warnings.join(', '),
    recovery !== undefined && recovery.otherCpuPercent >= OTHER_CPU_BUSY_PERCENT ? 'busy machine' : '',
  ]
    .filter((part) => part !== '')
    .join('; ');
  return [checkTarget(WORKLOAD, 's per GiB of WAL', ok ? recovery.sPerGiB : Number.NaN, 'at-most', TARGET_S_PER_GIB, note)];
}

/** Runs the recovery benchmark (flags: see usage()); resolves with the raw results path and the workload-9 target. */
export async function main(args: string[]): Promise<BenchOutcome> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) return { resultsPath: '', targets: [] };
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('recovery benchmark', machine),
      `ingest: ${options.walBytes / MIB} MiB over ${options.streamCount} streams in ${options.appendBytes}-byte POSTs (one sequential writer per stream, all at once)`,
      `cairn: --durability wal ${cairnFlags(options).join(' ')} (nothing checkpointed or sealed: all in the WAL)`,
      `pinning: ${describePinning(machine, 'readers')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); page cache not dropped`,
      '',
    ].join('\n'),
  );

  const rows: Row[] = [];
  for (const server of options.servers) {
    process.stdout.write(`${SERVER_LABELS[server]}:\n`);
    rows.push(await runServer(server, options, machine));
  }

  process.stdout.write(`\n${table(rows, options)}\n`);
  for (const row of rows) if (row.failure !== undefined) process.stdout.write(`\nFAILED ${SERVER_LABELS[row.server]}:\n${row.failure}\n`);
  process.stdout.write(
    '\nreplayed MiB = what the restart reads: Cairn\'s <data-dir>/wal, the reference\'s whole data directory. empty start s =\n' +
      'the same server starting on an empty data directory (Node, module loading). HTTP s = spawn (after kill -9) until the\n' +
      'server answers HTTP; all streams s = spawn until a HEAD of every stream shows its Stream-Next-Offset of before the crash;\n' +
      's/GiB = all streams s / GiB replayed; over empty s/GiB = (all streams s - empty start s) / GiB replayed. recovery /\n' +
      'replay ms = Cairn\'s log: opening the store to the end of replay / reading and decoding WAL files. srv CPU s = the new\n' +
      'process\'s CPU until every stream was complete (Node\'s start included). read back = streams read from -1 with every\n' +
      `append's stamp checked. other CPU = every other process during the restart, in % of one core (>= ${OTHER_CPU_BUSY_PERCENT}%: busy machine).\n` +
      'The page cache is not dropped.\n',
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `recovery-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  const checks = targets(rows, options);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, config, cairnFlags: cairnFlags(options), rows, targets: checks }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profile: ${cpuProfileDir}\n`);
  if (rows.some((row) => row.failure !== undefined)) process.exitCode = 1;
  return { resultsPath, targets: checks };
}
