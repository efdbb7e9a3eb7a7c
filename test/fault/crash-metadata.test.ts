/**
 * Crash during each metadata write, then disk loss (docs/storage-layout.md). A child `cairn serve`
 * (filesystem store, tiny segments, `--seal-idle-ms 0`, a short `--metadata-flush-ms`) takes a
 * random mix of stream lifecycles — creates (with and without a first body), appends, closes,
 * forks and deletes — from a few concurrent workers and is killed with SIGKILL at a random moment,
 * so kills land during segment uploads, manifest versions (seals and metadata-only writes) and
 * tombstones. The model keeps, per path, the acknowledged bytes, closure and existence, plus the
 * one operation in flight at a kill (its outcome unknown until the next life reads the stream).
 *
 * - After every kill (server down): the store never holds a manifest that lists a missing or
 *   wrong segment — `verifyStore`, the check behind `cairn verify`, reports no problem.
 * - After every restart on the same data directory: every path answers exactly as the model says
 *   (the WAL holds everything acknowledged), which settles the in-flight operations.
 * - At the end: every live stream wholly sealed and its stored metadata caught up; `kill -9`,
 *   the data directory deleted but for the objects, a fresh node: every stream is served with its
 *   acknowledged bytes and closure, deleted and never-created paths answer 404, and the real
 *   `cairn verify` CLI exits 0 on the store.
 *
 * Replay with the printed seed: CRASH_SEED=<seed> [CRASH_METADATA_CYCLES=<n>] npx vitest run
 * test/fault/crash-metadata.test.ts (the operation mix and kill times are seeded; the
 * interleaving is not).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { verifyStore } from '../../src/manifest/store-verify.ts';
import { FsObjectStore } from '../../src/object-store/index.ts';
import { parseOffsetToken } from '../../src/protocol/offset.ts';
import { ChildServer, freePort } from './support/child-server.ts';
import { envInteger } from './support/crash-cycles.ts';
import { CheckFailure, deriveSeed, Rng } from './support/crash-model.ts';
import { header, HttpClient, type Response } from './support/http-client.ts';

const SEED = envInteger('CRASH_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const CYCLES = envInteger('CRASH_METADATA_CYCLES', 6, 1, 1_000);
const WORKERS = 4;
/** Load phase of one server life before its kill, in milliseconds. */
const LOAD_MS_MIN = 150;
const LOAD_MS_MAX = 600;
const SEGMENT_BYTES = 512;
const CHUNK_BYTES_MAX = 1024;
const APPEND_BYTES_MAX = 400;
/** After the last life: every live stream sealed and its stored metadata caught up within this. */
const SETTLE_WAIT_MS = 20_000;
const SERVE_ARGS = [
  '--object-store', 'fs',
  '--segment-size-bytes', String(SEGMENT_BYTES),
  '--seal-idle-ms', '0',
  '--metadata-flush-ms', '20',
  '--chunk-bytes-max', String(CHUNK_BYTES_MAX),
];
const OCTET = { 'content-type': 'application/octet-stream' };
const MAIN = path.resolve('src/cli/main.ts');

type Pending =
  | { kind: 'create'; body: Buffer; source: Model | undefined }
  | { kind: 'append'; body: Buffer }
  | { kind: 'close' }
  | { kind: 'delete' };

/** What one path is, as far as acknowledged requests say. */
interface Model {
  path: string;
  /** `unknown`: created by a request whose outcome a kill hid (settled after the restart). */
  state: 'live' | 'deleted' | 'never' | 'unknown';
  bytes: Buffer;
  closed: boolean;
  /** A fork was (maybe) made of it: never deleted, so it never turns soft-deleted. */
  hasForks: boolean;
  /** An operation runs on it (or ran when the server was killed: `pending`). */
  busy: boolean;
  pending: Pending | undefined;
}

let server: ChildServer | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await server?.stop();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** The whole stream by catch-up reads from -1, with its closure; undefined on 404. */
async function readAll(client: HttpClient, streamPath: string): Promise<{ bytes: Buffer; closed: boolean } | undefined> {
  const parts: Buffer[] = [];
  let offset = '-1';
  for (let reads = 0; reads < 10_000; reads++) {
    const response = await client.request('GET', `/v1/stream/${streamPath}?offset=${offset}`);
    if (response.status === 404 && reads === 0) return undefined;
    if (response.status !== 200) throw new CheckFailure(`GET ${streamPath} at ${offset}: status ${response.status} ${response.body.toString('utf8', 0, 200)}`);
    parts.push(response.body);
    offset = header(response, 'stream-next-offset');
    if (header(response, 'stream-up-to-date') === 'true') return { bytes: Buffer.concat(parts), closed: header(response, 'stream-closed') === 'true' };
  }
  throw new CheckFailure(`GET ${streamPath}: never up to date`);
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && a.equals(b);
}

