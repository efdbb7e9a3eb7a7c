/**
 * The object store is the source of truth (docs/storage-layout.md): a node loses its whole data
 * directory (`kill -9`, then the WAL, checkpoints and node id are deleted; the objects stay) and a
 * fresh node started over the same store serves every sealed stream exactly as before — bytes,
 * offsets, ETags, headers, closure, 410 below retention and for a soft-deleted fork source —,
 * answers a producer's retry of a sealed sequence as a duplicate and accepts its next one, and
 * gives a re-created path a new incarnation. Run on the filesystem store and on a real S3 server
 * (test/support/s3-server.ts: `S3_ENDPOINT`, else a local Ceph RGW; skipped loudly without one).
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import type { StoredStreamMeta } from '../../src/manifest/manifest.ts';
import { verifyStore } from '../../src/manifest/store-verify.ts';
import { lookUpPath } from '../../src/manifest/stream-lookup.ts';
import { FaultInjectingObjectStore, FsObjectStore, injectedUnavailable, MemoryObjectStore, type ObjectStore } from '../../src/object-store/index.ts';
import { parseOffsetToken } from '../../src/protocol/offset.ts';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import { findS3ServerSource, startS3Server, warnS3Unavailable, type S3TestServer } from '../support/s3-server.ts';
import { waitFor } from '../support/streams.ts';
import { startTestServer, testConfig } from '../support/server.ts';
import { startServer } from '../../src/server.ts';
import { pino } from 'pino';

const TIERING = ['--seal-idle-ms', '0', '--segment-size-bytes', '64', '--metadata-flush-ms', '20'];
const WAIT_MS = 60_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

interface Backend {
  args: string[];
  store: ObjectStore;
  /** Deletes what a lost disk loses: everything in the data directory but the fs store's objects. */
  loseDisk(): Promise<void>;
  /** The store holds this test's objects only: `cairn verify`'s check must find it consistent. */
  privateStore?: boolean;
}

/** What a client sees of one stream: HEAD and a whole catch-up read from -1 and from a token. */
async function observe(base: string, name: string, midOffset?: string): Promise<Record<string, unknown>> {
  const url = `${base}/v1/stream/${name}`;
  const head = await fetch(url, { method: 'HEAD' });
  const seen: Record<string, unknown> = { headStatus: head.status };
  for (const header of ['content-type', 'stream-next-offset', 'stream-closed', 'stream-ttl', 'stream-expires-at', 'cairn-sealed-offset', 'cairn-earliest-offset']) {
    seen[`head ${header}`] = head.headers.get(header);
  }
  const reads: unknown[] = [];
  for (let offset = midOffset ?? '-1', i = 0; i < 50; i++) {
    const response = await fetch(`${url}?offset=${offset}`);
    const body = Buffer.from(await response.arrayBuffer()).toString('base64');
    reads.push({ offset, status: response.status, etag: response.headers.get('etag'), next: response.headers.get('stream-next-offset'), closed: response.headers.get('stream-closed'), upToDate: response.headers.get('stream-up-to-date'), body });
    if (response.status !== 200 || response.headers.get('stream-up-to-date') === 'true') break;
    offset = response.headers.get('stream-next-offset') ?? '';
  }
  seen.reads = reads;
  return seen;
}

