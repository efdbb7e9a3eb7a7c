/**
 * Scale of streams (issue 4, workload 8): 1,000,000 streams with one small message each. Measures
 * how long creating them takes, the server's memory afterwards, and how long a restart on the same
 * data takes (graceful, then after `kill -9`), for Cairn (`--durability wal`, every other flag at
 * its default) against the upstream reference server file-backed and in memory.
 *
 *   npm run bench -- scale [--streams 1000000] [--servers cairn,ref-file,ref-memory] [--connections 64]
 *                          [--body-bytes 100] [--create-timeout-ms 300000] [--ref-create-timeout-ms 60000]
 *                          [--seal-wait-ms 120000] [--restart-timeout-ms 120000] [--verify-count 1000]
 *                          [--no-crash] [--data-root DIR] [--cpu-prof]
 *
 * Each stream is created by one `PUT /v1/stream/scale/<n>` whose ~100-byte body is its first
 * message (PROTOCOL.md: a PUT body is the stream's initial content). wrk (C, one thread, 64
 * connections, pinned to core 1) sends them with bench/lib/scale-create.lua and stops after the
 * last one; the server runs on core 0. See usage() for the phases and their bounds.
 */
import { randomInt } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fetchCairnStats, requestCountsOf } from './lib/cairn-stats.ts';
import { cpuOfOthers, snapshotAllProcessesCpu, type OthersCpu } from './lib/cpu.ts';
import { diskUsage, type DiskUsage } from './lib/disk-usage.ts';
import { describeMachine, type Machine } from './lib/machine.ts';
import { processMemory, type ProcessMemory } from './lib/process-memory.ts';
import { formatCount, formatPercent, formatRatio, formatTable } from './lib/table.ts';
import {
  benchHeader,
  describePinning,
  fileTimestamp,
  GENERATOR_CORE,
  installInterruptCleanup,
  makeDataDir,
  GENERATOR_SATURATED_PERCENT,
  OTHER_CPU_BUSY_PERCENT,
  parseServers,
  pinTo,
  removeDataDir,
  SERVER_CORE,
  SERVER_LABELS,
  SERVER_NAMES,
  type ServerName,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { crash, launch, stopTimed, type CairnRecoveryLog, type Launched } from './lib/restart.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { runWrk, WRK_INSTALL_HINT, wrkVersion, type WrkResult } from './lib/wrk.ts';

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const SCRIPT_PATH = fileURLToPath(new URL('./lib/scale-create.lua', import.meta.url));
/** Both servers get the same URLs; Cairn requires the `/v1/stream/` prefix, the reference accepts any path. */
const STREAM_PATH_PREFIX = '/v1/stream/scale/';
const READY_PATH = '/v1/stream/scale-ready-probe';
const MIB = 1024 * 1024;
const WORKLOAD = '8. 1,000,000 streams';
const TARGET_CREATE_S = 120;
const TARGET_RSS_MIB = 2048;
const TARGET_RESTART_S = 30;
const TARGET_STREAM_COUNT = 1_000_000;
/** A fresh server's start (no data) is quick; restarts get `--restart-timeout-ms`. */
const FRESH_START_TIMEOUT_MS = 30_000;
/** One verification GET; a few ms normally. */
const VERIFY_REQUEST_TIMEOUT_MS = 10_000;
const VERIFY_CONCURRENCY = 16;
const SEAL_POLL_MS = 1_000;
/** Progress samples of the seal watch kept in the JSON. */
const SEAL_SAMPLE_EVERY_MS = 5_000;
/** The filler and the body format of bench/lib/scale-create.lua need room for "scale:<n>:". */
const BODY_BYTES_MIN = 24;

interface Options {
  streamCount: number;
  servers: ServerName[];
  connectionCount: number;
  bodyBytes: number;
  createTimeoutMs: number;
  refCreateTimeoutMs: number;
  sealWaitMs: number;
  restartTimeoutMs: number;
  verifyCount: number;
  crashRestart: boolean;
  dataRoot: string;
  cpuProfileDir: string | undefined;
}

function usage(): string {
  return `usage: npm run bench -- scale [flags]

Workload 8 of issue 4: create N streams with one small message each (one PUT with a body per
stream, wrk with 64 connections), then measure the server's memory and its restart time on the
same data. Servers: cairn (--durability wal, defaults otherwise), ref-file, ref-memory.

Phases per server (fresh data directory, server on core ${SERVER_CORE}, wrk on core ${GENERATOR_CORE}):
  1. create N streams; creation time, creates/s, latency, CPU of server / wrk / others
  2. memory: VmRSS after creation, VmHWM (peak), RSS per stream over the empty server
  3. cairn only: watch its default idle sealing (--seal-idle-ms 30000: every stream idle 30 s
     is sealed into one segment + one manifest in the fs object store) until no hot tail is
     left or --seal-wait-ms; segments, PUTs, objects on disk, RSS, CPU
  4. cairn, ref-file: graceful restart (SIGTERM, start again on the same data), time from spawn
     until it answers HTTP; RSS; --verify-count random streams read back byte-exact
  5. cairn, ref-file: the same after kill -9 (unless --no-crash)

Flags:
  --streams N               streams to create (default 1000000; use 10000 for a quick run)
  --servers LIST            cairn,ref-file,ref-memory (default all)
  --connections N           wrk connections (default 64)
  --body-bytes N            first message size (default 100, at least ${BODY_BYTES_MIN})
  --create-timeout-ms MS    Cairn's creation limit; past it the row fails (default 300000)
  --ref-create-timeout-ms MS  the reference's creation limit; past it the row continues with the
                            streams created so far, flagged partial (default 60000: the file
                            mode fsyncs every create and would take far longer than Cairn)
  --seal-wait-ms MS         how long phase 3 watches sealing (default 120000; 0 skips it)
  --restart-timeout-ms MS   a restart slower than this fails (default 120000)
  --verify-count N          streams read back after each restart (default 1000)
  --no-crash                skip phase 5
  --data-root DIR           where the temporary data directories go (default ${tmpdir()})
  --cpu-prof                V8 CPU profiles of Cairn's processes in bench/results/ (written on a clean
                            exit only: not when a stop had to kill the server)

Every phase is bounded: creation (Cairn 5 min, the reference 1 min), the seal watch (2 min), a
graceful stop (1 min, then SIGKILL), each restart (2 min). The default run (1,000,000 streams)
takes about 7 minutes when Cairn meets its targets (creation <= ${TARGET_CREATE_S} s) and up to about 13
minutes when its limits are hit; removing millions of files adds a little. Raw results:
bench/results/scale-<timestamp>.json.
`;
}

function parseOptions(args: string[], timestamp: string): Options | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      streams: { type: 'string', default: String(TARGET_STREAM_COUNT) },
      servers: { type: 'string', default: SERVER_NAMES.join(',') },
      connections: { type: 'string', default: '64' },
      'body-bytes': { type: 'string', default: '100' },
      'create-timeout-ms': { type: 'string', default: '300000' },
      'ref-create-timeout-ms': { type: 'string', default: '60000' },
      'seal-wait-ms': { type: 'string', default: '120000' },
      'restart-timeout-ms': { type: 'string', default: '120000' },
      'verify-count': { type: 'string', default: '1000' },
      'no-crash': { type: 'boolean', default: false },
      'data-root': { type: 'string', default: tmpdir() },
      'cpu-prof': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(usage());
    return undefined;
  }
  return {
    streamCount: wholeNumberFlag('streams', values.streams, 1, 100_000_000),
    servers: parseServers(values.servers),
    connectionCount: wholeNumberFlag('connections', values.connections, 1, 10_000),
    bodyBytes: wholeNumberFlag('body-bytes', values['body-bytes'], BODY_BYTES_MIN, MIB),
    createTimeoutMs: wholeNumberFlag('create-timeout-ms', values['create-timeout-ms'], 1000, 3_600_000),
    refCreateTimeoutMs: wholeNumberFlag('ref-create-timeout-ms', values['ref-create-timeout-ms'], 1000, 3_600_000),
    sealWaitMs: wholeNumberFlag('seal-wait-ms', values['seal-wait-ms'], 0, 3_600_000),
    restartTimeoutMs: wholeNumberFlag('restart-timeout-ms', values['restart-timeout-ms'], 1000, 3_600_000),
    verifyCount: wholeNumberFlag('verify-count', values['verify-count'], 0, 1_000_000),
    crashRestart: !values['no-crash'],
    dataRoot: values['data-root'],
    cpuProfileDir: values['cpu-prof'] ? join(RESULTS_DIR, `cpuprof-scale-${timestamp}`) : undefined,
  };
}