/** Checks `model` against what the server serves, settling an operation a kill left unknown. */
async function check(client: HttpClient, model: Model, when: string): Promise<void> {
  const seen = await readAll(client, model.path);
  const pending = model.pending;
  const where = `${when}: ${model.path}`;
  if (pending?.kind === 'create') {
    if (seen === undefined) model.state = 'never';
    else {
      model.state = 'live';
      model.bytes = Buffer.concat([pending.source?.bytes ?? Buffer.alloc(0), pending.body]);
    }
  } else if (pending?.kind === 'delete') {
    if (seen === undefined) model.state = 'deleted';
  } else if (pending?.kind === 'append' && seen !== undefined && sameBytes(seen.bytes, Buffer.concat([model.bytes, pending.body]))) {
    model.bytes = Buffer.concat([model.bytes, pending.body]);
  } else if (pending?.kind === 'close' && seen?.closed === true) {
    model.closed = true;
  }
  model.pending = undefined;
  model.busy = false;
  if (model.state !== 'live') {
    if (seen !== undefined) throw new CheckFailure(`${where} is ${model.state}, but it is served (${seen.bytes.length} B)`);
    return;
  }
  if (seen === undefined) throw new CheckFailure(`${where} answers 404; it holds ${model.bytes.length} acknowledged bytes`);
  if (!sameBytes(seen.bytes, model.bytes)) {
    const at = seen.bytes.findIndex((byte, i) => byte !== model.bytes[i]);
    throw new CheckFailure(`${where}: served ${seen.bytes.length} B, acknowledged ${model.bytes.length} B (first difference at ${at})`);
  }
  if (seen.closed !== model.closed) throw new CheckFailure(`${where}: closed ${seen.closed}, the model says ${model.closed}`);
}

test(
  `crash during metadata writes, then disk loss: no manifest lists a missing segment (seed ${SEED}, ${CYCLES} cycles)`,
  { timeout: 180_000 },
  async () => {
    try {
      await scenario();
    } catch (error) {
      if (error instanceof CheckFailure) throw new Error(`[seed ${SEED}] ${error.message}\nserver output:\n${server?.stderrTail ?? ''}`);
      throw error;
    }
  },
);

