/**
 * Crash safety under load (the issue 5 kill -9 soak): a child `cairn serve --durability wal` is
 * written to concurrently (binary and JSON streams; plain appends and idempotent producers; one
 * stream closed mid-run; streams created, forked and deleted; sealing in progress, with 256 KiB
 * segments sealed after 200 ms idle), killed with SIGKILL at a random moment, and restarted on the
 * same data directory and port, CRASH_CYCLES times (default 50). After every restart:
 *   - every acknowledged append is present, in order, byte-exact;
 *   - a request in flight at the kill is present whole and once, or absent; a plain append is
 *     never retried, an idempotent producer retries it with the same (id, epoch, seq) and gets
 *     204 if it survived or 200 if it did not, after which it is present exactly once;
 *   - producers continue with the next seq and never see 409 or 403;
 *   - the closed stream stays closed (HEAD/GET Stream-Closed, 409 on append, idempotent close);
 *   - every created or forked stream holds exactly its acknowledged bytes (a fork: its source's
 *     bytes up to the fork offset, then its own), deleted streams stay 404/410, and a create, fork
 *     or delete in flight at the kill is wholly done or not at all.
 * A last restart verifies everything once more. The cycle loop is support/crash-cycles.ts;
 * crash-seal.test.ts runs the same cycles with sealing forced (segments, manifests, orphans).
 *
 * Replay a failure with the printed seed: CRASH_SEED=<seed> [CRASH_CYCLES=<n>] npx vitest run
 * test/fault/crash.test.ts (the data and the kill times are seeded; the interleaving is not).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger, runCrashCycles } from './support/crash-cycles.ts';
import { ByteStream, deriveSeed, FramedStream, JsonStream, LifecycleStreams, Rng, type Stats, type Subject } from './support/crash-model.ts';

const SEED = envInteger('CRASH_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const CYCLES = envInteger('CRASH_CYCLES', 50, 1, 10_000);
/** Load phase before the kill, in milliseconds (short: 50 cycles must fit CI's budget). */
const LOAD_MS_MIN = 200;
const LOAD_MS_MAX = 600;
/** Seals run during the load: small segments, sealed soon after a stream goes idle. */
const SEGMENT_BYTES = 256 * 1024;
const SEAL_IDLE_MS = 200;
/** Small, so that checkpoints are written (and sometimes interrupted) during the run. */
const CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024;

let server: ChildServer | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

test(
  `acknowledged writes survive SIGKILL and restart under load (seed ${SEED}, ${CYCLES} cycles)`,
  { timeout: 600_000 },
  async () => {
    console.log(`crash test: CRASH_SEED=${SEED} CRASH_CYCLES=${CYCLES}`);
    const startedMs = performance.now();
    const driver = new Rng(SEED);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-crash-'));
    server = new ChildServer({
      port: await freePort(),
      dataDir,
      args: ['--checkpoint-wal-bytes', String(CHECKPOINT_WAL_BYTES), '--segment-size-bytes', String(SEGMENT_BYTES), '--seal-idle-ms', String(SEAL_IDLE_MS)],
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
    await runCrashCycles({ seed: SEED, cycles: CYCLES, driver, server, subjects, closer, stats, loadMsMin: LOAD_MS_MIN, loadMsMax: LOAD_MS_MAX });
    await server.stop();

    const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
    const verifiedBytes = subjects.reduce((sum, s) => sum + s.stored().length, 0) + lifecycle.liveBytes;
    const sealedBytes = subjects.reduce((sum, s) => sum + (s.observed?.sealedAfter ?? 0), 0);
    const perStream = subjects.map((s) => `${s.name}=${s.ackedCount}`).join(' ');
    console.log(
      `crash test (seed ${SEED}): ${CYCLES} kills in ${seconds} s; ${stats.acked} appends acked (${perStream}); ` +
        `${stats.inFlightAtKill} in flight at kills; plain in-flight present/lost ${stats.plainPresent}/${stats.plainLost}; ` +
        `producer retries 200/204 ${stats.retried200}/${stats.retried204}; closer closed in cycle ${closer.closedInCycle} ` +
        `(planned ${closeCycle}); ${stats.closedProbes} closed-stream probes; lifecycle creates/appends/forks/deletes ` +
        `${lifecycle.counts.create}/${lifecycle.counts.append}/${lifecycle.counts.fork}/${lifecycle.counts.delete} ` +
        `(${lifecycle.liveCount} streams live at the end); ${verifiedBytes} B verified byte-exact after the last restart, ` +
        `${sealedBytes} B of the five main streams sealed`,
    );

    // The run must have exercised what it claims to.
    expect(stats.acked, 'acknowledged appends').toBeGreaterThan(100);
    expect(stats.inFlightAtKill, 'requests in flight at the kills').toBeGreaterThan(0);
    expect(closer.closed, 'the closer stream was closed').toBe(true);
    for (const subject of subjects) expect(subject.ackedCount, `acked appends on ${subject.name}`).toBeGreaterThan(0);
    expect(lifecycle.counts.fork, 'forks acknowledged').toBeGreaterThan(0);
    expect(lifecycle.counts.delete, 'deletes acknowledged').toBeGreaterThan(0);
  },
);