// ------------------------------------------------------------------------------------------------
// Measurements

/** Stream n's first (and only) message: "scale:<n>:" padded with "x", as bench/lib/scale-create.lua builds it. */
function bodyOf(index: number, bodyBytes: number): Buffer {
  const head = `scale:${index}:`;
  return Buffer.from(head + 'x'.repeat(bodyBytes - head.length), 'latin1');
}

interface Creation {
  /** Streams the server answered 201 for. */
  createdCount: number;
  /** PUTs answered with anything but 201/200, plus socket errors. */
  failedCount: number;
  /** True when wrk's time limit ended the run before every stream was created. */
  timedOut: boolean;
  /** From wrk's start until the last creation was answered (or the limit), in s. */
  elapsedS: number;
  createsPerS: number;
  wrk: WrkResult;
  serverCpuPercent: number;
  generatorCpuPercent: number;
  otherCpuPercent: number;
  otherCpuTop: OthersCpu['top'];
}

interface SealWatch {
  /** How long the watch ran, in s; it ends when no hot-tail byte is left or at --seal-wait-ms. */
  watchedS: number;
  allSealed: boolean;
  /** Segments written since the server started (creation included). */
  segmentsWritten: number;
  /** Segments written during creation (already sealing: the first streams go idle 30 s in). */
  segmentsWrittenDuringCreate: number;
  /** Object-store PUTs since the server started, its startup overwrite probe included. */
  putCount: number;
  hotTailBytesLeft: number;
  /** Server CPU during the watch, in % of one core. */
  serverCpuPercent: number;
  memoryAfter: ProcessMemory;
  /** `{ atS, segmentsWritten, rssBytes }` every few seconds. */
  progress: { atS: number; segmentsWritten: number; rssBytes: number }[];
}

