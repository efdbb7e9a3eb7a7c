/**
 * Cold read: catch-up of one large stream from `-1` (256 MiB by default), from Cairn's hot tail
 * and from its segments with the segment cache cold and warm, against the upstream reference
 * server (in memory and file-backed) in the same run; plus what the tiering costs in
 * object-store requests: PUTs per GiB ingested and GETs per GiB replayed.
 *
 *   npm run bench -- cold-read [--stream-mib 256] [--append-bytes 1048576] [--repeat 5]
 *                              [--servers cairn,ref-file,ref-memory] [--s3 auto|env|ceph|off]
 *                              [--segment-size-bytes 8388608] [--seal-idle-ms 2000]
 *                              [--chunk-bytes-max N] [--data-root DIR] [--reader raw|node] [--cpu-prof]
 *
 * Every setup gets a fresh server (pinned to core 0) in a fresh data directory; the stream is
 * written with sequential `--append-bytes` POSTs; each timed read is one process
 * (bench/lib/catch-up-reader.ts, pinned to core 1) that follows `Stream-Next-Offset` until
 * `Stream-Up-To-Date` and checks every byte count and append stamp. Before each read the server
 * must be idle (CPU below 5% of a core for 2 × 750 ms), so a checkpoint or seal still running after
 * ingest is not timed.
 *
 * Setups: `ref-memory`, `ref-file` (page cache warm): one read per round. `cairn hot`: nothing
 * sealed (segment size 1 GiB, seal timers a day, hot-tail budget ≥ 1 GiB): one read per round.
 * `cairn segments` on the filesystem store (and on S3 when one is available): ingest, wait until
 * HEAD's `Cairn-Sealed-Offset` equals `Stream-Next-Offset`, stop; each round: start again on the
 * same data (the segment cache starts empty), read once (cache cold), read again (warm), stop.
 * All setups are prepared first, then `--repeat` rounds run each setup in turn, so load from a
 * neighbour spreads over all rows. Object-store requests are counted by the server itself
 * (`RunningServer.tiering.stats()`, served by bench/lib/cairn-with-stats.ts), read between phases.
 * Prints two tables and writes raw results to bench/results/cold-read-<timestamp>.json.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { s3ModeFlag, s3Source, startBenchS3, type BenchS3, type S3Mode } from './lib/bench-s3.ts';
import { fetchCairnStats, getBytesBetween, requestCountsBetween, requestCountsOf, type RequestCounts, type TieringStats } from './lib/cairn-stats.ts';
import { READER_CLIENTS, runCatchUpReader, type CatchUpResult, type ReaderClient } from './lib/catch-up-reader.ts';
import { cpuOfOthers, snapshotAllProcessesCpu, type CpuSnapshot, type OthersCpu } from './lib/cpu.ts';
import { createStream, headOffsets, ingest, waitUntilSealed, type IngestResult } from './lib/ingest.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { median } from './lib/median.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { formatPercent, formatRatio, formatTable } from './lib/table.ts';
import {
  describePinning,
  GENERATOR_CORE,
  GENERATOR_SATURATED_PERCENT,
  installInterruptCleanup,
  makeDataDir,
  OTHER_CPU_BUSY_PERCENT,
  parseServers,
  pinTo,
  removeDataDir,
  SERVER_CORE,
  SERVER_LABELS,
  SERVER_NAMES,
  trackDataDir,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** Both servers get the same URL; Cairn requires the `/v1/stream/` prefix, the reference accepts any path. */
const STREAM_PATH = '/v1/stream/bench/cold-read';
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** The issue's target for tiering cost with 8 MiB segments, manifest writes included. */
const PUTS_PER_GIB_TARGET = 260;
/**
 * Idle = server CPU below this share of one core over two consecutive windows. Together they span
 * more than Cairn's 1 s checkpoint check (CHECKPOINT_CHECK_INTERVAL_MS), so a checkpoint due after
 * ingest has started, and shows, before a read is timed.
 */
const SETTLE_IDLE_PERCENT = 5;
const SETTLE_WINDOW_MS = 750;
const SETTLE_IDLE_WINDOWS = 2;
const SETTLE_TIMEOUT_MS = 20_000;
/** Ingest of a few hundred MiB with an fsync per append takes seconds; a minute and more is a failure. */
const INGEST_TIMEOUT_MS = 180_000;
/** Sealing 256 MiB into 32 segments is a few seconds of PUTs even on a slow store. */
const SEALED_WAIT_MS = 120_000;
const STATS_READY_TIMEOUT_MS = 5_000;
/** The hot setup: no seal trigger fires (the CLI's largest segment size; timers of a day). */
const HOT_SEGMENT_SIZE_BYTES = GIB;
const HOT_SEAL_TIMER_MS = 86_400_000;

type StoreName = 'fs' | 's3';
type CaseName = 'memory' | 'file' | 'hot' | 'cold' | 'warm';

