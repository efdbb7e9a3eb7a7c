/**
 * Restart on the same data directory: state comes back from the latest checkpoint plus the WAL
 * written after it — streams, bytes, forks, producer state, Stream-Seq, closure, soft deletes.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, test, vi } from 'vitest';
import { startServer, type RunningServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-recovery-'));
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function start(): Promise<RunningServer> {
  const server = await startServer(testConfig(dataDir, { checkpointWalBytes: 1024 }), { logger: pino({ level: 'silent' }) });
  servers.push(server);
  return server;
}

async function call(base: string, name: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}/v1/stream/${name}`, init);
}

async function snapshotOf(base: string): Promise<Record<string, unknown>> {
  const read = async (name: string) => {
    const response = await call(base, `${name}?offset=-1`);
    return { status: response.status, body: await response.text(), next: response.headers.get('stream-next-offset'), closed: response.headers.get('stream-closed') };
  };
  return {
    bin: await read('bin'),
    json: await read('json'),
    fork: await read('fork'),
    closed: await read('closed'),
    source: (await call(base, 'source', { method: 'HEAD' })).status,
  };
}

test('state survives restarts through a checkpoint and the WAL after it', async () => {
  let server = await start();
  const base = () => server.url;
  const text = { 'content-type': 'text/plain' };
  expect((await call(base(), 'bin', { method: 'PUT', headers: text, body: 'A' })).status).toBe(201);
  for (let i = 0; i < 50; i++) await call(base(), 'bin', { method: 'POST', headers: { ...text, 'stream-seq': String(i).padStart(4, '0') }, body: `-${i}` });
  await call(base(), 'json', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '[{"a":1},{"b":2}]' });
  const producer = (seq: number, body: string) =>
    call(base(), 'json', { method: 'POST', headers: { 'content-type': 'application/json', 'producer-id': 'p', 'producer-epoch': '3', 'producer-seq': String(seq) }, body });
  expect((await producer(0, '{"p":0}')).status).toBe(200);
  await call(base(), 'source', { method: 'PUT', headers: text, body: 'source-bytes' });
  await call(base(), 'fork', { method: 'PUT', headers: { 'stream-forked-from': '/v1/stream/source' } });
  await call(base(), 'fork', { method: 'POST', headers: text, body: '+fork' });
  await call(base(), 'source', { method: 'DELETE' });
  await call(base(), 'closed', { method: 'PUT', headers: { ...text, 'stream-closed': 'true' }, body: 'final' });

  // A checkpoint is taken once more than 1 KiB of WAL has accumulated (checked every second).
  await vi.waitFor(async () => expect((await readdir(path.join(dataDir, 'wal'))).some((f) => f.endsWith('.ckpt'))).toBe(true), { timeout: 5000, interval: 100 });
  expect((await producer(1, '{"p":1}')).status).toBe(200); // after the checkpoint: replayed from the WAL
  await call(base(), 'bin', { method: 'POST', headers: text, body: '-after' });

  const before = await snapshotOf(base());
  await server.close();
  server = await start();
  expect(await snapshotOf(base())).toEqual(before);
  expect(before.source).toBe(410);
  expect((before.fork as { body: string }).body).toBe('source-bytes+fork');
  expect((before.bin as { body: string }).body.endsWith('-48-49-after')).toBe(true);

  // Producer state and Stream-Seq survived: a retry is a duplicate, the next seq is accepted.
  expect((await producer(1, '{"p":1}')).status).toBe(204);
  expect((await producer(2, '{"p":2}')).status).toBe(200);
  expect((await call(base(), 'bin', { method: 'POST', headers: { ...text, 'stream-seq': '0049' }, body: 'x' })).status).toBe(409);
  expect(JSON.parse((await (await call(base(), 'json?offset=-1')).text()) as string)).toEqual([{ a: 1 }, { b: 2 }, { p: 0 }, { p: 1 }, { p: 2 }]);
  // Closure survived; the soft-deleted source still blocks its path.
  expect((await call(base(), 'closed', { method: 'POST', headers: text, body: 'more' })).status).toBe(409);
  expect((await call(base(), 'source', { method: 'PUT', headers: text })).status).toBe(409);
  // Deleting the last fork cascades to the soft-deleted source, and that survives a restart too.
  expect((await call(base(), 'fork', { method: 'DELETE' })).status).toBe(204);
  await server.close();
  server = await start();
  expect((await call(base(), 'source', { method: 'HEAD' })).status).toBe(404);
  expect((await call(base(), 'fork', { method: 'HEAD' })).status).toBe(404);
});

test('a re-created path never serves its earlier incarnation', async () => {
  const server = await start();
  const text = { 'content-type': 'text/plain' };
  await call(server.url, 'again', { method: 'PUT', headers: text, body: 'old-bytes' });
  const oldNext = (await call(server.url, 'again?offset=-1')).headers.get('stream-next-offset') as string;
  const oldEtag = (await call(server.url, 'again?offset=-1')).headers.get('etag');
  await call(server.url, 'again', { method: 'DELETE' });
  await call(server.url, 'again', { method: 'PUT', headers: text, body: 'new' });
  const fresh = await call(server.url, 'again?offset=-1');
  expect(await fresh.text()).toBe('new');
  expect(fresh.headers.get('stream-next-offset')).not.toBe(oldNext);
  expect(fresh.headers.get('etag')).not.toBe(oldEtag);
  expect((await call(server.url, `again?offset=${oldNext}`)).status).toBe(410);
});