interface Verification {
  checkedCount: number;
  mismatchCount: number;
  /** The first few failures, e.g. `scale/123: status 404`. */
  failures: string[];
  elapsedMs: number;
}

interface Restart {
  kind: 'graceful' | 'crash';
  /** How the previous process ended: `exit 0` is a clean SIGTERM shutdown; `signal SIGKILL` a kill. */
  previousExit: string;
  /** SIGTERM until the process exited, in ms (graceful only). */
  stopMs?: number;
  /** Spawn until the server answered HTTP, in ms. */
  startMs: number;
  recovery?: CairnRecoveryLog;
  memory: ProcessMemory;
  verification?: Verification;
}

interface Row {
  server: ServerName;
  streamCount: number;
  failure?: string;
  /** RSS of the freshly started, empty server. */
  memoryEmpty?: ProcessMemory;
  creation?: Creation;
  memoryAfterCreate?: ProcessMemory;
  /** Resident bytes the streams added, per stream created. */
  rssBytesPerStream?: number;
  seal?: SealWatch;
  /** After creation (and the seal watch): the files the server keeps. */
  walUsage?: DiskUsage;
  objectsUsage?: DiskUsage;
  dataUsage?: DiskUsage;
  restarts: Restart[];
  cleanupMs?: number;
}

async function measureCreation(launched: Launched, options: Options, machine: Machine, timeoutMs: number): Promise<Creation> {
  const cpuBeforeS = launched.running.cpuSeconds();
  const othersBefore = snapshotAllProcessesCpu();
  const startedMs = performance.now();
  const wrk = await runWrk({
    baseUrl: launched.baseUrl,
    connectionCount: options.connectionCount,
    durationS: Math.ceil(timeoutMs / 1000),
    script: { path: SCRIPT_PATH, args: [String(options.streamCount), String(options.bodyBytes), STREAM_PATH_PREFIX, '0'] },
    pin: pinTo(machine, GENERATOR_CORE),
  });
  const windowS = (performance.now() - startedMs) / 1000;
  const cpuAfterS = launched.running.cpuSeconds();
  const others = cpuOfOthers(othersBefore, snapshotAllProcessesCpu(), new Set([process.pid, launched.running.pid]));
  const statuses = wrk.statusCounts ?? {};
  const createdCount = statuses['201'] ?? 0;
  const badStatusCount = Object.entries(statuses)
    .filter(([status]) => status !== '201' && status !== '200')
    .reduce((sum, [, count]) => sum + count, 0);
  const socketErrorCount = wrk.errors.connect + wrk.errors.read + wrk.errors.write + wrk.errors.timeout;
  // scale-create.lua's own clock: first PUT to last answer. wrk's duration also counts the SIGINT's
  // way back to wrk's main thread; it is the fallback when the time limit ended the run.
  const { createElapsedS } = wrk as WrkResult & { createElapsedS?: number };
  const elapsedS = createElapsedS !== undefined && createElapsedS > 0 ? createElapsedS : wrk.durationUs / 1e6;
  return {
    createdCount,
    failedCount: badStatusCount + socketErrorCount,
    timedOut: createdCount + badStatusCount < options.streamCount,
    elapsedS,
    createsPerS: createdCount / elapsedS,
    wrk,
    serverCpuPercent: ((cpuAfterS - cpuBeforeS) / windowS) * 100,
    generatorCpuPercent: (wrk.cpuSeconds / windowS) * 100,
    otherCpuPercent: (others.cpuS / windowS) * 100,
    otherCpuTop: others.top,
  };
}