interface Options {
  streamBytes: number;
  appendBytes: number;
  repeatCount: number;
  servers: ServerName[];
  s3: S3Mode;
  segmentSizeBytes: number;
  sealIdleMs: number;
  chunkBytesMax: number | undefined;
  dataRoot: string;
  /** Where each segments round's Cairn writes a V8 CPU profile (`--cpu-prof`); none when undefined. */
  cpuProfileDir: string | undefined;
  reader: ReaderClient;
}

interface ReadSample extends CatchUpResult {
  /** Server CPU over the read, in % of one core. */
  serverCpuPercent: number;
  generatorCpuPercent: number;
  otherCpuPercent: number;
  otherCpuTop: OthersCpu['top'];
  /** CPU of the S3 store's processes (Ceph) over the read, in % of one core; absent otherwise. */
  storeCpuPercent?: number;
  /** Wait for the server to go idle before the read, in ms; `settled` false if it never did. */
  settleMs: number;
  settled: boolean;
  /** Object-store requests the server made during the read (Cairn with tiering only). */
  objectStoreRequests?: RequestCounts;
  /** Object-store GETs per GiB returned by the read. */
  getsPerGiB?: number;
  /** Bytes the GETs fetched, over bytes the read returned (1 = no read amplification). */
  getBytesPerReadByte?: number;
  /** Segment-cache lookups during the read: hits, misses (one GET each), joined to a GET in flight. */
  cache?: { hits: number; misses: number; collapsed: number };
}

interface Row {
  server: ServerName;
  store?: StoreName;
  case: CaseName;
  samples: ReadSample[];
  /** Why the row is incomplete; samples may still hold what was measured. */
  failure?: string;
  /** Conditions that make the row suspect, e.g. `partly sealed`. */
  warnings: string[];
}

interface Restart {
  /** From spawn to the server answering HTTP, in ms. */
  startMs: number;
  /** Requests the server made while starting (recovery, overwrite probe). */
  startupRequests?: RequestCounts;
  /** Whether HEAD showed everything sealed after the reads. */
  allSealed?: boolean;
}

interface StoreCost {
  store: StoreName;
  ingest?: IngestResult;
  sealWaitMs?: number;
  /** Requests from stream creation to everything sealed (startup's overwrite probe excluded). */
  requestsDuringIngest?: RequestCounts;
  putsPerGiB?: number;
  segmentsWritten?: number;
  sealedBytes?: number;
  /** Objects under the store's prefix after sealing (segments + manifest objects). */
  objects?: { count: number; bytes: number };
  restarts: Restart[];
  failure?: string;
}

interface Launched {
  running: RunningServer;
  streamUrl: string;
  statsPort: number | undefined;
  startMs: number;
}

function rowLabel(row: Row): string {
  return row.store === undefined ? SERVER_LABELS[row.server] : `cairn (wal, ${row.store})`;
}

const CASE_LABELS: Record<CaseName, string> = {
  memory: 'in memory',
  file: 'file (page cache warm)',
  hot: 'hot tail (nothing sealed)',
  cold: 'segments, cache cold',
  warm: 'segments, cache warm',
};

