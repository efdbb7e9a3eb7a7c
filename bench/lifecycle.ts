/**
 * Object-store cost of stream lifecycles and the lazy lookup of a fresh node (issue 13, "Speed and
 * cost"), Cairn only, filesystem store:
 *
 *  1. lifecycles: `--streams` streams each created, appended to three times (1 KiB each) and
 *     closed; once every stream is sealed and its stored metadata has caught up, PUTs per stream;
 *  2. ingest: one stream of `--ingest-mib` MiB in 1 MiB appends with 8 MiB segments; PUTs per GiB;
 *  3. lazy lookup: the lifecycle node is stopped, its data directory deleted but for the objects, a
 *     fresh node started; the first `GET ?offset=-1` of every stream (one LIST, one GET of the
 *     manifest, one GET of the segment) is timed one at a time: p50/p99.
 *
 *   npm run bench -- lifecycle [--streams 200] [--ingest-mib 64] [--data-root DIR]
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
  trackServerPid,
  untrackServerPid,
  wholeNumberFlag,
} from './lib/bench-server.ts';
import { fetchCairnStats, requestCountsOf } from './lib/cairn-stats.ts';
import { summariseLatencies } from './lib/latency-summary.ts';
import { describeMachine } from './lib/machine.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import { checkTarget, type BenchOutcome } from './lib/targets.ts';

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

const USAGE = `usage: npm run bench -- lifecycle [--streams 200] [--ingest-mib 64] [--data-root DIR]
PUTs per stream for create-append-close lifecycles, PUTs per GiB ingested with 8 MiB segments,
and a fresh node's first-request (lazy lookup) latency, on the filesystem store. About a minute.
`;

interface Node {
  running: RunningServer;
  baseUrl: string;
  statsPort: number;
}

async function launch(dataDir: string, machine: ReturnType<typeof describeMachine>): Promise<Node> {
  const port = await freePort();
  const statsPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const running = await startServer({
    command: [
      process.execPath, 'bench/lib/cairn-with-stats.ts', '--stats-port', String(statsPort), '--',
      '--port', String(port), '--data-dir', dataDir, '--durability', 'wal', '--log-level', 'warn',
      '--segment-size-bytes', String(SEGMENT_BYTES),
    ],
    cwd: REPO_ROOT,
    pin: pinTo(machine, SERVER_CORE),
    readyUrl: `${baseUrl}/v1/stream/ready-probe`,
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
  for (const path of paths) {
    for (;;) {
      const head = await fetch(`${node.baseUrl}/v1/stream/${path}`, { method: 'HEAD' });
      if (head.headers.get('cairn-sealed-offset') === head.headers.get('stream-next-offset')) break;
      if (performance.now() > deadline) throw new Error(`${path} not sealed within ${SETTLE_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  let last = await puts(node);
  let stillSinceMs = performance.now();
  while (performance.now() - stillSinceMs < PUTS_QUIET_MS) {
    if (performance.now() > deadline) throw new Error(`PUTs still going after ${SETTLE_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const now = await puts(node);
    if (now !== last) {
      last = now;
      stillSinceMs = performance.now();
    }
  }
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const { values } = parseArgs({
    args,
    options: { streams: { type: 'string', default: '200' }, 'ingest-mib': { type: 'string', default: '64' }, 'data-root': { type: 'string', default: os.tmpdir() }, help: { type: 'boolean' } },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const streamCount = wholeNumberFlag('streams', values.streams, 1, 100_000);
  const ingestMiB = wholeNumberFlag('ingest-mib', values['ingest-mib'], 8, 65_536);
  installInterruptCleanup();
  const machine = describeMachine(values['data-root']);
  process.stdout.write(`${[...benchHeader('lifecycle benchmark', machine), `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); fs object store, 8 MiB segments, default --metadata-flush-ms`, ''].join('\n')}\n`);

  // 1. Lifecycles.
  const dataDir = makeDataDir(values['data-root'], 'lifecycle');
  let node = await launch(dataDir, machine);
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
  process.stdout.write(`lifecycles: ${streamCount} streams (create, 3 × 1 KiB appends, close): ${lifecyclePuts} PUTs, ${putsPerStream.toFixed(2)} per stream\n`);

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
  process.stdout.write(`ingest: ${ingestMiB} MiB in 1 MiB appends, 8 MiB segments: ${ingestPuts} PUTs, ${putsPerGiB.toFixed(0)} per GiB (target ≤ ${PUTS_PER_GIB_TARGET})\n`);

  // 3. Disk loss, then a fresh node's first request per stream.
  await stop(node);
  for (const entry of readdirSync(dataDir)) if (entry !== 'objects') rmSync(join(dataDir, entry), { recursive: true, force: true });
  node = await launch(dataDir, machine);
  const samplesMs: number[] = [];
  for (const path of paths) {
    const startedMs = performance.now();
    const response = await call(`${node.baseUrl}/v1/stream/${path}?offset=-1`, { method: 'GET' });
    samplesMs.push(performance.now() - startedMs);
    if (response.headers.get('stream-closed') !== 'true') throw new Error(`${path}: not closed on the fresh node`);
  }
  const lookup = summariseLatencies(samplesMs);
  process.stdout.write(`lazy lookup: first GET ?offset=-1 of ${lookup.count} sealed streams on a fresh node: p50 ${lookup.p50Ms.toFixed(2)} ms, p99 ${lookup.p99Ms.toFixed(2)} ms, max ${lookup.maxMs.toFixed(2)} ms\n`);
  await stop(node);
  removeDataDir(dataDir);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `lifecycle-${fileTimestamp()}.json`);
  writeFileSync(resultsPath, `${JSON.stringify({ machine, streamCount, lifecyclePuts, putsPerStream, ingestMiB, ingestPuts, putsPerGiB, lookup, samplesMs }, null, 2)}\n`);
  process.stdout.write(`raw results: ${resultsPath}\n`);
  return {
    resultsPath,
    targets: [checkTarget('13. cost, 8 MiB segments', 'PUTs per GiB ingested', putsPerGiB, 'at-most', PUTS_PER_GIB_TARGET, 'fs store, lifecycle bench')],
  };
}
