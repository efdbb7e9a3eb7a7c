/**
 * `cairn recover` time (issue 13, "Speed and cost"): `--streams` streams are created (one 100-byte
 * message each) and sealed, the server is stopped and its data directory deleted but for the fs
 * store's objects (a lost disk), then `cairn recover` rebuilds the local state from the object
 * store; its wall time, rate and object-store requests (LIST pages, GETs) are reported. A fresh
 * node then starts on the recovered directory: its start time, and a sample of streams read with
 * no lazy lookup (no LIST).
 *
 *   npm run bench -- recover [--streams 100000] [--s3 off|auto|env|ceph] [--data-root DIR] [--cpu-prof DIR]
 *
 * `--cpu-prof DIR` writes a .cpuprofile of the `cairn recover` process (read it with
 * `npm run bench -- profile-top FILE`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
import { describeMachine } from './lib/machine.ts';
import { freePort, startServer, type RunningServer } from './lib/server-process.ts';
import type { BenchOutcome } from './lib/targets.ts';

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
/** Creates in flight at once. */
const CREATE_CONCURRENCY = 64;
/** Every stream sealed within this, or the run fails. */
const SEAL_TIMEOUT_MS = 30 * 60_000;
/** The PUT count unchanged this long (with every stream sealed): the metadata writes are done. */
const PUTS_QUIET_MS = 3_000;
/** Streams read on the recovered node to check it needs no lazy lookup. */
const SAMPLE_READS = 200;

const USAGE = `usage: npm run bench -- recover [--streams 100000] [--s3 off|auto|env|ceph] [--data-root DIR] [--cpu-prof DIR]
Creates and seals --streams streams, deletes the data directory but for the objects, and times
\`cairn recover\` (with its LIST and GET count). --s3 off (default) uses the fs store; S3 runs
are slower to set up: use fewer streams (e.g. --streams 5000). Several minutes at 100,000.
`;

interface Node {
  running: RunningServer;
  baseUrl: string;
  statsPort: number;
}