/** The options, or undefined when `--help` asked for the usage text. */
function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      'stream-mib': { type: 'string', default: '256' },
      'append-bytes': { type: 'string', default: String(MIB) },
      repeat: { type: 'string', default: '5' },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      s3: { type: 'string', default: 'auto' },
      'segment-size-bytes': { type: 'string', default: String(8 * MIB) },
      'seal-idle-ms': { type: 'string', default: '2000' },
      'chunk-bytes-max': { type: 'string' },
      'data-root': { type: 'string', default: tmpdir() },
      reader: { type: 'string', default: 'raw' },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const s3Mode = s3ModeFlag(values.s3);
  if (!READER_CLIENTS.includes(values.reader as ReaderClient)) throw new Error(`--reader must be one of ${READER_CLIENTS.join(', ')}`);
  // The hot setup must hold the whole stream unsealed: at most the largest segment size.
  const streamBytes = wholeNumberFlag('stream-mib', values['stream-mib'], 1, HOT_SEGMENT_SIZE_BYTES / MIB - 1) * MIB;
  const appendBytes = wholeNumberFlag('append-bytes', values['append-bytes'], 8, 64 * MIB);
  if (streamBytes % appendBytes !== 0) throw new Error('--stream-mib must be a whole number of --append-bytes');
  return {
    streamBytes,
    appendBytes,
    repeatCount: wholeNumberFlag('repeat', values.repeat, 1, 20),
    servers: parseServers(values.servers),
    s3: s3Mode,
    segmentSizeBytes: wholeNumberFlag('segment-size-bytes', values['segment-size-bytes'], 1, GIB),
    sealIdleMs: wholeNumberFlag('seal-idle-ms', values['seal-idle-ms'], 0, 86_400_000),
    chunkBytesMax: values['chunk-bytes-max'] === undefined ? undefined : wholeNumberFlag('chunk-bytes-max', values['chunk-bytes-max'], 1024, 256 * MIB),
    dataRoot: values['data-root'],
    reader: values.reader as ReaderClient,
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-${new Date().toISOString().replace(/[:.]/g, '-')}`) : undefined,
  };
}

// ------------------------------------------------------------------------------------------------
// Servers

function cairnCommand(port: number, statsPort: number, dataDir: string, flags: readonly string[], nodeFlags: readonly string[]): string[] {
  return [
    process.execPath,
    ...nodeFlags,
    'bench/lib/cairn-with-stats.ts',
    '--stats-port',
    String(statsPort),
    '--',
    '--port',
    String(port),
    '--data-dir',
    dataDir,
    '--durability',
    'wal',
    '--log-level',
    'warn',
    ...flags,
  ];
}

async function launch(
  server: ServerName,
  dataDir: string,
  machine: Machine,
  cairnFlags: readonly string[] = [],
  env?: Record<string, string>,
  cpuProfile?: { dir: string; name: string },
): Promise<Launched> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const statsPort = server === 'cairn' ? await freePort() : undefined;
  const node = process.execPath;
  const command =
    server === 'cairn'
      ? cairnCommand(
          port,
          statsPort ?? 0,
          dataDir,
          cairnFlags,
          cpuProfile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfile.dir}`, `--cpu-prof-name=${cpuProfile.name}`],
        )
      : server === 'ref-file'
        ? [node, 'bench/reference-server.ts', '--port', String(port), '--data-dir', dataDir]
        : [node, 'bench/reference-server.ts', '--port', String(port)];
  const startedMs = performance.now();
  const running = await startServer({
    command,
    cwd: REPO_ROOT,
    pin: pinTo(machine, SERVER_CORE),
    readyUrl: `${baseUrl}${STREAM_PATH}-ready-probe`,
    env,
  });
  const startMs = performance.now() - startedMs;
  if (statsPort !== undefined) {
    // The stats listener opens just after the server; give it a moment.
    const deadline = performance.now() + STATS_READY_TIMEOUT_MS;
    for (;;) {
      try {
        await fetchCairnStats(statsPort);
        break;
      } catch (error) {
        if (performance.now() > deadline) {
          await running.stop();
          throw new Error(`stats endpoint did not answer: ${(error as Error).message}`);
        }
        await sleep(50);
      }
    }
  }
  return { running, streamUrl: `${baseUrl}${STREAM_PATH}`, statsPort, startMs };
}

/** Cairn's tiering counters; undefined for the reference server. */
async function tieringStats(launched: Launched): Promise<TieringStats | undefined> {
  if (launched.statsPort === undefined) return undefined;
  return (await fetchCairnStats(launched.statsPort)).tiering;
}

/** Waits until the server's CPU stays below SETTLE_IDLE_PERCENT for SETTLE_IDLE_WINDOWS windows in a row. */
async function settle(running: RunningServer): Promise<{ settleMs: number; settled: boolean }> {
  const startedMs = performance.now();
  let idleWindows = 0;
  for (;;) {
    const before = running.cpuSeconds();
    await sleep(SETTLE_WINDOW_MS);
    const usedPercent = ((running.cpuSeconds() - before) / (SETTLE_WINDOW_MS / 1000)) * 100;
    idleWindows = usedPercent < SETTLE_IDLE_PERCENT ? idleWindows + 1 : 0;
    const settleMs = performance.now() - startedMs;
    if (idleWindows >= SETTLE_IDLE_WINDOWS) return { settleMs, settled: true };
    if (settleMs > SETTLE_TIMEOUT_MS) return { settleMs, settled: false };
  }
}

function cpuOf(snapshot: CpuSnapshot, pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + (snapshot.get(pid)?.cpuS ?? 0), 0);
}

/** One timed catch-up read, with the CPU of the server, the reader and everything else. */
async function measureRead(launched: Launched, options: Options, machine: Machine, storePids: readonly number[]): Promise<ReadSample> {
  const { settleMs, settled } = await settle(launched.running);
  const statsBefore = await tieringStats(launched);
  const serverBeforeS = launched.running.cpuSeconds();
  const othersBefore = snapshotAllProcessesCpu();
  const windowStartMs = performance.now();
  const result = await runCatchUpReader({
    url: launched.streamUrl,
    expectedBytes: options.streamBytes,
    stampIntervalBytes: options.appendBytes,
    client: options.reader,
    pin: pinTo(machine, GENERATOR_CORE),
  });
  const windowS = (performance.now() - windowStartMs) / 1000;
  const serverAfterS = launched.running.cpuSeconds();
  const othersAfter = snapshotAllProcessesCpu();
  const statsAfter = await tieringStats(launched);
  const { pid: readerPid, ...read } = result;
  const readS = read.elapsedMs / 1000;
  // The server is idle outside the read (settled before it), so its CPU over the wider window is the read's.
  const others = cpuOfOthers(othersBefore, othersAfter, new Set([process.pid, launched.running.pid, readerPid, ...storePids]));
  const sample: ReadSample = {
    ...read,
    serverCpuPercent: ((serverAfterS - serverBeforeS) / readS) * 100,
    generatorCpuPercent: (read.cpuS / readS) * 100,
    otherCpuPercent: (others.cpuS / windowS) * 100,
    otherCpuTop: others.top,
    settleMs,
    settled,
  };
  if (storePids.length > 0) sample.storeCpuPercent = ((cpuOf(othersAfter, storePids) - cpuOf(othersBefore, storePids)) / readS) * 100;
  if (statsBefore !== undefined && statsAfter !== undefined) {
    sample.objectStoreRequests = requestCountsBetween(statsBefore, statsAfter);
    sample.getsPerGiB = read.bytes > 0 ? sample.objectStoreRequests.get / (read.bytes / GIB) : Number.NaN;
    sample.getBytesPerReadByte = read.bytes > 0 ? getBytesBetween(statsBefore, statsAfter) / read.bytes : Number.NaN;
    sample.cache = {
      hits: statsAfter.cache.hits - statsBefore.cache.hits,
      misses: statsAfter.cache.misses - statsBefore.cache.misses,
      collapsed: statsAfter.cache.collapsed - statsBefore.cache.collapsed,
    };
  }
  return sample;
}

