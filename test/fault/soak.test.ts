/**
 * Soak (issue 5, "Soak"): a child `cairn serve` (filesystem object store, sealing on) under
 * sustained mixed load for SOAK_MS (default 5 min; `npm run test:soak` sets 10 min):
 *   - binary streams, each written by one plain writer, followed live by a long-poll reader; at
 *     GENERATION_BYTES a stream is closed, read back whole, forked at a recorded offset (the
 *     fork read back and checked), and both are deleted; a new generation starts;
 *   - a JSON stream written by an idempotent producer, followed live by an SSE reader; rolled
 *     over (checked, deleted) every JSON_GENERATION_MESSAGES messages;
 *   - create/append/close/read/delete churn of short-lived streams.
 * Every response is checked against the one status the request must get; every stream is read
 * back and compared with what was acknowledged before it is deleted, and once more at the end.
 * The server's RSS (VmRSS) and open file descriptors (/proc/<pid>/fd) are sampled every
 * SAMPLE_MS and printed. Assertions: no unexpected status, every read-back equal to the model,
 * live readers saw exactly the stream, RSS flat after warm-up (see RSS_GROWTH_*), and the fd
 * count back at its startup baseline once the clients are gone.
 *
 *   SOAK_MS=600000 npx vitest run test/fault/soak.test.ts     (SOAK_SEED=<n> replays the data)
 */
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger } from './support/crash-cycles.ts';
import { deriveSeed, Rng } from './support/crash-model.ts';
import { header, HttpClient, type Response } from './support/http-client.ts';