/** Watches Cairn's sealer until no hot-tail byte is left or `sealWaitMs` passes. */
async function watchSeals(launched: Launched, options: Options, segmentsAtCreateEnd: number): Promise<SealWatch> {
  if (launched.statsPort === undefined) throw new Error('no stats listener');
  const statsPort = launched.statsPort;
  const cpuBeforeS = launched.running.cpuSeconds();
  const startedMs = performance.now();
  const progress: SealWatch['progress'] = [];
  let lastSampleMs = -Infinity;
  for (;;) {
    const { tiering } = await fetchCairnStats(statsPort);
    const nowMs = performance.now();
    const atS = (nowMs - startedMs) / 1000;
    if (nowMs - lastSampleMs >= SEAL_SAMPLE_EVERY_MS) {
      lastSampleMs = nowMs;
      progress.push({ atS, segmentsWritten: tiering.segmentsWritten, rssBytes: processMemory(launched.running.pid).rssBytes });
      process.stdout.write(`    ${atS.toFixed(0)} s: ${formatCount(tiering.segmentsWritten)} segments, ${formatCount(tiering.hotTailBytes)} hot-tail bytes left\n`);
    }
    const allSealed = tiering.hotTailBytes === 0;
    if (allSealed || nowMs - startedMs >= options.sealWaitMs) {
      return {
        watchedS: atS,
        allSealed,
        segmentsWritten: tiering.segmentsWritten,
        segmentsWrittenDuringCreate: segmentsAtCreateEnd,
        putCount: requestCountsOf(tiering).put,
        hotTailBytesLeft: tiering.hotTailBytes,
        serverCpuPercent: ((launched.running.cpuSeconds() - cpuBeforeS) / Math.max(atS, 0.001)) * 100,
        memoryAfter: processMemory(launched.running.pid),
        progress,
      };
    }
    if (launched.running.exitedEarly()) throw new Error('server exited while sealing');
    await sleep(SEAL_POLL_MS);
  }
}

/**
 * Reads `count` random streams of `[0, answeredCount)` from `-1` and compares each with its body.
 * Streams are sent in index order, so those are the ones whose PUT was answered (a few more may
 * have been in flight at a time limit). A PUT answered with an error counts as a mismatch if the
 * stream is not there with its message afterwards.
 */
async function verifySample(baseUrl: string, answeredCount: number, count: number, bodyBytes: number): Promise<Verification> {
  const indices = answeredCount === 0 ? [] : Array.from({ length: count }, () => randomInt(answeredCount));
  const failures: string[] = [];
  let mismatchCount = 0;
  let next = 0;
  const startedMs = performance.now();
  const worker = async () => {
    while (next < indices.length) {
      const index = indices[next++] ?? 0;
      let problem: string | undefined;
      try {
        const response = await fetch(`${baseUrl}${STREAM_PATH_PREFIX}${index}?offset=-1`, { signal: AbortSignal.timeout(VERIFY_REQUEST_TIMEOUT_MS) });
        const body = Buffer.from(await response.arrayBuffer());
        if (response.status !== 200) problem = `status ${response.status}`;
        else if (!body.equals(bodyOf(index, bodyBytes))) problem = `${body.length} bytes, not the ${bodyBytes} written`;
      } catch (error) {
        problem = (error as Error).message;
      }
      if (problem !== undefined) {
        mismatchCount++;
        if (failures.length < 5) failures.push(`scale/${index}: ${problem}`);
      }
    }
  };
  await Promise.all(Array.from({ length: VERIFY_CONCURRENCY }, worker));
  return { checkedCount: indices.length, mismatchCount, failures, elapsedMs: performance.now() - startedMs };
}

// ------------------------------------------------------------------------------------------------
// One server

function profileFor(options: Options, server: ServerName, phase: string): { dir: string; name: string } | undefined {
  if (options.cpuProfileDir === undefined || server !== 'cairn') return undefined;
  return { dir: options.cpuProfileDir, name: `cairn-scale-${phase}.cpuprofile` };
}