function progress(row: Row, sample: ReadSample, index: number, options: Options): void {
  const what = sample.failure === undefined ? `${sample.megabytesPerS.toFixed(0)} MB/s, first byte ${sample.firstByteMs.toFixed(1)} ms` : `FAILED: ${sample.failure}`;
  const gets = sample.objectStoreRequests === undefined ? '' : `, ${sample.objectStoreRequests.get} GETs`;
  process.stdout.write(`  ${rowLabel(row)}, ${CASE_LABELS[row.case]}, read ${index + 1}/${options.repeatCount}: ${what}${gets}\n`);
}

function record(row: Row, sample: ReadSample, index: number, options: Options): void {
  row.samples.push(sample);
  progress(row, sample, index, options);
  if (sample.failure !== undefined && row.failure === undefined) row.failure = `read ${index + 1}: ${sample.failure}`;
}

async function writeStream(launched: Launched, options: Options): Promise<IngestResult> {
  await createStream(launched.streamUrl);
  const result = await ingest(launched.streamUrl, options.streamBytes, options.appendBytes, performance.now() + INGEST_TIMEOUT_MS);
  const mbPerS = result.bytes / 1e6 / (result.elapsedMs / 1000);
  const rejected = result.rejectedCount > 0 ? `, ${result.rejectedCount} appends refused and retried` : '';
  process.stdout.write(`  ingest: ${result.appendCount} × ${result.bytes / result.appendCount} B in ${(result.elapsedMs / 1000).toFixed(1)} s (${mbPerS.toFixed(0)} MB/s)${rejected}\n`);
  return result;
}

function failureText(error: unknown, launched: Launched | undefined): string {
  const message = (error as Error).message;
  return launched === undefined ? message : `${message}\n--- server output (tail) ---\n${launched.running.outputTail()}`;
}

// ------------------------------------------------------------------------------------------------
// Setups

/**
 * One server configuration under test. `prepare` starts it and writes the stream; `round(i)` takes
 * read i of each of its rows; `finish` stops it and removes its data. Rounds of all setups are
 * interleaved (round 1 of every setup, then round 2, …), so a neighbour that loads the machine for
 * a while spreads over every row instead of skewing one of them.
 */
interface Setup {
  title: string;
  rows: Row[];
  prepare(): Promise<void>;
  round(index: number): Promise<void>;
  finish(): Promise<void>;
}

function failRows(rows: readonly Row[], text: string): void {
  for (const row of rows) row.failure ??= text;
}

/** The reference server or Cairn's hot tail: one server for the whole run, one read per round. */
function simpleSetup(server: ServerName, options: Options, machine: Machine, ingests: Record<string, IngestResult | undefined>): Setup {
  const row: Row = { server, case: server === 'ref-memory' ? 'memory' : server === 'ref-file' ? 'file' : 'hot', samples: [], warnings: [] };
  const dataDir = makeDataDir(options.dataRoot, `cold-read-${server}`);
  const hotFlags = [
    '--segment-size-bytes',
    String(HOT_SEGMENT_SIZE_BYTES),
    '--seal-idle-ms',
    String(HOT_SEAL_TIMER_MS),
    '--unsealed-age-ms-max',
    String(HOT_SEAL_TIMER_MS),
    '--hot-tail-budget-bytes',
    String(Math.max(GIB, 2 * options.streamBytes)),
    ...chunkFlags(options),
  ];
  let launched: Launched | undefined;
  return {
    title: `${SERVER_LABELS[server]}, ${CASE_LABELS[row.case]}`,
    rows: [row],
    async prepare() {
      try {
        launched = await launch(server, dataDir, machine, hotFlags);
        ingests[server] = await writeStream(launched, options);
      } catch (error) {
        failRows([row], failureText(error, launched));
      }
    },
    async round(index) {
      if (launched === undefined || row.failure !== undefined) return;
      try {
        record(row, await measureRead(launched, options, machine, []), index, options);
        if (launched.running.exitedEarly()) throw new Error('server exited during the run');
      } catch (error) {
        failRows([row], failureText(error, launched));
      }
    },
    async finish() {
      try {
        const stats = launched === undefined || launched.running.exitedEarly() ? undefined : await tieringStats(launched);
        if (stats !== undefined && stats.segmentsWritten > 0) row.warnings.push(`partly sealed (${stats.segmentsWritten} segments)`);
      } catch (error) {
        failRows([row], failureText(error, launched));
      } finally {
        if (launched !== undefined) await launched.running.stop();
        removeDataDir(dataDir);
      }
    },
  };
}

