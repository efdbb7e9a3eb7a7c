/**
 * SIGKILL of workers under load (README "Workers"; issue 14's kill test on one machine):
 * `cairn serve --workers 2` with small segments (sealing runs all the time) under the load of
 * ./support/kill-under-load.ts through the one port (so about half of every request is
 * forwarded), while random workers are killed with SIGKILL and restarted by the primary.
 * `CRASH_SEED` replays a run; `CRASH_CYCLES` sets the kills.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger } from './support/crash-cycles.ts';
import { Rng } from './support/crash-model.ts';
import { runKillUnderLoad } from './support/kill-under-load.ts';

const SEED = envInteger('CRASH_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31);
const KILLS = envInteger('CRASH_CYCLES', 4, 1, 1000);

const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-crash-workers-'));
const server = new ChildServer({
  port: await freePort(),
  dataDir,
  args: ['--workers', '2', '--segment-size-bytes', '4096', '--seal-idle-ms', '0', '--long-poll-timeout-ms', '2000'],
});
const base = () => `http://127.0.0.1:${server.port}/v1/stream/crash-workers/`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => server.start(120_000), 130_000);
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** The worker processes of the primary (from /proc). */
async function workerPids(): Promise<number[]> {
  const pid = server.pid ?? 0;
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return children.trim().split(/\s+/).filter(Boolean).map(Number);
}

describe('cairn serve --workers 2 with workers killed under load', () => {
  it(`loses and duplicates nothing acknowledged (seed ${SEED}, ${KILLS} kills)`, async () => {
    const rng = new Rng(SEED);
    await runKillUnderLoad({
      base: base(),
      rng,
      kills: KILLS,
      kill: async () => {
        let pids = await workerPids();
        for (let waited = 0; pids.length < 2 && waited < 600; waited++) {
          await sleep(100);
          pids = await workerPids();
        }
        const victim = pids[rng.int(0, pids.length - 1)];
        expect(victim, 'a worker to kill').toBeDefined();
        process.kill(victim as number, 'SIGKILL');
      },
    });
  }, 600_000);
});
