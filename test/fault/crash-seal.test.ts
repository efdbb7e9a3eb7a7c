/**
 * Crash safety of tiering: the SIGKILL/restart cycles of crash.test.ts with sealing forced, so
 * that every kill lands among segment uploads, manifest writes and seal records. The child runs
 * with the filesystem object store, tiny segments (a random `--segment-size-bytes` of 1–4 KiB per
 * server life, so cuts move between restarts), `--seal-idle-ms 0` (seal as soon as durable) and
 * `--chunk-bytes-max 1024` (catch-up reads cross read units and segments). Besides the checks of
 * crash.test.ts (every acknowledged append present byte-exact, in order, exactly once; producer
 * state intact; the closed stream stays closed), now read across segments and hot tail:
 *   - after every restart (cycle ≥ 1) the full reads start below `Cairn-Sealed-Offset`, so they
 *     are served partly from segments; the newest manifest of each stream lists contiguous,
 *     non-overlapping segments from 0, each stored with exactly the acknowledged bytes of its
 *     range (JSON: whole messages per segment and read unit), read units at fixed steps;
 *   - after every kill (server down): the same structure, the newest manifest covers at least the
 *     sealed offset seen before the load, listed segments inside the acknowledged bytes match;
 *     segment objects no manifest lists (an upload whose manifest was not written) are counted;
 *   - after the last restart: a short load without a kill (so every open stream seals, and its
 *     first seal probes and collects orphans), then every stream becomes wholly sealed, a full
 *     read is served from segments only, every `*.seg` object is listed in its stream's newest
 *     manifest within a bounded wait, and that manifest covers exactly the acknowledged bytes.
 *
 * Replay a failure with the printed seed: CRASH_SEED=<seed> [CRASH_CYCLES=<n>] npx vitest run
 * test/fault/crash-seal.test.ts (data, kill times and segment sizes are seeded; the interleaving
 * is not).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { parseOffsetToken } from '../../src/protocol/offset.ts';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger, loadWithoutKill, runCrashCycles } from './support/crash-cycles.ts';
import { ByteStream, CheckFailure, deriveSeed, FramedStream, JsonStream, Rng, type Run, type Stats, type Subject } from './support/crash-model.ts';
import { header, type HttpClient } from './support/http-client.ts';
import { auditObjects, checkSegmentBytes, type Audit } from './support/object-audit.ts';

const SEED = envInteger('CRASH_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const CYCLES = envInteger('CRASH_CYCLES', 16, 1, 10_000);
/** Load phase before the kill, in milliseconds. */
const LOAD_MS_MIN = 200;
const LOAD_MS_MAX = 700;
/** The last load, ended without a kill, in milliseconds. */
const FINAL_LOAD_MS = 200;
/** Segment size per server life: tiny, so seals never stop; drawn per start so cut points move. */
const SEGMENT_BYTES_MIN = 1024;
const SEGMENT_BYTES_MAX = 4096;
/** Read units of 1 KiB: a catch-up read crosses units inside segments and segment ends. */
const CHUNK_BYTES_MAX = 1024;
/**
 * Largest random binary append. Small, because sealed data is read back in 1 KiB responses on
 * every restart: the total stream size, not the append rate, sets the test's duration.
 */
const APPEND_BYTES_MAX = 1024;
/** Longest padding of a JSON message (up to 4 messages an append), in characters. */
const JSON_PAD_MAX = 40;
const CHECKPOINT_WAL_BYTES = 1024 * 1024;
/** After the last load: every stream wholly sealed within this, and every orphan collected. */
const SEAL_WAIT_MS = 20_000;
const ORPHAN_WAIT_MS = 10_000;

let server: ChildServer | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

function ms(value: number): string {
  return `${(value / 1000).toFixed(1)} s`;
}

/** `Cairn-Sealed-Offset` and `Stream-Next-Offset` of a HEAD, as positions. */
async function sealState(client: HttpClient, subject: Subject): Promise<{ sealed: number; tail: number }> {
  const response = await client.request('HEAD', `/v1/stream/${subject.streamPath}`);
  if (response.status !== 200) throw new CheckFailure(`HEAD ${subject.name}: status ${response.status}`);
  const position = (name: string) => {
    const token = parseOffsetToken(header(response, name));
    if (token === undefined) throw new CheckFailure(`HEAD ${subject.name}: ${name} '${header(response, name)}' is not an offset token`);
    return token.position;
  };
  return { sealed: position('cairn-sealed-offset'), tail: position('stream-next-offset') };
}