function chunkFlags(options: Options): string[] {
  return options.chunkBytesMax === undefined ? [] : ['--chunk-bytes-max', String(options.chunkBytesMax)];
}

/** Files and bytes under a directory, recursively (the filesystem store's objects). */
function countFiles(dir: string): { count: number; bytes: number } {
  let count = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    count++;
    bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return { count, bytes };
}

/**
 * Cairn from segments on one object store. `prepare`: ingest and seal (counting PUTs), stop.
 * Each round: start again on the same data (empty segment cache), one cold read, one warm read, stop.
 */
function segmentsSetup(store: StoreName, s3: BenchS3 | undefined, options: Options, machine: Machine, cost: StoreCost): Setup {
  const cold: Row = { server: 'cairn', store, case: 'cold', samples: [], warnings: [] };
  const warm: Row = { server: 'cairn', store, case: 'warm', samples: [], warnings: [] };
  const rows = [cold, warm];
  const dataDir = makeDataDir(options.dataRoot, `cold-read-${store}`);
  const flags = [
    '--segment-size-bytes',
    String(options.segmentSizeBytes),
    '--seal-idle-ms',
    String(options.sealIdleMs),
    '--segment-cache-bytes',
    String(Math.max(512 * MIB, 2 * options.streamBytes)),
    ...chunkFlags(options),
    ...(s3 === undefined ? [] : s3.cairnFlags(store)),
  ];
  const storePids = s3?.pids ?? [];
  const fail = (error: unknown, launched: Launched | undefined) => {
    const text = failureText(error, launched);
    cost.failure ??= text;
    failRows(rows, text);
  };
  return {
    title: `cairn (wal, ${store}), segments`,
    rows,
    async prepare() {
      let launched: Launched | undefined;
      try {
        launched = await launch('cairn', dataDir, machine, flags, s3?.cairnEnv);
        const before = await tieringStats(launched);
        if (before === undefined) throw new Error('no tiering stats from the launcher');
        cost.ingest = await writeStream(launched, options);
        cost.sealWaitMs = await waitUntilSealed(launched.streamUrl, SEALED_WAIT_MS);
        const after = await tieringStats(launched);
        if (after === undefined) throw new Error('no tiering stats from the launcher');
        cost.requestsDuringIngest = requestCountsBetween(before, after);
        cost.putsPerGiB = cost.requestsDuringIngest.put / (cost.ingest.bytes / GIB);
        cost.segmentsWritten = after.segmentsWritten - before.segmentsWritten;
        cost.sealedBytes = after.sealedBytes - before.sealedBytes;
        cost.objects = s3 === undefined ? countFiles(join(dataDir, 'objects')) : await s3.countObjects(store);
        process.stdout.write(
          `  sealed after ${(cost.sealWaitMs / 1000).toFixed(1)} s: ${cost.segmentsWritten} segments, ` +
            `${cost.requestsDuringIngest.put} PUTs (${cost.putsPerGiB.toFixed(0)} per GiB), ${cost.objects.count} objects stored\n`,
        );
      } catch (error) {
        fail(error, launched);
      } finally {
        await launched?.running.stop();
      }
    },
    async round(index) {
      if (cost.failure !== undefined) return;
      let launched: Launched | undefined;
      try {
        const cpuProfile =
          options.cpuProfileDir === undefined ? undefined : { dir: options.cpuProfileDir, name: `cairn-cold-read-${store}-${index + 1}.cpuprofile` };
        launched = await launch('cairn', dataDir, machine, flags, s3?.cairnEnv, cpuProfile);
        const restart: Restart = { startMs: launched.startMs };
        cost.restarts.push(restart);
        const startup = await tieringStats(launched);
        if (startup !== undefined) restart.startupRequests = requestCountsOf(startup);
        record(cold, await measureRead(launched, options, machine, storePids), index, options);
        record(warm, await measureRead(launched, options, machine, storePids), index, options);
        // Checked after the reads, so that no request before the cold read warms anything up.
        const offsets = await headOffsets(launched.streamUrl);
        restart.allSealed = offsets.sealed !== undefined && offsets.sealed === offsets.next;
        if (launched.running.exitedEarly()) throw new Error('server exited during the run');
      } catch (error) {
        fail(error, launched);
      } finally {
        await launched?.running.stop();
      }
    },
    async finish() {
      if (cold.samples.some((sample) => sample.objectStoreRequests?.get === 0)) cold.warnings.push('cold read made no GETs');
      if (warm.samples.some((sample) => (sample.objectStoreRequests?.get ?? 0) > 0)) warm.warnings.push('warm read made GETs');
      if (cost.restarts.some((restart) => restart.allSealed === false)) {
        cold.warnings.push('not all sealed after restart');
        warm.warnings.push('not all sealed after restart');
      }
      removeDataDir(dataDir);
    },
  };
}

