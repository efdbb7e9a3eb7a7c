/**
 * The load and the checks of the kill-under-load tests (crash-workers, cluster-crash): upstream
 * `IdempotentProducer`s with the client's retrying fetch on JSON streams, plain appenders and
 * long-poll tailers on text streams, all through one base URL, while the test's `kill` runs
 * `kills` times at random moments. Afterwards: every producer message exactly once and in order;
 * every acknowledged plain append exactly once, in acknowledgement order (one whose answer was
 * lost may appear at most once); each tailer saw exactly the stream's bytes.
 */
import { expect } from 'vitest';
import { createFetchWithBackoff, DurableStream, IdempotentProducer, stream } from '@durable-streams/client';
import type { ChildServer } from './child-server.ts';
import type { Rng } from './crash-model.ts';

const PRODUCERS = 3;
const MESSAGES_PER_PRODUCER = 1200;
const APPENDERS = 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A producer that got no answer but errors and 503s for this long is stuck: the test fails, showing its last requests. */
const PRODUCER_STALL_MS = 120_000;

/** A producer's requests as they were answered, newest last (the evidence when it stalls). */
class RequestTrail {
  readonly lines: string[] = [];
  lastSuccessMs = performance.now();
  /** Every message was acknowledged (the producer's flush resolved). */
  flushed = false;
  readonly fetch: typeof fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    const label = `seq ${headers.get('producer-seq') ?? '?'} epoch ${headers.get('producer-epoch') ?? '?'}`;
    // Sends are noted too: a request that never gets an answer shows as a send without an outcome.
    this.#note(`${label}: sent`);
    try {
      const response = await fetch(input, init);
      if (response.ok) this.lastSuccessMs = performance.now();
      this.#note(`${label}: ${response.status} from ${response.headers.get('cairn-node') ?? '?'}`);
      return response;
    } catch (error) {
      this.#note(`${label}: ${(error as Error).message}`);
      throw error;
    }
  };

  #note(line: string): void {
    this.lines.push(`${new Date().toISOString()} ${line}`);
    if (this.lines.length > 60) this.lines.shift();
  }
}

export interface KillUnderLoadOptions {
  /** Base URL of streams, ending in '/' (e.g. `http://127.0.0.1:4437/v1/stream/crash/`). */
  base: string;
  rng: Rng;
  kills: number;
  /** Kills something (a worker, a node); resolves once it is killed (and restarted, if the test restarts it). */
  kill: () => Promise<void>;
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

/** Runs the load with `kills` kills, then checks everything it was told was acknowledged. */
export async function runKillUnderLoad(options: KillUnderLoadOptions): Promise<void> {
  const { base, rng } = options;
  const errors: unknown[] = [];
  let loadDone = false;
  /** Every append has been answered: a tailer at the tail then has seen everything. */
  let appendsAnswered = false;

  const producers = await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, p) => {
      const url = `${base}producer-${p}`;
      const handle = await DurableStream.create({ url, contentType: 'application/json' });
      const trail = new RequestTrail();
      const producer = new IdempotentProducer(handle, `writer-${p}`, {
        fetch: createFetchWithBackoff(trail.fetch, { initialDelay: 100, maxDelay: 500, multiplier: 1.3 }),
        lingerMs: 2,
        onError: (error) => errors.push(error),
      });
      return { url, producer, trail };
    }),
  );
  const appenders = await Promise.all(
    Array.from({ length: APPENDERS }, async (_, a) => {
      const url = `${base}plain-${a}`;
      expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
      return { url, acknowledged: [] as string[], unknown: new Set<string>() };
    }),
  );
  const tailers = appenders.map((appender) => tail(appender.url, () => appendsAnswered));

  const writing = (async () => {
    for (let i = 0; i < MESSAGES_PER_PRODUCER; i++) {
      for (const { producer } of producers) producer.append(JSON.stringify({ i }));
      if (i % 50 === 0) await sleep(5);
    }
    await Promise.all(producers.map(({ producer, trail }) => producer.flush().then(() => (trail.flushed = true))));
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

  for (let kill = 0; kill < options.kills; kill++) {
    await sleep(rng.int(300, 1500));
    await options.kill();
  }
  // A stuck producer fails the test with its last requests rather than hanging it to its timeout.
  let stallCheck: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    stallCheck = setInterval(() => {
      const stuck = producers.findIndex(({ trail }) => !trail.flushed && performance.now() - trail.lastSuccessMs > PRODUCER_STALL_MS);
      if (stuck >= 0) {
        const reported = errors.map((error) => (error instanceof Error ? error.message : String(error))).join('\n');
        reject(new Error(`producer-${stuck} got no success for ${PRODUCER_STALL_MS / 1000} s; its last requests:\n${producers[stuck]?.trail.lines.join('\n')}\nerrors reported by the producers:\n${reported}`));
      }
    }, 1_000);
  });
  try {
    await Promise.race([writing, stalled]);
  } finally {
    clearInterval(stallCheck);
  }
  await sleep(500);
  loadDone = true;
  await appending;
  appendsAnswered = true;
  const tailed = await Promise.all(tailers);

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
    const seen = tailed[a] ?? '';
    let at = 0;
    while (at < Math.min(seen.length, content.length) && seen[at] === content[at]) at++;
    const where = `first difference at byte ${at} of ${content.length} (tailer got ${seen.length}): stream "${content.slice(Math.max(0, at - 30), at + 30)}", tailer "${seen.slice(Math.max(0, at - 30), at + 30)}"`;
    expect(seen === content, `the tailer saw the stream exactly; ${where}`).toBe(true);
  }
}

/** SIGKILLs a node of `nodes` picked by `rng` and waits until it is gone; returns it. */
export async function killRandomNode(nodes: readonly ChildServer[], rng: Rng): Promise<ChildServer> {
  const victim = nodes[rng.int(0, nodes.length - 1)];
  if (victim === undefined) throw new Error('no node to kill');
  victim.kill();
  await victim.waitExit();
  return victim;
}
