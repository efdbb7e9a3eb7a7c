/**
 * Object-store cost of stream lifecycles and the lazy lookup of a fresh node (issue 13, "Speed and
 * cost"), Cairn only, on the filesystem store and (with `--s3`) on an S3-compatible store:
 *
 *  1. lifecycles: `--streams` streams each created, appended to three times (1 KiB each) and
 *     closed; once every stream is sealed and its stored metadata has caught up, PUTs per stream;
 *  2. ingest: one stream of `--ingest-mib` MiB in 1 MiB appends with 8 MiB segments; PUTs per GiB;
 *  3. lazy lookup: the lifecycle node is stopped, its data directory deleted but for the objects, a
 *     fresh node started; the first `GET ?offset=-1` of every stream (one LIST, one GET of the
 *     manifest, one GET of the segment) is timed one at a time: p50/p99, with the LISTs and GETs
 *     per lookup the fresh node made.
 *
 *   npm run bench -- lifecycle [--streams 200] [--ingest-mib 64] [--s3 auto|env|ceph|off] [--data-root DIR]
 */
import { readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  benchHeader,
  fileTimestamp,
  installInterruptCleanup,
  makeDataDir,
  pinTo,
  removeDataDir,
  SERVER_CORE,
  trackDataDir,
  trackServerPid,
  untrackServerPid,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { s3ModeFlag, s3Source, startBenchS3, type BenchS3 } from './lib/bench-s3.ts';
import { fetchCairnStats, requestCountsOf } from './lib/cairn-stats.ts';
import { waitUntilSealed } from './lib/ingest.ts';
import { summariseLatencies, type LatencySummary } from './lib/latency-summary.ts';
import { describeMachine } from './lib/machine.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { checkTarget, type BenchOutcome, type TargetCheck } from './lib/targets.ts';
import { waitUntilStill } from './lib/wait-still.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const SEGMENT_BYTES = 8 * MIB;
const PUTS_PER_GIB_TARGET = 260;
/** Every stream sealed and its metadata stored within this, or the run fails. */
const SETTLE_TIMEOUT_MS = 120_000;
/** The PUT count unchanged this long (with every stream sealed): the metadata writes are done. */
const PUTS_QUIET_MS = 3_000;

const USAGE = `usage: npm run bench -- lifecycle [--streams 200] [--ingest-mib 64] [--s3 auto|env|ceph|off] [--data-root DIR]
PUTs per stream for create-append-close lifecycles, PUTs per GiB ingested with 8 MiB segments,
and a fresh node's first-request (lazy lookup) latency with its LISTs and GETs per lookup, on the
filesystem store and on S3 (--s3 auto, the default: S3_ENDPOINT, else a throwaway Ceph RGW when
installed; off: fs only). About a minute per store.
`;

type StoreName = 'fs' | 's3';

interface Node {
  running: RunningServer;
  baseUrl: string;
  statsPort: number;
}

async function launch(dataDir: string, machine: ReturnType<typeof describeMachine>, s3: BenchS3 | undefined): Promise<Node> {
  const port = await freePort();
  const statsPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const running = await startServer({
    command: [
      process.execPath, 'bench/lib/cairn-with-stats.ts', '--stats-port', String(statsPort), '--',
      '--port', String(port), '--data-dir', dataDir, '--durability', 'wal', '--log-level', 'warn',
      '--segment-size-bytes', String(SEGMENT_BYTES),
      ...(s3?.cairnFlags('lifecycle') ?? []),
    ],
    cwd: REPO_ROOT,
    pin: pinTo(machine, SERVER_CORE),
    readyUrl: `${baseUrl}/v1/stream/ready-probe`,
    env: s3?.cairnEnv,
  });
  trackServerPid(running.pid);
  for (let attempt = 0; ; attempt++) {
    try {
      await fetchCairnStats(statsPort);
      break;
    } catch (error) {
      if (attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { running, baseUrl, statsPort };
}

async function stop(node: Node): Promise<void> {
  await node.running.stop();
  untrackServerPid(node.running.pid);
}

async function puts(node: Node): Promise<number> {
  return requestCountsOf((await fetchCairnStats(node.statsPort)).tiering).put;
}

async function call(url: string, init: RequestInit): Promise<Response> {
  const response = await fetch(url, init);
  await response.arrayBuffer();
  if (response.status >= 300) throw new Error(`${init.method ?? 'GET'} ${url}: status ${response.status}`);
  return response;
}

/** Waits until every stream is wholly sealed and the PUT count has been still for PUTS_QUIET_MS. */
async function settle(node: Node, paths: readonly string[]): Promise<void> {
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  for (const path of paths) await waitUntilSealed(`${node.baseUrl}/v1/stream/${path}`, Math.max(0, deadline - performance.now()));
  await waitUntilStill(() => puts(node), { quietMs: PUTS_QUIET_MS, pollMs: 200, deadlineMs: deadline, timeoutMessage: `PUTs still going after ${SETTLE_TIMEOUT_MS} ms` });
}

interface StoreResult {
  store: StoreName;
  streamCount: number;
  lifecyclePuts: number;
  putsPerStream: number;
  ingestMiB: number;
  ingestPuts: number;
  putsPerGiB: number;
  lookup: LatencySummary;
  /** Object-store requests of the fresh node per first read (lookup and the segment's GET). */
  listsPerLookup: number;
  getsPerLookup: number;
  samplesMs: number[];
}

async function runStore(store: StoreName, s3: BenchS3 | undefined, streamCount: number, ingestMiB: number, dataRoot: string, machine: ReturnType<typeof describeMachine>): Promise<StoreResult> {
  const say = (line: string) => process.stdout.write(`${store}: ${line}\n`);
  // 1. Lifecycles.
  const dataDir = makeDataDir(dataRoot, `lifecycle-${store}`);
  let node = await launch(dataDir, machine, s3);
  const paths = Array.from({ length: streamCount }, (_, i) => `life-${i}`);
  const body = Buffer.alloc(1024, 97);
  const putsAtStart = await puts(node);
  for (let i = 0; i < paths.length; i += 16) {
    await Promise.all(
      paths.slice(i, i + 16).map(async (path) => {
        const url = `${node.baseUrl}/v1/stream/${path}`;
        await call(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } });
        for (let k = 0; k < 3; k++) await call(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
        await call(url, { method: 'POST', headers: { 'stream-closed': 'true' } });
      }),
    );
  }
  await settle(node, paths);
  const lifecyclePuts = (await puts(node)) - putsAtStart;
  const putsPerStream = lifecyclePuts / streamCount;
  say(`lifecycles: ${streamCount} streams (create, 3 × 1 KiB appends, close): ${lifecyclePuts} PUTs, ${putsPerStream.toFixed(2)} per stream`);

  // 2. Ingest.
  const ingestPath = 'ingest';
  const putsBeforeIngest = await puts(node);
  await call(`${node.baseUrl}/v1/stream/${ingestPath}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } });
  const chunk = Buffer.alloc(MIB, 98);
  for (let i = 0; i < ingestMiB; i++) await call(`${node.baseUrl}/v1/stream/${ingestPath}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: chunk });
  await call(`${node.baseUrl}/v1/stream/${ingestPath}`, { method: 'POST', headers: { 'stream-closed': 'true' } });
  await settle(node, [ingestPath]);
  const ingestPuts = (await puts(node)) - putsBeforeIngest;
  const putsPerGiB = ingestPuts / ((ingestMiB * MIB) / GIB);
  say(`ingest: ${ingestMiB} MiB in 1 MiB appends, 8 MiB segments: ${ingestPuts} PUTs, ${putsPerGiB.toFixed(0)} per GiB (target ≤ ${PUTS_PER_GIB_TARGET})`);

  // 3. Disk loss (everything but the fs store's objects), then a fresh node's first request per stream.
  await stop(node);
  for (const entry of readdirSync(dataDir)) if (entry !== 'objects') rmSync(join(dataDir, entry), { recursive: true, force: true });
  node = await launch(dataDir, machine, s3);
  const before = requestCountsOf((await fetchCairnStats(node.statsPort)).tiering);
  const samplesMs: number[] = [];
  for (const path of paths) {
    const startedMs = performance.now();
    const response = await call(`${node.baseUrl}/v1/stream/${path}?offset=-1`, { method: 'GET' });
    samplesMs.push(performance.now() - startedMs);
    if (response.headers.get('stream-closed') !== 'true') throw new Error(`${path}: not closed on the fresh node`);
  }
  const after = requestCountsOf((await fetchCairnStats(node.statsPort)).tiering);
  const listsPerLookup = (after.list - before.list) / paths.length;
  const getsPerLookup = (after.get - before.get) / paths.length;
  const lookup = summariseLatencies(samplesMs);
  say(
    `lazy lookup: first GET ?offset=-1 of ${lookup.count} sealed streams on a fresh node: p50 ${lookup.p50Ms.toFixed(2)} ms, p99 ${lookup.p99Ms.toFixed(2)} ms, max ${lookup.maxMs.toFixed(2)} ms; ` +
      `${listsPerLookup.toFixed(2)} LIST and ${getsPerLookup.toFixed(2)} GET per lookup`,
  );
  await stop(node);
  removeDataDir(dataDir);
  return { store, streamCount, lifecyclePuts, putsPerStream, ingestMiB, ingestPuts, putsPerGiB, lookup, listsPerLookup, getsPerLookup, samplesMs };
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      streams: { type: 'string', default: '200' },
      'ingest-mib': { type: 'string', default: '64' },
      s3: { type: 'string', default: 'auto' },
      'data-root': { type: 'string', default: os.tmpdir() },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const streamCount = wholeNumberFlag('streams', values.streams, 1, 100_000);
  const ingestMiB = wholeNumberFlag('ingest-mib', values['ingest-mib'], 8, 65_536);
  const s3Mode = s3ModeFlag(values.s3);
  const s3From = s3Source(s3Mode);
  installInterruptCleanup();
  const machine = describeMachine(values['data-root']);
  process.stdout.write(
    `${[
      ...benchHeader('lifecycle benchmark', machine),
      `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); 8 MiB segments, default --metadata-flush-ms; S3: ${s3From.kind === 'off' ? `off (${s3From.reason})` : s3From.kind}`,
      '',
    ].join('\n')}\n`,
  );

  const results: StoreResult[] = [await runStore('fs', undefined, streamCount, ingestMiB, values['data-root'], machine)];
  let s3Failure: string | undefined;
  if (s3From.kind !== 'off') {
    let s3: BenchS3 | undefined;
    try {
      s3 = await startBenchS3(s3From);
      if (s3.tempDir !== undefined) trackDataDir(s3.tempDir);
      process.stdout.write(`S3: ${s3.description}${s3.startMs > 0 ? `, started in ${(s3.startMs / 1000).toFixed(1)} s` : ''}\n`);
      results.push(await runStore('s3', s3, streamCount, ingestMiB, values['data-root'], machine));
    } catch (error) {
      s3Failure = (error as Error).message;
      process.stdout.write(`S3 FAILED: ${s3Failure.split('\n')[0]}\n`);
    } finally {
      await s3?.stop();
    }
  }

  process.stdout.write(`\nlazy lookup (fresh node, first GET ?offset=-1 of a sealed stream):\n`);
  for (const result of results) {
    process.stdout.write(
      `  ${result.store.padEnd(3)} p50 ${result.lookup.p50Ms.toFixed(2)} ms  p99 ${result.lookup.p99Ms.toFixed(2)} ms  ` +
        `${result.listsPerLookup.toFixed(2)} LIST + ${result.getsPerLookup.toFixed(2)} GET per lookup  (${result.lookup.count} streams)\n`,
    );
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `lifecycle-${fileTimestamp()}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, results, s3Failure }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  const targets: TargetCheck[] = results.map((result) =>
    checkTarget('13. cost, 8 MiB segments', 'PUTs per GiB ingested', result.putsPerGiB, 'at-most', PUTS_PER_GIB_TARGET, `${result.store} store, lifecycle bench`),
  );
  if (s3Failure !== undefined) throw new Error(`S3 run failed: ${s3Failure}`);
  return { resultsPath, targets };
}