async function launch(dataDir: string, machine: ReturnType<typeof describeMachine>, storeFlags: string[], env?: Record<string, string>): Promise<Node> {
  const port = await freePort();
  const statsPort = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const running = await startServer({
    command: [
      process.execPath, 'bench/lib/cairn-with-stats.ts', '--stats-port', String(statsPort), '--',
      '--port', String(port), '--data-dir', dataDir, '--durability', 'wal', '--log-level', 'warn',
      // Seal each small stream soon after its create, and store its metadata with that seal.
      '--seal-idle-ms', '100', '--metadata-flush-ms', '100',
      ...storeFlags,
    ],
    cwd: REPO_ROOT,
    pin: pinTo(machine, SERVER_CORE),
    readyUrl: `${baseUrl}/v1/stream/ready-probe`,
    env,
    // A start replays every recovered stream's load record.
    readyTimeoutMs: 600_000,
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

/** Waits until `count` segments are written and the PUT count has been still for PUTS_QUIET_MS. */
async function settle(node: Node, count: number): Promise<void> {
  const deadline = performance.now() + SEAL_TIMEOUT_MS;
  let last = -1;
  let stillSinceMs = performance.now();
  for (;;) {
    const stats = (await fetchCairnStats(node.statsPort)).tiering;
    const puts = requestCountsOf(stats).put;
    if (puts !== last) {
      last = puts;
      stillSinceMs = performance.now();
    } else if (stats.segmentsWritten >= count && performance.now() - stillSinceMs >= PUTS_QUIET_MS) {
      return;
    }
    if (performance.now() > deadline) throw new Error(`${stats.segmentsWritten} of ${count} streams sealed after ${SEAL_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

interface RecoverRun {
  wallMs: number;
  incarnations: number;
  loaded: number;
  listRequests: number;
  getRequests: number;
  output: string;
}

/** Runs `cairn recover` as an operator would and times it (process start included). */
async function runRecover(args: string[], env: Record<string, string> | undefined, cpuProfDir: string | undefined): Promise<RecoverRun> {
  const nodeFlags = cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir];
  const startedMs = performance.now();
  const child = spawn(process.execPath, [...nodeFlags, 'src/cli/main.ts', 'recover', '--no-progress', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env === undefined ? process.env : { ...process.env, ...env },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const wallMs = performance.now() - startedMs;
  if (code !== 0) throw new Error(`cairn recover exited with ${code}:\n${output.slice(-4000)}`);
  const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? Number.NaN);
  return {
    wallMs,
    incarnations: number(/^incarnations: (\d+)$/m),
    loaded: number(/^loaded: (\d+)$/m),
    listRequests: number(/^requests: (\d+) LIST/m),
    getRequests: number(/^requests: \d+ LIST, (\d+) GET/m),
    output,
  };
}

export async function main(args: string[]): Promise<BenchOutcome | undefined> {
  const { values } = parseArgs({
    args,
    options: {
      streams: { type: 'string', default: '100000' },
      s3: { type: 'string', default: 'off' },
      'data-root': { type: 'string', default: os.tmpdir() },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(USAGE);
    return undefined;
  }
  const streamCount = wholeNumberFlag('streams', values.streams, 1, 10_000_000);
  const s3Mode = s3ModeFlag(values.s3);
  const s3From = s3Source(s3Mode);
  if (values.s3 !== 'off' && s3From.kind === 'off') throw new Error(`no S3 store: ${s3From.reason}`);
  installInterruptCleanup();
  const machine = describeMachine(values['data-root']);
  let s3: BenchS3 | undefined;
  if (s3From.kind !== 'off') {
    s3 = await startBenchS3(s3From);
    if (s3.tempDir !== undefined) trackDataDir(s3.tempDir);
  }
  const storeName = s3 === undefined ? 'fs' : 's3';
  const storeFlags = s3?.cairnFlags('recover') ?? [];
  process.stdout.write(`${[...benchHeader('recover benchmark', machine), `data dirs: ${machine.dataRoot} (${machine.dataRootFilesystem}); object store: ${s3?.description ?? 'fs'}`, ''].join('\n')}\n`);

  const dataDir = makeDataDir(values['data-root'], 'recover');
  try {
    let node = await launch(dataDir, machine, storeFlags, s3?.cairnEnv);
    const body = Buffer.alloc(100, 97);
    const createStartedMs = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(CREATE_CONCURRENCY, streamCount) }, async () => {
        for (let i = next++; i < streamCount; i = next++) {
          const response = await fetch(`${node.baseUrl}/v1/stream/rec-${i}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
          await response.arrayBuffer();
          if (response.status !== 201) throw new Error(`PUT rec-${i}: status ${response.status}`);
        }
      }),
    );
    const createS = (performance.now() - createStartedMs) / 1000;
    process.stdout.write(`created ${streamCount} streams in ${createS.toFixed(1)} s (${(streamCount / createS).toFixed(0)}/s)\n`);
    const sealStartedMs = performance.now();
    await settle(node, streamCount);
    const sealS = (performance.now() - sealStartedMs) / 1000;
    process.stdout.write(`every stream sealed and its metadata stored ${sealS.toFixed(1)} s later\n`);
    await stop(node);

    // A lost disk: everything but the fs store's objects.
    for (const entry of readdirSync(dataDir)) if (entry !== 'objects') rmSync(join(dataDir, entry), { recursive: true, force: true });
    const cpuProfDir = values['cpu-prof'];
    if (cpuProfDir !== undefined) mkdirSync(cpuProfDir, { recursive: true });
    const recover = await runRecover(['--data-dir', dataDir, '--durability', 'wal', '--log-level', 'warn', ...storeFlags], s3?.cairnEnv, cpuProfDir);
    if (recover.loaded !== streamCount) throw new Error(`recover loaded ${recover.loaded} of ${streamCount} streams:\n${recover.output}`);
    const recoverRate = streamCount / (recover.wallMs / 1000);
    process.stdout.write(
      `cairn recover (${storeName}): ${streamCount} streams in ${(recover.wallMs / 1000).toFixed(1)} s (${recoverRate.toFixed(0)} streams/s), ` +
        `${recover.listRequests} LIST, ${recover.getRequests} GET\n`,
    );
    if (cpuProfDir !== undefined) process.stdout.write(`cpu profile of cairn recover in ${cpuProfDir}\n`);

    // The recovered node serves from its WAL: no lazy lookup.
    const startStartedMs = performance.now();
    node = await launch(dataDir, machine, storeFlags, s3?.cairnEnv);
    const restartS = (performance.now() - startStartedMs) / 1000;
    const listsBefore = requestCountsOf((await fetchCairnStats(node.statsPort)).tiering).list;
    for (let k = 0; k < Math.min(SAMPLE_READS, streamCount); k++) {
      const i = Math.floor((k * streamCount) / Math.min(SAMPLE_READS, streamCount));
      const response = await fetch(`${node.baseUrl}/v1/stream/rec-${i}?offset=-1`);
      const bytes = Buffer.from(await response.arrayBuffer());
      if (response.status !== 200 || !bytes.equals(body)) throw new Error(`rec-${i} on the recovered node: status ${response.status}, ${bytes.length} bytes`);
    }
    const sampleLists = requestCountsOf((await fetchCairnStats(node.statsPort)).tiering).list - listsBefore;
    await stop(node);
    process.stdout.write(`recovered node started in ${restartS.toFixed(1)} s; ${Math.min(SAMPLE_READS, streamCount)} streams read with ${sampleLists} LISTs (0 = no lazy lookup)\n`);

    mkdirSync(RESULTS_DIR, { recursive: true });
    const resultsPath = join(RESULTS_DIR, `recover-${fileTimestamp()}.json`);
    const { output: _output, ...recoverResult } = recover;
    writeFileSync(resultsPath, `${JSON.stringify({ machine, store: s3?.description ?? 'fs', streamCount, createS, sealS, recover: recoverResult, recoverRate, restartS, sampleLists }, null, 2)}\n`);
    process.stdout.write(`raw results: ${resultsPath}\n`);
    return { resultsPath, targets: [] };
  } finally {
    removeDataDir(dataDir);
    await s3?.stop();
  }
}
