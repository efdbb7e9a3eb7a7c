/**
 * SIGKILL of workers under load (README "Workers"; issue 14's kill test on one machine):
 * `cairn serve --workers 2` with small segments (sealing runs all the time), the upstream
 * `IdempotentProducer` with the client's retrying fetch on JSON streams, plain appenders and
 * long-poll tailers on text streams, all through the one port (so about half of every request is
 * forwarded), while random workers are killed with SIGKILL and restarted by the primary.
 * Afterwards: every producer message exactly once and in order; every acknowledged plain append
 * exactly once, in acknowledgement order (one whose answer was lost may appear at most once); each
 * tailer saw exactly the stream's bytes. `CRASH_SEED` replays a run; `CRASH_CYCLES` sets the kills.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFetchWithBackoff, DurableStream, IdempotentProducer, stream } from '@durable-streams/client';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger } from './support/crash-cycles.ts';
import { Rng } from './support/crash-model.ts';

const SEED = envInteger('CRASH_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31);
const KILLS = envInteger('CRASH_CYCLES', 4, 1, 1000);
const PRODUCERS = 3;
const MESSAGES_PER_PRODUCER = 1200;
const APPENDERS = 2;

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

/**
 * POSTs `token` once: acknowledged (204), or unknown (an error, a 503, a reset). An unknown one is
 * not retried, since a retry of a plain append whose first attempt was logged would duplicate it.
 */
async function appendOnce(url: string, token: string): Promise<'acknowledged' | 'unknown'> {
  try {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: token, signal: AbortSignal.timeout(10_000) });
    await response.arrayBuffer();
    return response.status === 204 ? 'acknowledged' : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Long-polls `url` from the start until `done()` and the tail is reached; returns every byte received. */
async function tail(url: string, done: () => boolean): Promise<string> {
  let offset = '-1';
  let received = '';
  for (;;) {
    try {
      const response = await fetch(`${url}?offset=${offset}&live=long-poll`, { signal: AbortSignal.timeout(15_000) });
      const body = await response.text();
      if (response.status === 200 || response.status === 204) {
        received += response.status === 200 ? body : '';
        offset = response.headers.get('stream-next-offset') ?? offset;
        if (response.headers.get('stream-up-to-date') === 'true' && done()) return received;
      } else if (response.status !== 503) {
        throw new Error(`tailer got ${response.status}: ${body}`);
      }
    } catch (error) {
      if ((error as Error).message.startsWith('tailer got')) throw error;
    }
    if (done()) await sleep(10);
  }
}

describe('cairn serve --workers 2 with workers killed under load', () => {
  it(`loses and duplicates nothing acknowledged (seed ${SEED}, ${KILLS} kills)`, async () => {
    const rng = new Rng(SEED);
    const errors: unknown[] = [];
    let loadDone = false;

    const producers = await Promise.all(
      Array.from({ length: PRODUCERS }, async (_, p) => {
        const url = `${base()}producer-${p}`;
        const handle = await DurableStream.create({ url, contentType: 'application/json' });
        const producer = new IdempotentProducer(handle, `writer-${p}`, {
          fetch: createFetchWithBackoff(fetch, { initialDelay: 100, maxDelay: 500, multiplier: 1.3 }),
          lingerMs: 2,
          onError: (error) => errors.push(error),
        });
        return { url, producer };
      }),
    );
    const appenders = await Promise.all(
      Array.from({ length: APPENDERS }, async (_, a) => {
        const url = `${base()}plain-${a}`;
        expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
        return { url, acknowledged: [] as string[], unknown: new Set<string>() };
      }),
    );
    const tailers = appenders.map((appender) => tail(appender.url, () => loadDone));

    const writing = (async () => {
      for (let i = 0; i < MESSAGES_PER_PRODUCER; i++) {
        for (const { producer } of producers) producer.append(JSON.stringify({ i }));
        if (i % 50 === 0) await sleep(5);
      }
      await Promise.all(producers.map(({ producer }) => producer.flush()));
    })();
    const appending = Promise.all(
      appenders.map(async (appender, a) => {
        for (let k = 0; !loadDone; k++) {
          const token = `a${a}-${k};`;
          const outcome = await appendOnce(appender.url, token);
          if (outcome === 'acknowledged') appender.acknowledged.push(token);
          else {
            appender.unknown.add(token);
            await sleep(50);
          }
        }
      }),
    );

    const killed: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      await sleep(rng.int(300, 1500));
      let pids = await workerPids();
      for (let waited = 0; pids.length < 2 && waited < 600; waited++) {
        await sleep(100);
        pids = await workerPids();
      }
      const victim = pids[rng.int(0, pids.length - 1)];
      if (victim === undefined) continue;
      process.kill(victim, 'SIGKILL');
      killed.push(victim);
    }
    await writing;
    await sleep(500);
    loadDone = true;
    await appending;
    const tailed = await Promise.all(tailers);

    expect(killed.length).toBe(KILLS);
    expect(errors).toEqual([]);
    for (const { url, producer } of producers) {
      await producer.close();
      const items = await (await stream<{ i: number }>({ url, live: false })).json();
      expect(items.map((item) => item.i)).toEqual(Array.from({ length: MESSAGES_PER_PRODUCER }, (_, i) => i));
    }
    for (const [a, appender] of appenders.entries()) {
      const content = await (await fetch(`${appender.url}?offset=-1`)).text();
      const tokens = content.split(';').filter(Boolean).map((token) => `${token};`);
      expect(new Set(tokens).size, 'no token twice').toBe(tokens.length);
      const acknowledged = tokens.filter((token) => !appender.unknown.has(token));
      expect(acknowledged, 'acknowledged appends once each, in order').toEqual(appender.acknowledged);
      expect(tokens.every((token) => appender.acknowledged.includes(token) || appender.unknown.has(token))).toBe(true);
      expect(tailed[a], 'the tailer saw the stream exactly').toBe(content);
    }
  }, 300_000);
});
