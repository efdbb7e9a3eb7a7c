/**
 * Crash safety of diskless durability (`--durability object-store`) on a real S3-compatible
 * server: the SIGKILL/restart cycles of crash.test.ts, but the data directory is DELETED before
 * every restart, so everything a restart recovers comes from the object store (the checkpoint
 * and WAL objects of the chain, manifests and segments). After every restart: every acknowledged
 * append present once, in order, byte-exact; producers resume with their next seq; the closed
 * stream stays closed; created, forked and deleted streams hold exactly what was acknowledged.
 * At the end `cairn verify` finds the store consistent.
 *
 * Replay a failure with the printed seed: CRASH_SEED=<seed> [CRASH_CYCLES=<n>] npx vitest run
 * test/fault/crash-diskless.test.ts (the data and the kill times are seeded; the interleaving is not).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { findS3ServerSource, s3ServeSettings, startS3Server, warnS3Unavailable, type S3TestServer } from '../support/s3-server.ts';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger, runCrashCycles } from './support/crash-cycles.ts';
import { ByteStream, deriveSeed, FramedStream, JsonStream, LifecycleStreams, Rng, type Stats, type Subject } from './support/crash-model.ts';

const SEED = envInteger('CRASH_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const CYCLES = envInteger('CRASH_CYCLES', 12, 1, 10_000);
/** Load phase before the kill, in milliseconds: longer than crash.test.ts, every ack waits for a PUT. */
const LOAD_MS_MIN = 400;
const LOAD_MS_MAX = 1_500;
const SEGMENT_BYTES = 64 * 1024;
const SEAL_IDLE_MS = 200;
/** Small, so checkpoint objects are written (and sometimes cut by a kill) during the run. */
const CHECKPOINT_WAL_BYTES = 128 * 1024;
const MAIN = path.resolve(import.meta.dirname, '../../src/cli/main.ts');

const source = findS3ServerSource();
let server: ChildServer | undefined;
let s3: S3TestServer | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop();
  await s3?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
}, 60_000);

function settingsToArgs(settings: Record<string, string | boolean | undefined>): string[] {
  const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return Object.entries(settings).flatMap(([key, value]) => (value === undefined || value === false ? [] : value === true ? [flag(key)] : [flag(key), value]));
}

if (source.kind === 'unavailable') {
  warnS3Unavailable(source.reason);
  test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
    throw new Error(`no S3-compatible server: ${source.reason}`);
  });
  test.skip(`diskless crash test (skipped: ${source.reason})`, () => {});
} else {
  test(
    `diskless: acknowledged writes survive SIGKILL and a deleted data directory (seed ${SEED}, ${CYCLES} cycles)`,
    { timeout: 600_000 },
    async () => {
      console.log(`diskless crash test: CRASH_SEED=${SEED} CRASH_CYCLES=${CYCLES}`);
      const startedMs = performance.now();
      s3 = await startS3Server(source);
      const storeArgs = settingsToArgs(s3ServeSettings(s3));
      const driver = new Rng(SEED);
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-crash-diskless-'));
      server = new ChildServer({
        port: await freePort(),
        dataDir,
        args: [
          ...storeArgs,
          '--durability', 'object-store',
          '--checkpoint-wal-bytes', String(CHECKPOINT_WAL_BYTES),
          '--segment-size-bytes', String(SEGMENT_BYTES),
          '--seal-idle-ms', String(SEAL_IDLE_MS),
        ],
      });
      const closeCycle = CYCLES <= 2 ? 0 : driver.int(1, CYCLES - 2);
      const closer = new ByteStream({
        name: 'closer',
        seed: deriveSeed(SEED, 100),
        producerId: 'closer-producer',
        closePlan: { cycle: closeCycle, afterMs: driver.int(0, 250), killInFlight: driver.chance(0.5) },
      });
      const lifecycle = new LifecycleStreams({ name: 'life', seed: deriveSeed(SEED, 105) });
      const subjects: Subject[] = [
        new ByteStream({ name: 'bin-plain', seed: deriveSeed(SEED, 101) }),
        new ByteStream({ name: 'bin-producer', seed: deriveSeed(SEED, 102), producerId: 'bin-producer-0' }),
        new FramedStream({ name: 'bin-multi', seed: deriveSeed(SEED, 103), writers: 3 }),
        new JsonStream({ name: 'json', seed: deriveSeed(SEED, 104), producers: 2, plainWriters: 1 }),
        closer,
        lifecycle,
      ];
      const stats: Stats = { acked: 0, inFlightAtKill: 0, plainPresent: 0, plainLost: 0, retried200: 0, retried204: 0, closedProbes: 0 };
      let deletedDirs = 0;
      await runCrashCycles({
        seed: SEED,
        cycles: CYCLES,
        driver,
        server,
        subjects,
        closer,
        stats,
        loadMsMin: LOAD_MS_MIN,
        loadMsMax: LOAD_MS_MAX,
        // The machine is gone: nothing of the last process's disk is left.
        afterKill: async () => {
          await rm(dataDir!, { recursive: true, force: true });
          await mkdir(dataDir!);
          deletedDirs++;
          return 'data directory deleted';
        },
      });
      await server.stop();

      const verify = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [MAIN, 'verify', '--data-dir', dataDir!, '--no-progress', ...storeArgs], (error, stdout, stderr) => {
          resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
        });
      });
      const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
      console.log(
        `diskless crash test (seed ${SEED}): ${CYCLES} kills, ${deletedDirs} data directories deleted, in ${seconds} s; ` +
          `${stats.acked} appends acked; ${stats.inFlightAtKill} in flight at kills; plain in-flight present/lost ${stats.plainPresent}/${stats.plainLost}; ` +
          `producer retries 200/204 ${stats.retried200}/${stats.retried204}; closer closed in cycle ${closer.closedInCycle}; ` +
          `lifecycle creates/appends/forks/deletes ${lifecycle.counts.create}/${lifecycle.counts.append}/${lifecycle.counts.fork}/${lifecycle.counts.delete}`,
      );
      expect(verify.stdout + verify.stderr, 'cairn verify').toContain('consistent');
      expect(verify.code).toBe(0);
      expect(deletedDirs).toBe(CYCLES);
      expect(stats.acked, 'acknowledged appends').toBeGreaterThan(50);
      expect(stats.inFlightAtKill, 'requests in flight at the kills').toBeGreaterThan(0);
      expect(closer.closed, 'the closer stream was closed').toBe(true);
      for (const subject of subjects) expect(subject.ackedCount, `acked appends on ${subject.name}`).toBeGreaterThan(0);
    },
  );
}