async function call(base: string, name: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Response> {
  const response = await fetch(`${base}/v1/stream/${name}`, init);
  await response.arrayBuffer();
  return response;
}

async function storedMeta(store: ObjectStore, name: string): Promise<StoredStreamMeta | undefined> {
  return (await lookUpPath(store, name)).found?.manifest.stream;
}

async function scenario(backendOf: (dataDir: string) => Backend): Promise<void> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-disk-loss-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const backend = backendOf(dataDir);
  const server = new ChildServer({ port: await freePort(), dataDir, args: [...TIERING, ...backend.args] });
  cleanup.push(() => server.stop());
  await server.start();
  const base = `http://127.0.0.1:${server.port}`;
  const octet = { 'content-type': 'application/octet-stream' };
  const json = { 'content-type': 'application/json' };
  const run = `r${Date.now().toString(36)}`; // S3 buckets outlive a test run: fresh paths each time
  const name = (n: string) => `${run}/${n}`;

  // JSON stream: three appends, then a plain close.
  expect((await call(base, name('json'), { method: 'PUT', headers: json })).status).toBe(201);
  for (const message of [{ a: 1 }, { b: 'two' }, [3]]) {
    expect((await call(base, name('json'), { method: 'POST', headers: json, body: JSON.stringify([message]) })).status).toBe(204);
  }
  expect((await call(base, name('json'), { method: 'POST', headers: { 'stream-closed': 'true' } })).status).toBe(204);
  // Binary stream with an idempotent producer mid-sequence, and Stream-Seq.
  expect((await call(base, name('bin'), { method: 'PUT', headers: octet })).status).toBe(201);
  for (let seq = 0; seq < 3; seq++) {
    const producer = { 'producer-id': 'p1', 'producer-epoch': '2', 'producer-seq': String(seq), 'stream-seq': `s${seq}` };
    const body = Buffer.alloc(50, 97 + seq);
    expect((await call(base, name('bin'), { method: 'POST', headers: { ...octet, ...producer }, body })).status).toBe(200);
  }
  // Closed by a producer with its final append.
  expect((await call(base, name('pclosed'), { method: 'PUT', headers: octet })).status).toBe(201);
  const closer = { 'producer-id': 'c', 'producer-epoch': '0', 'producer-seq': '0', 'stream-closed': 'true' };
  expect((await call(base, name('pclosed'), { method: 'POST', headers: { ...octet, ...closer }, body: 'last words' })).status).toBe(200);
  // TTL and Expires-At.
  expect((await call(base, name('ttl'), { method: 'PUT', headers: { ...octet, 'stream-ttl': '86400' }, body: 'ttl' })).status).toBe(201);
  const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
  expect((await call(base, name('exp'), { method: 'PUT', headers: { ...octet, 'stream-expires-at': expiresAt }, body: 'exp' })).status).toBe(201);
  // Retention by bytes: the head segments are dropped, reads below answer 410.
  expect((await call(base, name('ret'), { method: 'PUT', headers: { ...octet, 'cairn-retention-bytes': '64' } })).status).toBe(201);
  for (let i = 0; i < 6; i++) expect((await call(base, name('ret'), { method: 'POST', headers: octet, body: Buffer.alloc(64, 48 + i) })).status).toBe(204);
  // Forks: of bin at its tail, a fork of that fork, and a fork whose source is then deleted.
  const binHead = await fetch(`${base}/v1/stream/${name('bin')}`, { method: 'HEAD' });
  const binTail = binHead.headers.get('stream-next-offset') ?? '';
  expect((await call(base, name('fork'), { method: 'PUT', headers: { ...octet, 'stream-forked-from': name('bin') }, body: 'fork-own' })).status).toBe(201);
  expect((await call(base, name('fork2'), { method: 'PUT', headers: { ...octet, 'stream-forked-from': name('fork') }, body: 'fork2-own' })).status).toBe(201);
  expect((await call(base, name('src'), { method: 'PUT', headers: octet, body: 'source bytes' })).status).toBe(201);
  expect((await call(base, name('orphan'), { method: 'PUT', headers: { ...octet, 'stream-forked-from': name('src') }, body: '+orphan' })).status).toBe(201);
  expect((await call(base, name('src'), { method: 'DELETE' })).status).toBe(204);
  // A stream deleted outright must stay deleted.
  expect((await call(base, name('gone'), { method: 'PUT', headers: octet, body: 'bye' })).status).toBe(201);
  expect((await call(base, name('gone'), { method: 'DELETE' })).status).toBe(204);

  const live = ['json', 'bin', 'pclosed', 'ttl', 'exp', 'ret', 'fork', 'fork2', 'orphan'];
  // Wait until every stream is sealed (HEAD) and its stored metadata has caught up.
  for (const n of live) {
    await waitFor(async () => {
      const head = await fetch(`${base}/v1/stream/${name(n)}`, { method: 'HEAD' });
      return head.headers.get('cairn-sealed-offset') === head.headers.get('stream-next-offset');
    }, WAIT_MS);
  }
  await waitFor(async () => (await storedMeta(backend.store, name('json')))?.closed === true, WAIT_MS);
  await waitFor(async () => (await storedMeta(backend.store, name('pclosed')))?.closedBy?.[0] === 'c', WAIT_MS);
  await waitFor(async () => (await storedMeta(backend.store, name('bin')))?.producers[0]?.[2] === 2, WAIT_MS);
  await waitFor(async () => (await storedMeta(backend.store, name('src')))?.deleted === 'soft', WAIT_MS);
  await waitFor(async () => (await storedMeta(backend.store, name('gone'))) === undefined || (await storedMeta(backend.store, name('gone')))?.deleted === 'hard', WAIT_MS);
  await waitFor(async () => (await fetch(`${base}/v1/stream/${name('ret')}?offset=-1`)).headers.get('stream-next-offset') !== null, WAIT_MS);
  await waitFor(async () => {
    const head = await fetch(`${base}/v1/stream/${name('ret')}`, { method: 'HEAD' });
    return parseOffsetToken(head.headers.get('cairn-earliest-offset') ?? '')?.position !== 0;
  }, WAIT_MS);
  await waitFor(async () => (await lookUpPath(backend.store, name('ret'))).found?.manifest.retainedStart !== 0, WAIT_MS);

  const before: Record<string, unknown> = {};
  for (const n of live) before[n] = await observe(base, name(n));
  before['bin from the middle'] = await observe(base, name('bin'), binTail.replace(/_\d+$/, `_${'50'.padStart(16, '0')}`));
  before['ret from 0'] = await observe(base, name('ret'), (await fetch(`${base}/v1/stream/${name('ret')}`, { method: 'HEAD' })).headers.get('stream-next-offset')?.replace(/_\d+$/, `_${'0'.padStart(16, '0')}`));
  before.src = await observe(base, name('src'));
  before.gone = await observe(base, name('gone'));
  expect((before.src as { headStatus: number }).headStatus).toBe(410);
  expect((before.gone as { headStatus: number }).headStatus).toBe(404);

  if (backend.privateStore === true) expect((await verifyStore(backend.store)).problems).toEqual([]);

  // The disk is lost.
  server.kill();
  await server.waitExit();
  await backend.loseDisk();
  await server.start();

  const after: Record<string, unknown> = {};
  for (const n of live) after[n] = await observe(base, name(n));
  after['bin from the middle'] = await observe(base, name('bin'), binTail.replace(/_\d+$/, `_${'50'.padStart(16, '0')}`));
  after['ret from 0'] = (before['ret from 0'] as { reads: { offset: string }[] }).reads[0] && (await observe(base, name('ret'), (before['ret from 0'] as { reads: { offset: string }[] }).reads[0].offset));
  after.src = await observe(base, name('src'));
  after.gone = await observe(base, name('gone'));
  expect(after).toEqual(before);

  // A producer's retry of its sealed sequence is a duplicate; its next one is accepted.
  const p1 = (seq: number) => ({ ...octet, 'producer-id': 'p1', 'producer-epoch': '2', 'producer-seq': String(seq) });
  const retry = await call(base, name('bin'), { method: 'POST', headers: p1(2), body: Buffer.alloc(50, 99) });
  expect(retry.status).toBe(204);
  expect(retry.headers.get('stream-next-offset')).toBe(binTail);
  const next = await call(base, name('bin'), { method: 'POST', headers: { ...p1(3), 'stream-seq': 's3' }, body: Buffer.alloc(10, 100) });
  expect(next.status).toBe(200);
  expect(parseOffsetToken(next.headers.get('stream-next-offset') ?? '')?.position).toBe(160);
  // Stream-Seq continues from the stored one.
  expect((await call(base, name('bin'), { method: 'POST', headers: { ...octet, 'stream-seq': 's1' }, body: 'x' })).status).toBe(409);
  // A closed stream stays closed; the closing producer's retry is a duplicate.
  expect((await call(base, name('json'), { method: 'POST', headers: json, body: '[1]' })).status).toBe(409);
  expect((await call(base, name('pclosed'), { method: 'POST', headers: { ...octet, ...closer }, body: 'last words' })).status).toBe(204);
  // A re-created path gets a new, larger incarnation: no offset, ETag or cache key repeats.
  const oldIncarnation = parseOffsetToken(binTail)?.incarnation ?? 0;
  expect((await call(base, name('bin'), { method: 'DELETE' })).status).toBe(204);
  expect((await call(base, name('fork'), { method: 'DELETE' })).status).toBe(204);
  const recreated = await call(base, name('gone'), { method: 'PUT', headers: octet, body: 'again' });
  expect(recreated.status).toBe(201);
  const goneToken = (before.gone as { reads: unknown[] }).reads.length; // gone answered 404: no token to compare
  expect(goneToken).toBe(1);
  const again = await call(base, name('json'), { method: 'DELETE' });
  expect(again.status).toBe(204);
  const fresh = await call(base, name('json'), { method: 'PUT', headers: json });
  expect(fresh.status).toBe(201);
  const freshIncarnation = parseOffsetToken(fresh.headers.get('stream-next-offset') ?? '')?.incarnation ?? 0;
  const jsonIncarnation = parseOffsetToken(String((before.json as Record<string, unknown>)['head stream-next-offset']))?.incarnation ?? 0;
  expect(freshIncarnation).toBeGreaterThan(jsonIncarnation);
  expect(freshIncarnation).toBeGreaterThan(oldIncarnation);
}