// ------------------------------------------------------------------------------------------------
// Report

/** Medians over the row's successful reads. */
function summary(row: Row) {
  const ok = row.samples.filter((sample) => sample.failure === undefined);
  const of = (pick: (sample: ReadSample) => number | undefined) => median(ok.map((sample) => pick(sample) ?? Number.NaN));
  return {
    readCount: ok.length,
    megabytesPerS: of((sample) => sample.megabytesPerS),
    firstByteMs: of((sample) => sample.firstByteMs),
    elapsedMs: of((sample) => sample.elapsedMs),
    requests: of((sample) => sample.requests),
    serverCpuPercent: of((sample) => sample.serverCpuPercent),
    generatorCpuPercent: of((sample) => sample.generatorCpuPercent),
    otherCpuPercent: of((sample) => sample.otherCpuPercent),
    storeCpuPercent: of((sample) => sample.storeCpuPercent),
    getsPerGiB: of((sample) => sample.getsPerGiB),
    getBytesPerReadByte: of((sample) => sample.getBytesPerReadByte),
    busyReadCount: ok.filter((sample) => sample.otherCpuPercent >= OTHER_CPU_BUSY_PERCENT).length,
    maxGeneratorCpuPercent: Math.max(0, ...ok.map((sample) => sample.generatorCpuPercent)),
    unsettled: ok.filter((sample) => !sample.settled).length,
  };
}

function flagsOf(row: Row): string {
  const stats = summary(row);
  const flags: string[] = [];
  if (row.failure !== undefined) flags.push('FAILED');
  flags.push(...row.warnings);
  if (stats.maxGeneratorCpuPercent >= GENERATOR_SATURATED_PERCENT) flags.push('generator saturated?');
  if (stats.busyReadCount > 0) flags.push(`busy machine (${stats.busyReadCount}/${stats.readCount} reads)`);
  if (stats.unsettled > 0) flags.push(`server not idle before ${stats.unsettled} read(s)`);
  return flags.length === 0 ? 'ok' : `! ${flags.join(', ')}`;
}

function formatNumber(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';
}

/** Like formatRatio, with two significant digits below 0.1 (TTFB ratios are often 0.01x and smaller). */
function formatSmallRatio(value: number): string {
  return Number.isFinite(value) && value > 0 && value < 0.1 ? `${value.toPrecision(2)}x` : formatRatio(value);
}