const SOAK_MS = envInteger('SOAK_MS', 300_000, 5_000, 3_600_000);
const SEED = envInteger('SOAK_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const SAMPLE_MS = 5_000;
/** Samples before this are warm-up (JIT, pools, caches filling) and not judged. */
const WARMUP_MS = Math.min(60_000, Math.floor(SOAK_MS / 5));
/** A binary stream is closed, checked, forked, and deleted once it holds this many bytes. */
const GENERATION_BYTES = 4 * 1024 * 1024;
const JSON_GENERATION_MESSAGES = 4_000;
const BINARY_WRITERS = 2;
/** Largest binary append (log-uniform sizes, so most are a few KiB). */
const APPEND_BYTES_MAX = 64 * 1024;
/**
 * RSS judged flat when the median of the last third of the post-warm-up samples is at most
 * RSS_GROWTH_RATIO × the median of the first third + RSS_GROWTH_SLACK_BYTES. V8 grows its old
 * space in steps and returns memory lazily, so a healthy server's RSS wanders by tens of MiB;
 * medians over thirds ignore single GC spikes. Measured: 190 → 197 MiB (bound 270 MiB) over 5
 * minutes. A leak of a third of what the load pushes through (about 250 MiB in 5 minutes) breaks
 * the bound; so did the default 256 MiB segment cache filling up (252 → 401 MiB).
 */
const RSS_GROWTH_RATIO = 1.25;
const RSS_GROWTH_SLACK_BYTES = 32 * 1024 * 1024;
/** Descriptors the server may hold beyond its idle baseline at the end (a WAL file rotated, a segment file open). */
const FD_SLACK_COUNT = 4;
/** The server's segment cache (see the server's arguments below). */
const SEGMENT_CACHE_BYTES = 16 * 1024 * 1024;
const BINARY = 'application/octet-stream';
const JSON_TYPE = 'application/json';

let server: ChildServer | undefined;
let dataDir: string | undefined;

afterAll(async () => {
  await server?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

interface Sample {
  atMs: number;
  rssBytes: number;
  fdCount: number;
}

async function sampleProcess(pid: number, atMs: number): Promise<Sample> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (match === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const fds = await readdir(`/proc/${pid}/fd`);
  return { atMs, rssBytes: Number(match[1]) * 1024, fdCount: fds.length };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const MiB = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Soak {
  readonly client: HttpClient;
  readonly port: number;
  stopped = false;
  readonly unexpected: string[] = [];
  readonly counts = {
    appends: 0,
    appendedBytes: 0,
    verifiedBytes: 0,
    generations: 0,
    forks: 0,
    churnStreams: 0,
    longPollBytes: 0,
    sseMessages: 0,
    deletes: 0,
  };

  constructor(port: number) {
    this.port = port;
    this.client = new HttpClient(port);
  }

  /** Sends a request; a status other than `expected` (or a transport error) is recorded. */
  async expect(what: string, expected: number, method: string, url: string, options: Parameters<HttpClient['request']>[2] = {}): Promise<Response | undefined> {
    let response: Response;
    try {
      response = await this.client.request(method, url, options);
    } catch (error) {
      this.fail(`${what}: ${method} ${url} failed: ${(error as Error).message}`);
      return undefined;
    }
    if (response.status !== expected) {
      this.fail(`${what}: ${method} ${url} answered ${response.status} (expected ${expected}): ${response.body.toString('utf8', 0, 200)}`);
      return undefined;
    }
    return response;
  }

  fail(message: string): void {
    if (this.unexpected.length < 50) this.unexpected.push(message);
    this.stopped = true;
  }

  /** Reads a stream from -1 until up to date; returns the response bodies. */
  async readBodies(url: string): Promise<Buffer[] | undefined> {
    const bodies: Buffer[] = [];
    let offset = '-1';
    for (let i = 0; i < 100_000; i++) {
      const response = await this.expect('catch-up read', 200, 'GET', `${url}?offset=${encodeURIComponent(offset)}`);
      if (response === undefined) return undefined;
      bodies.push(response.body);
      if (header(response, 'stream-up-to-date') === 'true') return bodies;
      offset = header(response, 'stream-next-offset');
    }
    this.fail(`${url}: never up to date`);
    return undefined;
  }

  async readAll(url: string): Promise<Buffer | undefined> {
    const bodies = await this.readBodies(url);
    return bodies === undefined ? undefined : Buffer.concat(bodies);
  }

  check(what: string, ok: boolean): void {
    if (!ok) this.fail(what);
  }
}

/** Follows a stream with long-polls until it is closed; resolves with every byte seen. */
async function longPollFollower(soak: Soak, url: string): Promise<Buffer | undefined> {
  const seen: Buffer[] = [];
  let offset = '-1';
  let cursor = '';
  for (;;) {
    const query = `offset=${encodeURIComponent(offset)}&live=long-poll${cursor === '' ? '' : `&cursor=${encodeURIComponent(cursor)}`}`;
    let response: Response;
    try {
      response = await soak.client.request('GET', `${url}?${query}`, { timeoutMs: 60_000 });
    } catch (error) {
      soak.fail(`long-poll ${url}: ${(error as Error).message}`);
      return undefined;
    }
    if (response.status !== 200 && response.status !== 204) {
      soak.fail(`long-poll ${url} at ${offset}: status ${response.status}`);
      return undefined;
    }
    seen.push(response.body);
    soak.counts.longPollBytes += response.body.length;
    offset = header(response, 'stream-next-offset') || offset;
    cursor = header(response, 'stream-cursor');
    if (header(response, 'stream-closed') === 'true') return Buffer.concat(seen);
  }
}

/** Follows a JSON stream over SSE (reconnecting when the server ends a connection) until closed; resolves with the messages. */
async function sseFollower(soak: Soak, streamPath: string): Promise<string[] | undefined> {
  const messages: string[] = [];
  let offset = '-1';
  for (let connections = 0; connections < 1_000; connections++) {
    const result = await new Promise<{ closed: boolean; error?: string }>((resolve) => {
      const request = http.get(
        { host: '127.0.0.1', port: soak.port, path: `${streamPath}?offset=${encodeURIComponent(offset)}&live=sse`, agent: false },
        (response) => {
          if (response.statusCode !== 200) {
            response.resume();
            resolve({ closed: false, error: `status ${response.statusCode}` });
            return;
          }
          response.setEncoding('utf8');
          let buffered = '';
          let closed = false;
          response.on('data', (text: string) => {
            buffered += text;
            for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
              const block = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              const lines = block.split('\n');
              const event = lines.find((line) => line.startsWith('event:'))?.slice(6).trim();
              const data = lines
                .filter((line) => line.startsWith('data:'))
                .map((line) => line.slice(5).replace(/^ /, ''))
                .join('\n');
              if (event === 'data') {
                for (const message of JSON.parse(data) as unknown[]) messages.push(JSON.stringify(message));
                soak.counts.sseMessages++;
              } else if (event === 'control') {
                const control = JSON.parse(data) as { streamNextOffset?: string; streamClosed?: boolean };
                if (control.streamNextOffset !== undefined) offset = control.streamNextOffset;
                if (control.streamClosed === true) closed = true;
              }
            }
          });
          response.on('end', () => resolve({ closed }));
          response.on('error', (error) => resolve({ closed, error: error.message }));
        },
      );
      request.on('error', (error) => resolve({ closed: false, error: error.message }));
    });
    if (result.error !== undefined) {
      soak.fail(`SSE ${streamPath}: ${result.error}`);
      return undefined;
    }
    if (result.closed) return messages;
  }
  soak.fail(`SSE ${streamPath}: too many reconnects`);
  return undefined;
}

/** One binary writer: generations of a stream, each followed live, then closed, checked, forked, deleted. */
async function binaryWriter(soak: Soak, id: number): Promise<void> {
  const rng = new Rng(deriveSeed(SEED, id));
  for (let generation = 0; !soak.stopped; generation++) {
    const url = `/v1/stream/soak/bin-${id}-${generation}`;
    if ((await soak.expect('create', 201, 'PUT', url, { headers: { 'content-type': BINARY } })) === undefined) return;
    const follower = longPollFollower(soak, url);
    const acked: Buffer[] = [];
    let ackedBytes = 0;
    let forkPoint: { offset: string; bytes: number } | undefined;
    while (!soak.stopped && ackedBytes < GENERATION_BYTES) {
      const body = rng.bytes(rng.size(APPEND_BYTES_MAX));
      const response = await soak.expect('append', 204, 'POST', url, { headers: { 'content-type': BINARY }, body });
      if (response === undefined) return;
      acked.push(body);
      ackedBytes += body.length;
      soak.counts.appends++;
      soak.counts.appendedBytes += body.length;
      if (forkPoint === undefined && ackedBytes >= GENERATION_BYTES / 2) forkPoint = { offset: header(response, 'stream-next-offset'), bytes: ackedBytes };
      await sleep(rng.int(1, 8));
    }
    // Close (also ends the follower), then check the whole stream, its live copy and a fork.
    if ((await soak.expect('close', 204, 'POST', url, { headers: { 'stream-closed': 'true' } })) === undefined) return;
    const expected = Buffer.concat(acked);
    const read = await soak.readAll(url);
    if (read === undefined) return;
    soak.check(`${url}: read back ${read.length} B differs from the ${expected.length} B acked`, read.equals(expected));
    const live = await follower;
    if (live === undefined) return;
    soak.check(`${url}: the long-poll reader saw ${live.length} B, not the ${expected.length} B acked`, live.equals(expected));
    soak.counts.verifiedBytes += read.length;
    if (forkPoint !== undefined) {
      const forkUrl = `/v1/stream/soak/fork-${id}-${generation}`;
      const forkHeaders = { 'content-type': BINARY, 'stream-forked-from': url, 'stream-fork-offset': forkPoint.offset };
      if ((await soak.expect('fork', 201, 'PUT', forkUrl, { headers: forkHeaders })) === undefined) return;
      const own = rng.bytes(rng.int(1, 4096));
      if ((await soak.expect('fork append', 204, 'POST', forkUrl, { headers: { 'content-type': BINARY }, body: own })) === undefined) return;
      const forkRead = await soak.readAll(forkUrl);
      if (forkRead === undefined) return;
      soak.check(`${forkUrl}: fork read back differs`, forkRead.equals(Buffer.concat([expected.subarray(0, forkPoint.bytes), own])));
      soak.counts.forks++;
      if ((await soak.expect('delete fork', 204, 'DELETE', forkUrl)) === undefined) return;
      soak.counts.deletes++;
    }
    if ((await soak.expect('delete', 204, 'DELETE', url)) === undefined) return;
    soak.counts.deletes++;
    if ((await soak.expect('read after delete', 404, 'GET', `${url}?offset=-1`)) === undefined) return;
    soak.counts.generations++;
  }
}

/** The idempotent JSON producer with an SSE follower; the stream is closed, checked and deleted per generation. */
async function jsonProducer(soak: Soak): Promise<void> {
  const rng = new Rng(deriveSeed(SEED, 50));
  for (let generation = 0; !soak.stopped; generation++) {
    const streamPath = `/v1/stream/soak/json-${generation}`;
    if ((await soak.expect('create', 201, 'PUT', streamPath, { headers: { 'content-type': JSON_TYPE } })) === undefined) return;
    const follower = sseFollower(soak, streamPath);
    const acked: string[] = [];
    for (let seq = 0; !soak.stopped && acked.length < JSON_GENERATION_MESSAGES; seq++) {
      const batch = Array.from({ length: rng.int(1, 5) }, (_, i) => JSON.stringify({ g: generation, seq, i, pad: 'x'.repeat(rng.int(0, 400)), nested: { a: [1, { b: 'é中' }] } }));
      const headers = { 'content-type': JSON_TYPE, 'producer-id': `soak-${generation}`, 'producer-epoch': '0', 'producer-seq': String(seq) };
      const body = `[${batch.join(',')}]`;
      if ((await soak.expect('producer append', 200, 'POST', streamPath, { headers, body })) === undefined) return;
      // Every tenth batch is sent again: a duplicate is acknowledged (204) and not stored twice.
      if (seq % 10 === 0 && (await soak.expect('producer duplicate', 204, 'POST', streamPath, { headers, body })) === undefined) return;
      acked.push(...batch);
      soak.counts.appends++;
      soak.counts.appendedBytes += body.length;
      await sleep(rng.int(1, 8));
    }
    if ((await soak.expect('close', 204, 'POST', streamPath, { headers: { 'stream-closed': 'true' } })) === undefined) return;
    const bodies = await soak.readBodies(streamPath);
    if (bodies === undefined) return;
    const stored = bodies.flatMap((body) => (JSON.parse(body.toString('utf8')) as unknown[]).map((m) => JSON.stringify(m)));
    soak.check(`${streamPath}: read back ${stored.length} messages, ${acked.length} acked (or different)`, stored.join('\n') === acked.join('\n'));
    const live = await follower;
    if (live === undefined) return;
    soak.check(`${streamPath}: the SSE reader saw ${live.length} messages, ${acked.length} acked (or different)`, live.join('\n') === acked.join('\n'));
    soak.counts.verifiedBytes += bodies.reduce((sum, body) => sum + body.length, 0);
    if ((await soak.expect('delete', 204, 'DELETE', streamPath)) === undefined) return;
    soak.counts.deletes++;
    soak.counts.generations++;
  }
}

/** Short-lived streams: create with a body, append, close, read, delete. */
async function churn(soak: Soak): Promise<void> {
  const rng = new Rng(deriveSeed(SEED, 60));
  for (let i = 0; !soak.stopped; i++) {
    const url = `/v1/stream/soak/churn-${i}`;
    const first = rng.bytes(rng.int(1, 2048));
    const second = rng.bytes(rng.int(1, 2048));
    if ((await soak.expect('churn create', 201, 'PUT', url, { headers: { 'content-type': BINARY }, body: first })) === undefined) return;
    if ((await soak.expect('churn append+close', 204, 'POST', url, { headers: { 'content-type': BINARY, 'stream-closed': 'true' }, body: second })) === undefined) return;
    if ((await soak.expect('churn append after close', 409, 'POST', url, { headers: { 'content-type': BINARY }, body: second })) === undefined) return;
    const read = await soak.readAll(url);
    if (read === undefined) return;
    soak.check(`${url}: churn read back differs`, read.equals(Buffer.concat([first, second])));
    if ((await soak.expect('churn delete', 204, 'DELETE', url)) === undefined) return;
    soak.counts.churnStreams++;
    soak.counts.deletes++;
    await sleep(rng.int(10, 50));
  }
}

test(`soak: ${SOAK_MS / 1000} s of mixed load with live readers; RSS flat, no fd leak, no unexpected status (seed ${SEED})`, { timeout: SOAK_MS + 180_000 }, async () => {
  console.log(`soak test: SOAK_MS=${SOAK_MS} SOAK_SEED=${SEED}`);
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-soak-'));
  server = new ChildServer({
    port: await freePort(),
    dataDir,
    // Segments of 256 KiB sealed after 500 ms idle: the load keeps the sealer, the segment cache
    // and the object deletes busy, so their memory is part of what is judged. The segment cache is
    // bounded at SEGMENT_CACHE_BYTES so that it is full within the warm-up: with the default
    // 256 MiB it keeps filling for the whole run (RSS rose steadily from 107 to 425 MiB in a
    // 5-minute run), which is bounded growth, not a leak, but hides one.
    args: ['--segment-cache-bytes', String(SEGMENT_CACHE_BYTES), '--segment-size-bytes', String(256 * 1024), '--seal-idle-ms', '500', '--checkpoint-wal-bytes', String(16 * 1024 * 1024), '--long-poll-timeout-ms', '2000', '--sse-reconnect-ms', '5000'],
  });
  await server.start();
  const pid = server.pid;
  if (pid === undefined) throw new Error('no child pid');
  await sleep(500);
  const baseline = await sampleProcess(pid, 0);

  const soak = new Soak(server.port);
  const startedMs = performance.now();
  const samples: Sample[] = [];
  const sampler = (async () => {
    while (!soak.stopped && performance.now() - startedMs < SOAK_MS) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, SOAK_MS - (performance.now() - startedMs))));
      samples.push(await sampleProcess(pid, Math.round(performance.now() - startedMs)));
    }
    soak.stopped = true;
  })();
  const workers = [...Array.from({ length: BINARY_WRITERS }, (_, id) => binaryWriter(soak, id)), jsonProducer(soak), churn(soak)];
  await sampler;
  await Promise.all(workers);
  const loadSeconds = (performance.now() - startedMs) / 1000;

  // Every writer ended by closing its last generation and checking it whole (the final verification).
  soak.client.destroy();
  await sleep(2_000);
  const idle = await sampleProcess(pid, Math.round(performance.now() - startedMs));

  console.log(`soak: samples every ${SAMPLE_MS / 1000} s (t s, RSS MiB, fds):`);
  console.log(samples.map((s) => `${(s.atMs / 1000).toFixed(0)}:${MiB(s.rssBytes)}/${s.fdCount}`).join(' '));
  const judged = samples.filter((s) => s.atMs >= WARMUP_MS);
  const third = Math.max(1, Math.floor(judged.length / 3));
  const firstMedian = median(judged.slice(0, third).map((s) => s.rssBytes));
  const lastMedian = median(judged.slice(-third).map((s) => s.rssBytes));
  const c = soak.counts;
  console.log(
    `soak (seed ${SEED}): ${loadSeconds.toFixed(0)} s load; ${c.appends} appends, ${MiB(c.appendedBytes)} MiB appended, ` +
      `${MiB(c.verifiedBytes)} MiB read back and verified, ${c.generations} stream generations checked, ${c.forks} forks, ` +
      `${c.churnStreams} churn streams, ${c.deletes} deletes, ${MiB(c.longPollBytes)} MiB via long-poll, ${c.sseMessages} SSE data events; ` +
      `RSS baseline ${MiB(baseline.rssBytes)} MiB, post-warm-up first-third median ${MiB(firstMedian)} MiB, last-third median ${MiB(lastMedian)} MiB, ` +
      `max ${MiB(Math.max(...samples.map((s) => s.rssBytes)))} MiB; fds baseline ${baseline.fdCount}, max ${Math.max(...samples.map((s) => s.fdCount))}, ` +
      `idle after load ${idle.fdCount}; unexpected responses ${soak.unexpected.length}`,
  );

  expect(soak.unexpected, 'unexpected responses or read-back mismatches').toEqual([]);
  expect(c.generations, 'stream generations checked').toBeGreaterThan(0);
  expect(judged.length, 'post-warm-up samples').toBeGreaterThanOrEqual(3);
  expect(lastMedian, `RSS last-third median ${MiB(lastMedian)} MiB vs first-third ${MiB(firstMedian)} MiB`).toBeLessThanOrEqual(
    firstMedian * RSS_GROWTH_RATIO + RSS_GROWTH_SLACK_BYTES,
  );
  expect(idle.fdCount, `fds after the load ${idle.fdCount}, baseline ${baseline.fdCount}`).toBeLessThanOrEqual(baseline.fdCount + FD_SLACK_COUNT);
});