function describeRestart(restart: Restart): string {
  const verify = restart.verification === undefined ? '' : `, verified ${restart.verification.checkedCount - restart.verification.mismatchCount}/${restart.verification.checkedCount}`;
  const stop = restart.stopMs === undefined ? '' : `stopped in ${(restart.stopMs / 1000).toFixed(1)} s (${restart.previousExit}), `;
  return `${stop}answered after ${(restart.startMs / 1000).toFixed(1)} s, RSS ${(restart.memory.rssBytes / MIB).toFixed(0)} MiB${verify}`;
}

async function runServer(server: ServerName, options: Options, machine: Machine): Promise<Row> {
  const row: Row = { server, streamCount: options.streamCount, restarts: [] };
  const dataDir = makeDataDir(options.dataRoot, `scale-${server}`);
  const launchOptions = (phase: string, readyTimeoutMs: number) => {
    const cpuProfile = profileFor(options, server, phase);
    return { server, dataDir, machine, readyTimeoutMs, readyPath: READY_PATH, ...(cpuProfile === undefined ? {} : { cpuProfile }) };
  };
  let launched: Launched | undefined;
  const say = (text: string) => process.stdout.write(`  ${SERVER_LABELS[server]}: ${text}\n`);
  try {
    launched = await launch(launchOptions('create', FRESH_START_TIMEOUT_MS));
    row.memoryEmpty = processMemory(launched.running.pid);
    const timeoutMs = server === 'cairn' ? options.createTimeoutMs : options.refCreateTimeoutMs;
    const creation = await measureCreation(launched, options, machine, timeoutMs);
    row.creation = creation;
    row.memoryAfterCreate = processMemory(launched.running.pid);
    row.rssBytesPerStream = creation.createdCount > 0 ? (row.memoryAfterCreate.rssBytes - row.memoryEmpty.rssBytes) / creation.createdCount : Number.NaN;
    say(
      `${formatCount(creation.createdCount)} of ${formatCount(options.streamCount)} created in ${creation.elapsedS.toFixed(1)} s ` +
        `(${formatCount(creation.createsPerS)}/s, wrk ${formatPercent(creation.generatorCpuPercent)} of a core), ` +
        `RSS ${(row.memoryAfterCreate.rssBytes / MIB).toFixed(0)} MiB (peak ${(row.memoryAfterCreate.peakRssBytes / MIB).toFixed(0)})`,
    );
    if (creation.timedOut) {
      const text = `created ${creation.createdCount} of ${options.streamCount} streams within ${timeoutMs / 1000} s`;
      if (server === 'cairn') row.failure = text;
      say(server === 'cairn' ? `FAILED: ${text}` : `partial: ${text}; continuing with those`);
    }
    if (launched.running.exitedEarly()) throw new Error('server exited during creation');

    if (server === 'cairn' && launched.statsPort !== undefined && options.sealWaitMs > 0) {
      const { tiering } = await fetchCairnStats(launched.statsPort);
      say(`watching the idle seals (default --seal-idle-ms) for up to ${options.sealWaitMs / 1000} s`);
      row.seal = await watchSeals(launched, options, tiering.segmentsWritten);
      say(
        `${row.seal.allSealed ? 'all sealed' : 'NOT all sealed'} after ${row.seal.watchedS.toFixed(0)} s: ${formatCount(row.seal.segmentsWritten)} segments, ` +
          `${formatCount(row.seal.putCount)} PUTs, RSS ${(row.seal.memoryAfter.rssBytes / MIB).toFixed(0)} MiB (peak ${(row.seal.memoryAfter.peakRssBytes / MIB).toFixed(0)})`,
      );
    }
    if (server === 'cairn') {
      row.walUsage = diskUsage(join(dataDir, 'wal'));
      row.objectsUsage = diskUsage(join(dataDir, 'objects'));
      say(
        `on disk: WAL ${(row.walUsage.bytes / MIB).toFixed(0)} MiB in ${row.walUsage.fileCount} files, ` +
          `objects ${(row.objectsUsage.bytes / MIB).toFixed(0)} MiB in ${formatCount(row.objectsUsage.fileCount)} files`,
      );
    } else if (server === 'ref-file') {
      row.dataUsage = diskUsage(dataDir);
      say(`on disk: ${(row.dataUsage.bytes / MIB).toFixed(0)} MiB in ${formatCount(row.dataUsage.fileCount)} files`);
    }

    const answeredCount = Math.min(options.streamCount, creation.createdCount + creation.failedCount);
    if (server !== 'ref-memory') {
      const stopped = await stopTimed(launched);
      launched = undefined;
      launched = await launch(launchOptions('restart', options.restartTimeoutMs));
      const graceful: Restart = {
        kind: 'graceful',
        previousExit: stopped.exit,
        stopMs: stopped.stopMs,
        startMs: launched.startMs,
        memory: processMemory(launched.running.pid),
        ...(launched.recovery === undefined ? {} : { recovery: launched.recovery }),
      };
      graceful.verification = await verifySample(launched.baseUrl, answeredCount, options.verifyCount, options.bodyBytes);
      row.restarts.push(graceful);
      say(`graceful restart: ${describeRestart(graceful)}`);

      if (options.crashRestart) {
        const exit = await crash(launched);
        launched = undefined;
        launched = await launch(launchOptions('crash-restart', options.restartTimeoutMs));
        const crashed: Restart = {
          kind: 'crash',
          previousExit: exit,
          startMs: launched.startMs,
          memory: processMemory(launched.running.pid),
          ...(launched.recovery === undefined ? {} : { recovery: launched.recovery }),
        };
        crashed.verification = await verifySample(launched.baseUrl, answeredCount, options.verifyCount, options.bodyBytes);
        row.restarts.push(crashed);
        say(`restart after kill -9: ${describeRestart(crashed)}`);
      }
    }
    if (launched.running.exitedEarly()) throw new Error('server exited');
  } catch (error) {
    const text = (error as Error).message;
    row.failure = row.failure === undefined ? text : `${row.failure}; ${text}`;
    if (launched !== undefined) row.failure += `\n--- server output (tail) ---\n${launched.running.outputTail()}`;
    say(`FAILED: ${text.split('\n')[0]}`);
  } finally {
    if (launched !== undefined) await stopTimed(launched);
    row.cleanupMs = removeDataDir(dataDir);
  }
  return row;
}