async function scenario(): Promise<void> {
  {
    console.log(`crash-metadata test: CRASH_SEED=${SEED} CRASH_METADATA_CYCLES=${CYCLES}`);
    const startedMs = performance.now();
    const rng = new Rng(deriveSeed(SEED, 300));
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-crash-metadata-'));
    const objectsDir = path.join(dataDir, 'objects');
    const store = new FsObjectStore({ rootDir: objectsDir });
    server = new ChildServer({ port: await freePort(), dataDir, args: SERVE_ARGS });
    const models: Model[] = [];
    const counts = { created: 0, forked: 0, appended: 0, closed: 0, deleted: 0, inFlightAtKills: 0, verifiedIncarnations: 0 };

    const pickFree = (accept: (m: Model) => boolean): Model | undefined => {
      const candidates = models.filter((m) => !m.busy && m.state === 'live' && accept(m));
      return candidates.length === 0 ? undefined : candidates[rng.int(0, candidates.length - 1)];
    };

    /** One operation; an error (the kill) leaves it pending on its stream. */
    const step = async (client: HttpClient, life: number): Promise<void> => {
      const roll = rng.float();
      if (roll < 0.25 || models.filter((m) => m.state === 'live').length < 3) {
        const source = rng.chance(0.3) ? pickFree((m) => !m.closed) : undefined;
        const model: Model = { path: `l${life}-s${models.length}`, state: 'unknown', bytes: Buffer.alloc(0), closed: false, hasForks: false, busy: true, pending: undefined };
        models.push(model);
        const body = rng.chance(0.6) ? rng.bytes(rng.size(APPEND_BYTES_MAX)) : Buffer.alloc(0);
        const headers: Record<string, string> = { ...OCTET };
        if (source !== undefined) {
          source.busy = true;
          source.hasForks = true;
          headers['stream-forked-from'] = source.path;
        }
        model.pending = { kind: 'create', body, source };
        const response = await client.request('PUT', `/v1/stream/${model.path}`, { headers, body });
        if (response.status !== 201) throw new CheckFailure(`PUT ${model.path}: status ${response.status} ${response.body.toString('utf8', 0, 200)}`);
        model.state = 'live';
        model.bytes = Buffer.concat([source?.bytes ?? Buffer.alloc(0), body]);
        model.pending = undefined;
        model.busy = false;
        if (source !== undefined) {
          source.busy = false;
          counts.forked++;
        } else counts.created++;
        return;
      }
      const kind = roll < 0.75 ? 'append' : roll < 0.87 ? 'close' : 'delete';
      const model = pickFree((m) => !m.closed || kind === 'delete');
      if (model === undefined || (kind === 'delete' && model.hasForks)) {
        await new Promise((resolve) => setTimeout(resolve, 5)); // nothing to do now: let the timers run
        return;
      }
      model.busy = true;
      let response: Response;
      if (kind === 'append') {
        const body = rng.bytes(rng.size(APPEND_BYTES_MAX));
        model.pending = { kind, body };
        response = await client.request('POST', `/v1/stream/${model.path}`, { headers: OCTET, body });
        if (response.status === 204) model.bytes = Buffer.concat([model.bytes, body]);
        counts.appended++;
      } else if (kind === 'close') {
        model.pending = { kind };
        response = await client.request('POST', `/v1/stream/${model.path}`, { headers: { 'stream-closed': 'true' } });
        if (response.status === 204) model.closed = true;
        counts.closed++;
      } else {
        model.pending = { kind };
        response = await client.request('DELETE', `/v1/stream/${model.path}`);
        if (response.status === 204) model.state = 'deleted';
        counts.deleted++;
      }
      if (response.status !== 204) throw new CheckFailure(`${kind} ${model.path}: status ${response.status} ${response.body.toString('utf8', 0, 200)}`);
      model.pending = undefined;
      model.busy = false;
    };

    for (let life = 0; life < CYCLES; life++) {
      await server.start();
      const client = new HttpClient(server.port);
      try {
        for (const model of models) await check(client, model, `after restart ${life}`);
        let killed = false;
        const failures: unknown[] = [];
        const worker = async (): Promise<void> => {
          while (!killed) {
            try {
              await step(client, life);
            } catch (error) {
              if (error instanceof CheckFailure) failures.push(error);
              return; // the kill: the operation stays pending
            }
          }
        };
        const workers = Array.from({ length: WORKERS }, worker);
        await new Promise((resolve) => setTimeout(resolve, rng.int(LOAD_MS_MIN, LOAD_MS_MAX)));
        killed = true;
        server.kill();
        await server.waitExit();
        await Promise.all(workers);
        if (failures.length > 0) throw failures[0];
        counts.inFlightAtKills += models.filter((m) => m.pending !== undefined).length;
      } finally {
        client.destroy();
      }
      const report = await verifyStore(store);
      if (report.problems.length > 0) throw new CheckFailure(`[seed ${SEED}] after kill ${life}: ${report.problems.join('\n')}\nserver output:\n${server.stderrTail}`);
      counts.verifiedIncarnations += report.incarnations;
    }

    // The last life: settle the model, let every stream seal and its metadata reach the store.
    await server.start();
    let client = new HttpClient(server.port);
    for (const model of models) await check(client, model, 'after the last restart');
    const deadline = performance.now() + SETTLE_WAIT_MS;
    for (const model of models) {
      for (;;) {
        const stored = (await lookUpPath(store, model.path)).found?.manifest;
        const gone = stored === undefined || stored.stream?.deleted === 'hard';
        let settled: boolean;
        if (model.state === 'live') {
          settled = !gone && stored.stream?.sealedOffset === model.bytes.length && stored.stream.closed === model.closed;
        } else settled = gone;
        if (settled) break;
        if (performance.now() > deadline) {
          throw new CheckFailure(`[seed ${SEED}] ${model.path} (${model.state}, ${model.bytes.length} B, closed ${model.closed}): stored metadata ${JSON.stringify(stored?.stream)} not caught up within ${SETTLE_WAIT_MS} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    client.destroy();

    // The disk is lost: everything in the data directory but the objects.
    server.kill();
    await server.waitExit();
    for (const entry of await readdir(dataDir)) if (entry !== 'objects') await rm(path.join(dataDir, entry), { recursive: true, force: true });
    await server.start();
    client = new HttpClient(server.port);
    try {
      for (const model of models) {
        await check(client, model, 'on a fresh node after disk loss');
        if (model.state === 'live') {
          const head = await client.request('HEAD', `/v1/stream/${model.path}`);
          const sealed = parseOffsetToken(header(head, 'cairn-sealed-offset'))?.position;
          expect(sealed, `${model.path}: wholly sealed on the fresh node`).toBe(model.bytes.length);
        }
      }
    } finally {
      client.destroy();
    }
    await server.stop();

    const verify = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, [MAIN, 'verify', '--data-dir', dataDir!, '--no-progress'], (error, stdout) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout });
      });
    });
    const live = models.filter((m) => m.state === 'live').length;
    console.log(
      `crash-metadata test (seed ${SEED}): ${CYCLES} kills in ${((performance.now() - startedMs) / 1000).toFixed(1)} s; ` +
        `${counts.created} creates, ${counts.forked} forks, ${counts.appended} appends, ${counts.closed} closes, ${counts.deleted} deletes; ` +
        `${counts.inFlightAtKills} operations in flight at kills; ${live} of ${models.length} paths live at the end; ` +
        `${counts.verifiedIncarnations} incarnation checks after kills`,
    );
    expect(verify.stdout).toContain('consistent');
    expect(verify.code).toBe(0);
    expect(counts.created + counts.forked).toBeGreaterThan(CYCLES);
    expect(counts.deleted).toBeGreaterThan(0);
  }
}
