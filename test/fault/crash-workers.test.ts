/**
 * SIGKILL of workers under load (README "Workers"; issue 14's kill test on one machine):
 * `cairn serve --workers 2` with small segments (sealing runs all the time) under the load of
 * ./support/kill-under-load.ts through the one port (so about half of every request is
 * forwarded), while random workers are killed with SIGKILL and restarted by the primary.
 * `CRASH_SEED` replays a run; `CRASH_CYCLES` sets the kills.
 * Then: requests each on a new connection while workers are killed faster than they restart
 * (both down at times) all end, with an answer or a connection error, none left hanging.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
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

  it('leaves no request on a new connection unanswered while workers are killed', async () => {
    const rng = new Rng(SEED + 1);
    const streams = 8;
    const url = (i: number) => `${base()}handoff-${i % streams}`;
    for (let i = 0; i < streams; i++) {
      const response = await fetch(url(i), { method: 'PUT', headers: { 'content-type': 'text/plain' } });
      expect([200, 201, 204]).toContain(response.status);
    }
    // One request per connection (`Connection: close`, no agent): every request is a new
    // connection the server has to take, the moment a worker is killed included.
    const post = (i: number) =>
      new Promise<string>((resolve) => {
        const request = http.request(url(i), { method: 'POST', agent: false, headers: { connection: 'close', 'content-type': 'text/plain' } }, (response) => {
          response.resume();
          response.once('end', () => resolve(String(response.statusCode)));
          response.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'response error'));
        });
        request.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'request error'));
        request.end('x');
      });
    const unanswered = new Map<number, number>();
    const outcomes = new Map<string, number>();
    let sent = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const id = sent++;
        unanswered.set(id, Date.now());
        const outcome = await post(id);
        unanswered.delete(id);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (outcome === 'ECONNREFUSED') await sleep(5); // no worker listening: do not spin
      }
    };
    const clients = Array.from({ length: 24 }, () => client());
    for (let kill = 0; kill < 12; kill++) {
      await sleep(500 + rng.int(0, 500));
      const pids = await workerPids();
      const victim = pids[rng.int(0, pids.length - 1)];
      if (victim !== undefined) process.kill(victim, 'SIGKILL');
    }
    stop = true;
    // A request's outcome needs a live worker at most; 90 s is far beyond any restart here.
    const settled = await Promise.race([Promise.all(clients).then(() => true), sleep(90_000).then(() => false)]);
    const summary = JSON.stringify({ sent, outcomes: Object.fromEntries(outcomes), unanswered: unanswered.size });
    expect(settled, `every request ended: ${summary}`).toBe(true);
    expect(outcomes.get('204') ?? 0, `some appends succeeded between the kills: ${summary}`).toBeGreaterThan(0);
  }, 300_000);
});