// ------------------------------------------------------------------------------------------------
// Report

function mib(bytes: number | undefined): string {
  return bytes === undefined || !Number.isFinite(bytes) ? '-' : (bytes / MIB).toFixed(0);
}

function seconds(ms: number | undefined): string {
  return ms === undefined || !Number.isFinite(ms) ? '-' : (ms / 1000).toFixed(1);
}

function restartOf(row: Row, kind: Restart['kind']): Restart | undefined {
  return row.restarts.find((restart) => restart.kind === kind);
}

function verifiedText(row: Row): string {
  const checks = row.restarts.map((restart) => restart.verification).filter((check) => check !== undefined);
  if (checks.length === 0) return '-';
  const checked = checks.reduce((sum, check) => sum + check.checkedCount, 0);
  const bad = checks.reduce((sum, check) => sum + check.mismatchCount, 0);
  return `${checked - bad}/${checked}`;
}

function flagsOf(row: Row): string {
  const flags: string[] = [];
  if (row.failure !== undefined) flags.push('FAILED');
  const creation = row.creation;
  if (creation !== undefined) {
    if (creation.timedOut && row.server !== 'cairn') flags.push(`partial: ${formatCount(creation.createdCount)} of ${formatCount(row.streamCount)}`);
    if (creation.failedCount > 0) flags.push(`${creation.failedCount} failed creates`);
    if (creation.generatorCpuPercent >= GENERATOR_SATURATED_PERCENT) flags.push('generator saturated?');
    if (creation.otherCpuPercent >= OTHER_CPU_BUSY_PERCENT) flags.push('busy machine');
  }
  if (row.seal !== undefined && !row.seal.allSealed) flags.push('sealing not finished');
  const graceful = restartOf(row, 'graceful');
  if (graceful !== undefined && graceful.previousExit !== 'exit 0') flags.push(`graceful stop ended with ${graceful.previousExit}`);
  const mismatches = row.restarts.reduce((sum, restart) => sum + (restart.verification?.mismatchCount ?? 0), 0);
  if (mismatches > 0) flags.push(`${mismatches} streams read back wrong`);
  return flags.length === 0 ? 'ok' : `! ${flags.join(', ')}`;
}

function ratio(cairn: number | undefined, reference: number | undefined): number {
  return cairn === undefined || reference === undefined || reference === 0 ? Number.NaN : cairn / reference;
}