describe('disk loss on the filesystem store', () => {
  test('every sealed stream answers as before on a fresh node', async () => {
    await scenario((dataDir) => ({
      args: [],
      privateStore: true,
      store: new FsObjectStore({ rootDir: path.join(dataDir, 'objects') }),
      async loseDisk() {
        for (const entry of await readdir(dataDir)) if (entry !== 'objects') await rm(path.join(dataDir, entry), { recursive: true, force: true });
      },
    }));
  }, 180_000);
});

const source = findS3ServerSource();
let s3: S3TestServer | undefined;
afterAll(async () => {
  await s3?.stop();
}, 60_000);

describe('disk loss on S3', () => {
  if (source.kind === 'unavailable') {
    warnS3Unavailable(source.reason);
    test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
      throw new Error(`no S3-compatible server: ${source.reason}`);
    });
    test.skip(`disk loss on S3 (skipped: ${source.reason})`, () => {});
    return;
  }
  test('every sealed stream answers as before on a fresh node', async () => {
    s3 = await startS3Server(source);
    const config = s3.storeConfig();
    if (config.credentials !== undefined) {
      process.env.AWS_ACCESS_KEY_ID = config.credentials.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = config.credentials.secretAccessKey;
    }
    const { S3ObjectStore } = await import('../../src/object-store/s3-store.ts');
    const store = new S3ObjectStore({ bucket: config.bucket, prefix: config.prefix, endpoint: config.endpoint, region: config.region, forcePathStyle: true });
    const args = ['--object-store', 's3', '--s3-bucket', config.bucket, '--s3-endpoint', config.endpoint ?? '', '--s3-region', config.region ?? 'us-east-1', '--s3-force-path-style'];
    if (config.prefix !== undefined) args.push('--s3-prefix', config.prefix);
    await scenario((dataDir) => ({ args, store, loseDisk: () => rm(dataDir, { recursive: true, force: true }) }));
  }, 300_000);
});