function formatFirstByteMs(value: number): string {
  if (!Number.isFinite(value)) return '-';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function readsTable(rows: readonly Row[]): string {
  const reference = (server: ServerName) => rows.find((row) => row.server === server && row.failure === undefined);
  const refFile = reference('ref-file');
  const refMemory = reference('ref-memory');
  const ratio = (row: Row, against: Row | undefined, pick: (stats: ReturnType<typeof summary>) => number) =>
    row.server === 'cairn' && against !== undefined && row.failure === undefined ? formatSmallRatio(pick(summary(row)) / pick(summary(against))) : '';
  const body = rows.map((row) => {
    const stats = summary(row);
    return [
      rowLabel(row),
      CASE_LABELS[row.case],
      formatNumber(stats.megabytesPerS),
      formatFirstByteMs(stats.firstByteMs),
      formatNumber(stats.elapsedMs / 1000, 2),
      formatNumber(stats.requests),
      formatPercent(stats.serverCpuPercent),
      formatPercent(stats.generatorCpuPercent),
      formatPercent(stats.otherCpuPercent),
      formatPercent(stats.storeCpuPercent),
      ratio(row, refFile, (s) => s.megabytesPerS),
      ratio(row, refMemory, (s) => s.megabytesPerS),
      ratio(row, refFile, (s) => s.firstByteMs),
      ratio(row, refMemory, (s) => s.firstByteMs),
      flagsOf(row),
    ];
  });
  return formatTable(
    ['server', 'case', 'MB/s', 'TTFB ms', 'read s', 'responses', 'srv CPU', 'gen CPU', 'other CPU', 'store CPU', 'MB/s ÷ ref-file', 'MB/s ÷ ref-mem', 'TTFB ÷ ref-file', 'TTFB ÷ ref-mem', 'flags'],
    body,
    2,
  );
}

function costTable(costs: readonly StoreCost[], rows: readonly Row[]): string {
  const body = costs.map((cost) => {
    const cold = rows.find((row) => row.store === cost.store && row.case === 'cold');
    const warm = rows.find((row) => row.store === cost.store && row.case === 'warm');
    const startupGets = median(cost.restarts.map((restart) => restart.startupRequests?.get ?? Number.NaN));
    const startupLists = median(cost.restarts.map((restart) => restart.startupRequests?.list ?? Number.NaN));
    const verdict =
      cost.putsPerGiB === undefined ? 'FAILED' : cost.putsPerGiB <= PUTS_PER_GIB_TARGET ? `ok (≤ ${PUTS_PER_GIB_TARGET})` : `! over ${PUTS_PER_GIB_TARGET}`;
    return [
      cost.store,
      cost.ingest === undefined ? '-' : formatNumber(cost.ingest.bytes / 1e6 / (cost.ingest.elapsedMs / 1000)),
      cost.sealWaitMs === undefined ? '-' : formatNumber(cost.sealWaitMs / 1000, 1),
      cost.segmentsWritten === undefined ? '-' : String(cost.segmentsWritten),
      cost.objects === undefined ? '-' : String(cost.objects.count),
      cost.requestsDuringIngest === undefined ? '-' : String(cost.requestsDuringIngest.put),
      formatNumber(cost.putsPerGiB ?? Number.NaN),
      cold === undefined ? '-' : formatNumber(summary(cold).getsPerGiB),
      cold === undefined ? '-' : formatNumber(summary(cold).getBytesPerReadByte, 2),
      warm === undefined ? '-' : formatNumber(summary(warm).getsPerGiB),
      `${formatNumber(startupGets)} / ${formatNumber(startupLists)}`,
      verdict,
    ];
  });
  return formatTable(
    ['store', 'ingest MB/s', 'seal wait s', 'segments', 'objects', 'PUTs', 'PUTs/GiB ingested', 'GETs/GiB cold', 'GET B/read B cold', 'GETs/GiB warm', 'startup GETs/LISTs', 'PUT target'],
    body,
    1,
  );
}

// ------------------------------------------------------------------------------------------------

/**
 * Issue 4's targets for workloads 5 and 10: catch-up hot ≥ 1 GB/s with first byte ≤ 5 ms, warm
 * segments ≥ 800 MB/s, cold from the object store ≥ 200 MB/s (S3 when it ran, else the fs store,
 * named in the note); ≤ 260 PUTs per GiB ingested.
 */
function targetChecks(rows: readonly Row[], costs: readonly StoreCost[]): TargetCheck[] {
  const find = (store: StoreName | undefined, kase: CaseName) =>
    rows.find((row) => row.server === 'cairn' && row.store === store && row.case === kase && row.failure === undefined);
  const rate = (row: Row | undefined) => (row === undefined ? Number.NaN : summary(row).megabytesPerS);
  const coldStore: StoreName = find('s3', 'cold') === undefined ? 'fs' : 's3';
  const cost = costs.find((candidate) => candidate.store === coldStore && candidate.failure === undefined);
  const hot = find(undefined, 'hot');
  const workload = '5. catch-up, 256 MiB from -1';
  return [
    checkTarget(workload, 'hot MB/s', rate(hot), 'at-least', 1000),
    checkTarget(workload, 'hot first byte ms', hot === undefined ? Number.NaN : summary(hot).firstByteMs, 'at-most', 5),
    checkTarget(workload, 'warm segments MB/s', rate(find(coldStore, 'warm')), 'at-least', 800, `${coldStore} store`),
    checkTarget(workload, 'cold object store MB/s', rate(find(coldStore, 'cold')), 'at-least', 200, `${coldStore} store${coldStore === 'fs' ? ' (no S3 ran)' : ''}`),
    checkTarget('10. cost, 8 MiB segments', 'PUTs per GiB ingested', cost?.putsPerGiB ?? Number.NaN, 'at-most', PUTS_PER_GIB_TARGET, `${coldStore} store`),
  ];
}

const USAGE = `npm run bench -- cold-read [--stream-mib 256] [--append-bytes 1048576] [--repeat 5]
    [--servers cairn,ref-file,ref-memory] [--s3 auto|env|ceph|off] [--segment-size-bytes 8388608]
    [--seal-idle-ms 2000] [--chunk-bytes-max N] [--data-root DIR] [--reader raw|node] [--cpu-prof]
about 2 minutes with the defaults; see bench/README.md (cold-read) for what each row means.
`;

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const timestamp = new Date().toISOString().replace(/[:.]/g, '-');
  const options = parseOptions(args);
  if (options === undefined) {
    process.stdout.write(USAGE);
    return undefined;
  }
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  const wantsCairn = options.servers.includes('cairn');
  const s3From = wantsCairn ? s3Source(options.s3) : ({ kind: 'off', reason: 'cairn not selected' } as const);
  process.stdout.write(
    [
      `cold-read benchmark — ${machine.date}`,
      `machine: ${machine.cpuCount} cores, ${machine.cpuModel}, Linux ${machine.kernel}, Node ${machine.nodeVersion}`,
      `stream: ${options.streamBytes / MIB} MiB written as ${options.streamBytes / options.appendBytes} sequential ${options.appendBytes}-byte POSTs ` +
        `(application/octet-stream); ${options.repeatCount} reads per case, medians shown`,
      `cairn segments: ${options.segmentSizeBytes} B segments, seal idle ${options.sealIdleMs} ms, ` +
        `max chunk ${options.chunkBytesMax === undefined ? 'default' : `${options.chunkBytesMax} B`}; S3: ${s3From.kind === 'off' ? `off (${s3From.reason})` : s3From.kind}`,
      `pinning: ${describePinning(machine, 'reader')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); page cache not dropped (fs "cold" = Cairn's segment cache cold)`,
      ...(options.cpuProfileDir === undefined ? [] : [`cairn CPU profiles (segments rounds): ${options.cpuProfileDir}`]),
      '',
    ].join('\n'),
  );

  const costs: StoreCost[] = [];
  const ingests: Record<string, IngestResult | undefined> = {};
  const setups: Setup[] = [];
  let s3: BenchS3 | undefined;
  try {
    for (const server of ['ref-memory', 'ref-file', 'cairn'] as const) {
      if (options.servers.includes(server)) setups.push(simpleSetup(server, options, machine, ingests));
    }
    if (wantsCairn) {
      const fsCost: StoreCost = { store: 'fs', restarts: [] };
      costs.push(fsCost);
      setups.push(segmentsSetup('fs', undefined, options, machine, fsCost));
      if (s3From.kind !== 'off') {
        const s3Cost: StoreCost = { store: 's3', restarts: [] };
        costs.push(s3Cost);
        try {
          s3 = await startBenchS3(s3From);
          if (s3.tempDir !== undefined) trackDataDir(s3.tempDir);
          process.stdout.write(`S3: ${s3.description}${s3.startMs > 0 ? `, started in ${(s3.startMs / 1000).toFixed(1)} s` : ''}\n`);
          setups.push(segmentsSetup('s3', s3, options, machine, s3Cost));
        } catch (error) {
          s3Cost.failure = `S3 store unavailable: ${(error as Error).message}`;
          process.stdout.write(`S3 FAILED: ${s3Cost.failure.split('\n')[0]}\n`);
        }
      }
    }
    for (const setup of setups) {
      process.stdout.write(`${setup.title}: prepare\n`);
      await setup.prepare();
      for (const row of setup.rows) if (row.failure !== undefined) process.stdout.write(`  FAILED: ${row.failure.split('\n')[0]}\n`);
    }
    for (let index = 0; index < options.repeatCount; index++) {
      process.stdout.write(`round ${index + 1}/${options.repeatCount}\n`);
      for (const setup of setups) await setup.round(index);
    }
  } finally {
    for (const setup of setups) await setup.finish();
    await s3?.stop();
  }
  const rows = setups.flatMap((setup) => setup.rows);

  process.stdout.write(`\n${readsTable(rows)}\n`);
  if (costs.length > 0) process.stdout.write(`\nobject-store requests (counted by the server, per GiB = 2^30 bytes):\n${costTable(costs, rows)}\n`);
  // One setup's failure fails several rows with the same text: print each text once.
  const failures = new Map<string, string[]>();
  const noteFailure = (what: string, failure: string | undefined) => {
    if (failure !== undefined) failures.set(failure, [...(failures.get(failure) ?? []), what]);
  };
  for (const row of rows) noteFailure(`${rowLabel(row)}, ${CASE_LABELS[row.case]}`, row.failure);
  for (const cost of costs) noteFailure(`cairn ${cost.store} ingest and seal`, cost.failure);
  for (const [failure, whats] of failures) process.stdout.write(`\nFAILED ${whats.join('; ')}:\n${failure}\n`);
  process.stdout.write(
    '\nMB/s = 10^6 bytes/s over the whole catch-up (first request to the up-to-date response); TTFB = first request to first body\n' +
      'byte. ÷ columns: Cairn over the reference (MB/s: higher is better for Cairn; TTFB: lower is better for Cairn).\n' +
      'srv / gen / other / store CPU: share of one core used during the read by the server, the reader process, everything else,\n' +
      `and the S3 store's processes; gen CPU near 100% would mean the reader is the limit (flagged at ${GENERATOR_SATURATED_PERCENT}%);\n` +
      `other CPU >= ${OTHER_CPU_BUSY_PERCENT}% means a neighbour competed for the cores (flagged). PUTs include manifest writes and\n` +
      'stream creation, not the startup overwrite probe; GETs/GiB = object-store GETs during a read / GiB returned.\n',
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `cold-read-${timestamp}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, config: options, s3: s3?.description, ingests, rows, costs }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (failures.size > 0) process.exitCode = 1;
  return { resultsPath, targets: targetChecks(rows, costs) };
}