function mainTable(rows: readonly Row[]): string {
  const find = (server: ServerName) => rows.find((row) => row.server === server && row.creation !== undefined);
  const refFile = find('ref-file');
  const refMemory = find('ref-memory');
  const body = rows.map((row) => {
    const creation = row.creation;
    const isCairn = row.server === 'cairn';
    const peak = Math.max(row.memoryAfterCreate?.peakRssBytes ?? 0, row.seal?.memoryAfter.peakRssBytes ?? 0);
    return [
      SERVER_LABELS[row.server],
      formatCount(creation?.createdCount ?? Number.NaN),
      creation === undefined ? '-' : creation.elapsedS.toFixed(1),
      formatCount(creation?.createsPerS ?? Number.NaN),
      creation === undefined ? '-' : (creation.wrk.latencyUs.p99 / 1000).toFixed(1),
      mib(row.memoryAfterCreate?.rssBytes),
      peak > 0 ? mib(peak) : '-',
      formatCount(row.rssBytesPerStream ?? Number.NaN),
      seconds(restartOf(row, 'graceful')?.startMs),
      seconds(restartOf(row, 'crash')?.startMs),
      verifiedText(row),
      formatPercent(creation?.serverCpuPercent ?? Number.NaN),
      formatPercent(creation?.generatorCpuPercent ?? Number.NaN),
      formatPercent(creation?.otherCpuPercent ?? Number.NaN),
      isCairn ? formatRatio(ratio(creation?.createsPerS, refFile?.creation?.createsPerS)) : '',
      isCairn ? formatRatio(ratio(creation?.createsPerS, refMemory?.creation?.createsPerS)) : '',
      isCairn ? formatRatio(ratio(row.rssBytesPerStream, refMemory?.rssBytesPerStream)) : '',
      flagsOf(row),
    ];
  });
  return formatTable(
    [
      'server',
      'created',
      'create s',
      'creates/s',
      'p99 ms',
      'RSS MiB',
      'peak MiB',
      'B/stream',
      'restart s',
      'kill-9 restart s',
      'verified',
      'srv CPU',
      'gen CPU',
      'other CPU',
      'creates/s ÷ ref-file',
      '÷ ref-mem',
      'B/stream ÷ ref-mem',
      'flags',
    ],
    body,
    1,
  );
}

function sealTable(row: Row): string {
  const seal = row.seal;
  if (seal === undefined) return '';
  return formatTable(
    ['sealed', 'watched s', 'segments (during create)', 'PUTs', 'objects', 'objects MiB', 'WAL MiB', 'srv CPU', 'RSS MiB after', 'peak MiB'],
    [
      [
        seal.allSealed ? 'all' : `no (${formatCount(seal.hotTailBytesLeft)} B left)`,
        seal.watchedS.toFixed(0),
        `${formatCount(seal.segmentsWritten)} (${formatCount(seal.segmentsWrittenDuringCreate)})`,
        formatCount(seal.putCount),
        formatCount(row.objectsUsage?.fileCount ?? Number.NaN),
        mib(row.objectsUsage?.bytes),
        mib(row.walUsage?.bytes),
        formatPercent(seal.serverCpuPercent),
        mib(seal.memoryAfter.rssBytes),
        mib(seal.memoryAfter.peakRssBytes),
      ],
    ],
    1,
  );
}

function targets(rows: readonly Row[], options: Options): TargetCheck[] {
  const cairn = rows.find((row) => row.server === 'cairn');
  if (cairn === undefined) return [];
  const refFile = rows.find((row) => row.server === 'ref-file');
  const refMemory = rows.find((row) => row.server === 'ref-memory');
  const scaleNote = options.streamCount === TARGET_STREAM_COUNT ? '' : `only ${formatCount(options.streamCount)} streams, not comparable; `;
  const creation = cairn.creation;
  const complete = creation !== undefined && !creation.timedOut && cairn.failure === undefined;
  const refRate = (row: Row | undefined, name: string) =>
    row?.creation === undefined ? '' : `${name} ${formatCount(row.creation.createsPerS)}/s${row.creation.timedOut ? ' (partial)' : ''}`;
  const createNote = [
    `${formatCount(creation?.createsPerS ?? Number.NaN)} creates/s`,
    refRate(refFile, 'ref-file'),
    refRate(refMemory, 'ref-mem'),
    (creation?.generatorCpuPercent ?? 0) >= GENERATOR_SATURATED_PERCENT ? 'generator saturated?' : '',
    (creation?.otherCpuPercent ?? 0) >= OTHER_CPU_BUSY_PERCENT ? 'busy machine' : '',
  ]
    .filter((part) => part !== '')
    .join('; ');
  const peakBytes = Math.max(cairn.memoryAfterCreate?.peakRssBytes ?? Number.NaN, cairn.seal?.memoryAfter.peakRssBytes ?? 0);
  const rssNote = [
    `peak (VmHWM) over creation${cairn.seal === undefined ? '' : ' and idle seals'}`,
    `after creation ${mib(cairn.memoryAfterCreate?.rssBytes)} MiB`,
    refMemory?.memoryAfterCreate === undefined ? '' : `ref-mem ${mib(refMemory.memoryAfterCreate.rssBytes)} MiB`,
  ]
    .filter((part) => part !== '')
    .join('; ');
  const graceful = restartOf(cairn, 'graceful');
  const crashed = restartOf(cairn, 'crash');
  const refGraceful = refFile === undefined ? undefined : restartOf(refFile, 'graceful');
  const restartNote = [
    graceful !== undefined && graceful.previousExit !== 'exit 0' ? `spawn to HTTP after a stop that did not exit cleanly (${graceful.previousExit})` : 'spawn to HTTP after SIGTERM',
    crashed === undefined ? '' : `after kill -9 ${seconds(crashed.startMs)} s`,
    refGraceful === undefined ? '' : `ref-file ${seconds(refGraceful.startMs)} s${refFile?.creation?.timedOut ? ` with ${formatCount(refFile.creation.createdCount)} streams` : ''}`,
  ]
    .filter((part) => part !== '')
    .join('; ');
  return [
    checkTarget(WORKLOAD, 'created in s', complete ? creation.elapsedS : Number.NaN, 'at-most', TARGET_CREATE_S, scaleNote + createNote),
    checkTarget(WORKLOAD, 'server RSS MiB', peakBytes / MIB, 'at-most', TARGET_RSS_MIB, scaleNote + rssNote),
    checkTarget(WORKLOAD, 'restart s', graceful === undefined ? Number.NaN : graceful.startMs / 1000, 'at-most', TARGET_RESTART_S, scaleNote + restartNote),
  ];
}