/** Every subject's newest stored manifest covers at least `sealed(subject)` bytes. */
function checkManifestsCoverSealed(audit: Audit, subjects: Subject[], sealed: (subject: Subject) => number, when: string): void {
  for (const subject of subjects) {
    const stream = audit.streams.find((s) => s.subject === subject);
    const covered = stream?.manifest?.segments.at(-1)?.end ?? 0;
    if (covered < sealed(subject)) {
      throw new CheckFailure(
        `${when}: ${subject.name}: the newest stored manifest ${stream?.manifest === undefined ? 'is absent' : `covers [0, ${covered})`}, ` +
          `but HEAD said ${sealed(subject)} B were sealed`,
      );
    }
  }
}

test(
  `acknowledged writes survive SIGKILL during seals, across segments and hot tail (seed ${SEED}, ${CYCLES} cycles)`,
  { timeout: 300_000 },
  async () => {
    console.log(`crash-seal test: CRASH_SEED=${SEED} CRASH_CYCLES=${CYCLES}`);
    const startedMs = performance.now();
    const driver = new Rng(SEED);
    const sizes = new Rng(deriveSeed(SEED, 200));
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-crash-seal-'));
    const objectsDir = path.join(dataDir, 'objects');
    // The sealer logs (info) each adoption of a manifest whose seal records a kill lost, and each
    // deletion of orphan segments; errors (a fenced stream) and a discarded manifest fail the test.
    const logged = { adoptions: 0, adoptedSegments: 0, orphanDeletions: 0, orphansDeleted: 0, sealRetries: 0, problems: [] as string[] };
    const onLine = (line: string) => {
      let entry: { level?: number; msg?: string; segments?: number; objects?: number };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        return;
      }
      if (entry.msg === 'adopted segments sealed before a crash') {
        logged.adoptions++;
        logged.adoptedSegments += entry.segments ?? 0;
      } else if (entry.msg === 'deleted segment objects of an interrupted seal') {
        logged.orphanDeletions++;
        logged.orphansDeleted += entry.objects ?? 0;
      } else if (entry.msg === 'seal failed; will retry') {
        logged.sealRetries++;
      }
      // With --durability wal a manifest never lists bytes the WAL lost: discarding one is a bug.
      if ((entry.level ?? 0) >= 50 || entry.msg === 'stored manifest is ahead of the WAL; discarding it') logged.problems.push(line.slice(0, 500));
    };
    server = new ChildServer({ port: await freePort(), dataDir, onLine });

    const closeCycle = CYCLES <= 2 ? 0 : driver.int(1, CYCLES - 2);
    const closer = new ByteStream({
      name: 'closer',
      seed: deriveSeed(SEED, 100),
      producerId: 'closer-producer',
      closePlan: { cycle: closeCycle, afterMs: driver.int(0, 250), killInFlight: driver.chance(0.5) },
      appendBytesMax: APPEND_BYTES_MAX,
    });
    const subjects: Subject[] = [
      new ByteStream({ name: 'bin-plain', seed: deriveSeed(SEED, 101), appendBytesMax: APPEND_BYTES_MAX }),
      new ByteStream({ name: 'bin-producer', seed: deriveSeed(SEED, 102), producerId: 'bin-producer-0', appendBytesMax: APPEND_BYTES_MAX }),
      new FramedStream({ name: 'bin-multi', seed: deriveSeed(SEED, 103), writers: 3, appendBytesMax: APPEND_BYTES_MAX }),
      new JsonStream({ name: 'json', seed: deriveSeed(SEED, 104), producers: 2, plainWriters: 1, padMax: JSON_PAD_MAX }),
      closer,
    ];
    const stats: Stats = { acked: 0, inFlightAtKill: 0, plainPresent: 0, plainLost: 0, retried200: 0, retried204: 0, closedProbes: 0 };
    const seal = {
      segmentSizes: [] as number[],
      /** Full reads after restarts that started in sealed data, of all full reads after restarts. */
      readsFromSegments: 0,
      readsAfterRestart: 0,
      /** Kills after which segment objects were stored that no manifest listed (upload done, manifest not). */
      killsWithUnlisted: 0,
      unlistedAtKills: 0,
      tempsAtKills: 0,
      segmentsChecked: 0,
      auditMs: 0,
    };
    let nodeId = '';
    const audit = async (): Promise<Audit> => {
      if (nodeId === '') nodeId = (await readFile(path.join(dataDir!, 'node-id'), 'utf8')).trim();
      return auditObjects({
        objectsDir,
        nodeId,
        subjects,
        chunkBytesMax: CHUNK_BYTES_MAX,
        segmentSizeBytesMax: Math.max(...seal.segmentSizes),
      });
    };
    /** Sealed positions seen before each load: the newest manifest must cover them after the kill. */
    const sealedBeforeLoad = new Map<Subject, number>();

    const afterVerify = async (run: Run, last: boolean): Promise<void> => {
      if (logged.problems.length > 0) throw new CheckFailure(`the server logged problems:\n${logged.problems.join('\n')}`);
      if (run.cycle > 0) {
        for (const subject of subjects) {
          const observed = subject.observed!;
          seal.readsAfterRestart++;
          if (observed.sealedBefore > 0) seal.readsFromSegments++;
          // Seals run from the first durable append on: by the second restart every stream has
          // sealed data, so its read from -1 starts in a segment.
          if (run.cycle >= 2 && observed.sealedBefore === 0) {
            throw new CheckFailure(`${subject.name}: Cairn-Sealed-Offset is 0 after restart ${run.cycle} (tail ${observed.tail}): nothing was sealed`);
          }
        }
        const auditStarted = performance.now();
        const live = await audit();
        // Reads go to a segment only once a stored manifest lists it: the manifest, read after
        // the HEAD, covers the sealed offset that HEAD reported.
        checkManifestsCoverSealed(live, subjects, (subject) => subject.observed!.sealedAfter, `after restart ${run.cycle}`);
        seal.segmentsChecked += (await checkSegmentBytes(live)).segments;
        seal.auditMs += performance.now() - auditStarted;
      }
      for (const subject of subjects) sealedBeforeLoad.set(subject, subject.observed?.sealedAfter ?? 0);
      if (last) await finalPhase(run);
    };

    const finalPhase = async (run: Run): Promise<void> => {
      // A load that ends without a kill: every open stream seals again, and its first seal after
      // the restart probes the stream's prefix and deletes orphan segments.
      const inFlightBefore = stats.inFlightAtKill;
      const failures = await loadWithoutKill(run, subjects, FINAL_LOAD_MS);
      if (failures.length > 0 || stats.inFlightAtKill !== inFlightBefore) {
        throw new CheckFailure(`final load without a kill: ${failures.join('; ') || 'a request failed'}`);
      }
      const deadline = performance.now() + SEAL_WAIT_MS;
      for (const subject of subjects) {
        for (;;) {
          const state = await sealState(run.client, subject);
          if (state.sealed === state.tail) break;
          if (performance.now() > deadline) {
            throw new CheckFailure(`${subject.name}: not wholly sealed ${SEAL_WAIT_MS} ms after the last append (sealed ${state.sealed}, tail ${state.tail})`);
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      for (const subject of subjects) {
        await subject.verify(run);
        const observed = subject.observed!;
        if (observed.sealedBefore !== observed.tail) {
          throw new CheckFailure(`${subject.name}: sealed ${observed.sealedBefore} of ${observed.tail} B when wholly sealed before`);
        }
      }
      // Every segment object is listed in its stream's newest manifest, or is collected soon; so
      // are superseded manifest versions and the temporary files of interrupted uploads.
      const orphanDeadline = performance.now() + ORPHAN_WAIT_MS;
      let final = await audit();
      while (final.streams.some((s) => s.unlisted.length > 0) || final.staleManifests > 0 || final.scan.temps.length > 0) {
        if (performance.now() > orphanDeadline) {
          const orphans = final.streams.flatMap((s) => s.unlisted.map((o) => `${s.subject.name} ${o.key}`));
          throw new CheckFailure(
            `${ORPHAN_WAIT_MS} ms after every stream sealed: ${orphans.length} segment object(s) listed in no manifest (${orphans.slice(0, 5).join(', ')}), ` +
              `${final.staleManifests} superseded manifest versions, ${final.scan.temps.length} temporary files left`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
        final = await audit();
      }
      for (const subject of subjects) {
        const stream = final.streams.find((s) => s.subject === subject);
        const end = stream?.manifest?.segments.at(-1)?.end ?? 0;
        if (end !== subject.observed!.tail) {
          throw new CheckFailure(`${subject.name}: the newest stored manifest covers [0, ${end}), the stream holds ${subject.observed!.tail} B`);
        }
      }
      const checked = await checkSegmentBytes(final);
      console.log(
        `crash-seal test (seed ${SEED}): final store: ${checked.segments} segments, ${checked.bytes} B, all listed and byte-exact; ` +
          'no superseded manifest versions or temporary files left behind',
      );
    };

    const afterKill = async (cycle: number): Promise<string> => {
      if (logged.problems.length > 0) throw new CheckFailure(`the server logged problems:\n${logged.problems.join('\n')}`);
      const down = await audit();
      checkManifestsCoverSealed(down, subjects, (subject) => sealedBeforeLoad.get(subject) ?? 0, `after kill ${cycle}`);
      await checkSegmentBytes(down, true);
      const unlisted = down.streams.reduce((sum, s) => sum + s.unlisted.length, 0);
      seal.unlistedAtKills += unlisted;
      seal.tempsAtKills += down.scan.temps.length;
      if (unlisted > 0) seal.killsWithUnlisted++;
      const manifests = down.streams.map((s) => `${s.subject.name} v${s.manifest?.version ?? 0}`).join(' ');
      return `segments ${seal.segmentSizes.at(-1)} B; manifests ${manifests}; ${unlisted} unlisted segments, ${down.scan.temps.length} temp files`;
    };

    const timing = await runCrashCycles({
      seed: SEED,
      cycles: CYCLES,
      driver,
      server,
      subjects,
      closer,
      stats,
      loadMsMin: LOAD_MS_MIN,
      loadMsMax: LOAD_MS_MAX,
      beforeStart: () => {
        const segmentSizeBytes = sizes.int(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX);
        seal.segmentSizes.push(segmentSizeBytes);
        server!.args = [
          '--object-store', 'fs',
          '--segment-size-bytes', String(segmentSizeBytes),
          '--seal-idle-ms', '0',
          '--chunk-bytes-max', String(CHUNK_BYTES_MAX),
          '--checkpoint-wal-bytes', String(CHECKPOINT_WAL_BYTES),
          '--log-level', 'info',
        ];
      },
      afterVerify,
      afterKill: async (cycle) => {
        try {
          return await afterKill(cycle);
        } catch (error) {
          if (error instanceof CheckFailure) throw new Error(`[seed ${SEED}, cycle ${cycle} of ${CYCLES}] ${error.message}\nserver output:\n${server!.stderrTail}`);
          throw error;
        }
      },
    });
    await server.stop();

    const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
    const perStream = subjects.map((s) => `${s.name}=${s.ackedCount}/${s.observed?.tail ?? 0}B`).join(' ');
    console.log(
      `crash-seal test (seed ${SEED}): ${CYCLES} kills in ${seconds} s; ${stats.acked} appends acked (${perStream}); ` +
        `${stats.inFlightAtKill} in flight at kills; plain in-flight present/lost ${stats.plainPresent}/${stats.plainLost}; ` +
        `producer retries 200/204 ${stats.retried200}/${stats.retried204}; closer closed in cycle ${closer.closedInCycle}; ` +
        `segment sizes ${seal.segmentSizes.join(',')}; reads after restart from segments ${seal.readsFromSegments}/${seal.readsAfterRestart}; ` +
        `${seal.segmentsChecked} segment checks; unlisted segments at kills ${seal.unlistedAtKills} (in ${seal.killsWithUnlisted} kills), temp files ${seal.tempsAtKills}; ` +
        `restart probes adopted ${logged.adoptedSegments} segments (${logged.adoptions} times), deleted ${logged.orphansDeleted} orphans (${logged.orphanDeletions} times); ` +
        `${logged.sealRetries} seal retries; ` +
        `time in starts ${ms(timing.startMs)}, checks ${ms(timing.checkMs)} (audits ${ms(seal.auditMs)}), loads ${ms(timing.loadMs)}, after kills ${ms(timing.afterKillMs)}`,
    );

    expect(logged.problems, 'errors and discarded manifests in the server log').toEqual([]);

    // The run must have exercised what it claims to.
    expect(stats.acked, 'acknowledged appends').toBeGreaterThan(100);
    expect(stats.inFlightAtKill, 'requests in flight at the kills').toBeGreaterThan(0);
    expect(closer.closed, 'the closer stream was closed').toBe(true);
    for (const subject of subjects) expect(subject.ackedCount, `acked appends on ${subject.name}`).toBeGreaterThan(0);
    expect(seal.segmentsChecked, 'segments compared with the acknowledged bytes').toBeGreaterThan(0);
    if (CYCLES >= 8) {
      // Kills landed between upload and manifest (orphans) and between manifest and seal record
      // (adoptions); in 16 kills each happens several times.
      expect(seal.killsWithUnlisted, 'kills that left segment objects no manifest listed').toBeGreaterThan(0);
      expect(logged.orphansDeleted, 'orphan segments deleted by restart probes').toBeGreaterThan(0);
      expect(logged.adoptions, 'manifests adopted by restart probes').toBeGreaterThan(0);
    }
  },
);