describe('a stream loaded from the object store, then written', () => {
  test('survives a restart with its disk: the WAL holds a load record before the first write', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-load-replay-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const config = testConfig(dataDir, { sealIdleMs: 0, metadataFlushMs: 10 });
    const octet = { 'content-type': 'application/octet-stream' };
    const first = await startServer(config, { logger: pino({ level: 'warn' }) });
    expect((await fetch(`${first.url}/v1/stream/l`, { method: 'PUT', headers: octet, body: 'sealed;' })).status).toBe(201);
    await waitFor(() => first.registry.get('l', { touch: false }).sealedOffset === 7 && !first.registry.get('l', { touch: false }).metaDirty);
    await first.close();
    for (const entry of await readdir(dataDir)) if (entry !== 'objects') await rm(path.join(dataDir, entry), { recursive: true, force: true });

    // A fresh node: the stream is loaded on first use, then written (no seal: the bytes stay in the WAL).
    const second = await startServer({ ...config, sealIdleMs: 3_600_000 }, { logger: pino({ level: 'warn' }) });
    const append = await fetch(`${second.url}/v1/stream/l`, { method: 'POST', headers: octet, body: 'in the wal' });
    expect(append.status).toBe(204);
    await second.close();

    const third = await startServer({ ...config, sealIdleMs: 3_600_000 }, { logger: pino({ level: 'warn' }) });
    cleanup.push(() => third.close());
    const read = await fetch(`${third.url}/v1/stream/l?offset=-1`);
    expect(await read.text()).toBe('sealed;in the wal');
    expect(read.headers.get('stream-next-offset')).toBe(append.headers.get('stream-next-offset'));
  }, 60_000);
});

describe('lazy lookup while the object store is down', () => {
  test('a create still succeeds (the WAL acknowledges it); a read of an unknown path answers 503', async () => {
    const store = new FaultInjectingObjectStore(new MemoryObjectStore());
    const server = await startTestServer({ logLevel: 'silent' }, { objectStore: store, retryPolicy: { attemptsMax: 2, backoffBaseMs: 5, backoffMaxMs: 20, elapsedMsMax: 200 } });
    cleanup.push(() => server.stop());
    store.inject({ when: () => true, action: { kind: 'fail', error: injectedUnavailable } });
    const created = await fetch(`${server.url}/v1/stream/new`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'hi' });
    expect(created.status).toBe(201);
    expect(await (await fetch(`${server.url}/v1/stream/new?offset=-1`)).text()).toBe('hi');
    const unknown = await fetch(`${server.url}/v1/stream/elsewhere?offset=-1`);
    expect(unknown.status).toBe(503);
    store.clearFaults();
  }, 60_000);
});