// ------------------------------------------------------------------------------------------------

/** Runs the scale benchmark (flags: see usage()); resolves with the raw results path and the three workload-8 targets. */
export async function main(args: string[]): Promise<BenchOutcome> {
  const timestamp = fileTimestamp();
  const options = parseOptions(args, timestamp);
  if (options === undefined) return { resultsPath: '', targets: [] };
  const wrk = wrkVersion();
  if (wrk === undefined) throw new Error(WRK_INSTALL_HINT);
  installInterruptCleanup();
  const machine = describeMachine(options.dataRoot);
  process.stdout.write(
    [
      ...benchHeader('scale benchmark', machine),
      `load: ${wrk}, 1 thread, ${options.connectionCount} connections; ${formatCount(options.streamCount)} streams, each one PUT with a ` +
        `${options.bodyBytes}-byte body (application/octet-stream)`,
      `cairn: --durability wal, other flags at their defaults (idle seal after 30 s into the fs object store)`,
      `pinning: ${describePinning(machine, 'wrk')}`,
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem})`,
      '',
    ].join('\n'),
  );

  const rows: Row[] = [];
  for (const server of options.servers) {
    process.stdout.write(`${SERVER_LABELS[server]}:\n`);
    rows.push(await runServer(server, options, machine));
  }

  process.stdout.write(`\n${mainTable(rows)}\n`);
  const cairn = rows.find((row) => row.server === 'cairn');
  if (cairn?.seal !== undefined) process.stdout.write(`\ncairn's idle seals with default flags (after creation):\n${sealTable(cairn)}\n`);
  for (const row of rows) if (row.failure !== undefined) process.stdout.write(`\nFAILED ${SERVER_LABELS[row.server]}:\n${row.failure}\n`);
  process.stdout.write(
    '\ncreate s = wrk start to the last 201 (or the time limit); RSS MiB = VmRSS right after creation, peak MiB = VmHWM\n' +
      '(creation and, for cairn, the idle seals); B/stream = RSS added by the streams / streams created. restart s = spawn until\n' +
      'the server answers HTTP on the same data after a graceful stop (SIGTERM), kill-9 restart s = the same after kill -9;\n' +
      'verified = random streams read back byte-exact after the restarts. srv / gen / other CPU: share of one core used during\n' +
      `creation by the server, wrk, everything else (gen >= ${GENERATOR_SATURATED_PERCENT}%: generator saturated?; other >= ${OTHER_CPU_BUSY_PERCENT}%: busy machine).\n`,
  );

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `scale-${timestamp}.json`);
  const { cpuProfileDir, ...config } = options;
  const checks = targets(rows, options);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, wrk, config, rows, targets: checks }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  if (cpuProfileDir !== undefined) process.stdout.write(`cairn CPU profiles: ${cpuProfileDir}\n`);
  if (rows.some((row) => row.failure !== undefined)) process.exitCode = 1;
  return { resultsPath, targets: checks };
}
