/**
 * Restart with large appends left in the WAL (src/wal/wal-file-bytes.ts): replayed appends of at
 * least WAL_ATTACHMENT_BYTES_MIN bytes stay in their WAL files until first needed. They must read
 * back byte-exact, fork, seal into segments and go into a checkpoint like bytes held in memory.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, expect, test, vi } from 'vitest';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { formatOffset, parseOffsetToken } from '../../src/protocol/offset.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-recovery-deferred-'));
const servers: RunningServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.close();
  await rm(dataDir, { recursive: true, force: true });
});

const DAY_MS = 86_400_000;
/** Nothing leaves the WAL: no checkpoint, no seal. */
const walOnly: Partial<ServeConfig> = { checkpointWalBytes: 1 << 30, segmentSizeBytes: 1 << 30, sealIdleMs: DAY_MS, unsealedAgeMsMax: DAY_MS };

async function start(overrides: Partial<ServeConfig>): Promise<RunningServer> {
  const server = await startServer(testConfig(dataDir, overrides), { logger: pino({ level: 'silent' }) });
  servers.push(server);
  return server;
}

const octets = { 'content-type': 'application/octet-stream' };
const url = (server: RunningServer, name: string) => `${server.url}/v1/stream/${name}`;
async function readAll(server: RunningServer, name: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let offset = '-1';
  for (let i = 0; i < 1000; i++) {
    const response = await fetch(`${url(server, name)}?offset=${offset}`);
    expect(response.status).toBe(200);
    parts.push(Buffer.from(await response.arrayBuffer()));
    offset = response.headers.get('stream-next-offset') as string;
    if (response.headers.get('stream-up-to-date') === 'true') return Buffer.concat(parts);
  }
  throw new Error(`${name}: not up to date after 1000 reads`);
}

test('large appends replayed from the WAL read back, fork, checkpoint and seal byte-exact', async () => {
  let server = await start(walOnly);
  const expected = new Map<string, Buffer>();
  const first = randomBytes(20_000);
  expect((await fetch(url(server, 'big'), { method: 'PUT', headers: octets, body: first })).status).toBe(201);
  const appends = [first];
  for (const bytes of [16_384, 70_000, 100, 300_000, 40_000, 17_000]) {
    const data = randomBytes(bytes);
    appends.push(data);
    expect((await fetch(url(server, 'big'), { method: 'POST', headers: octets, body: data })).status).toBe(204);
  }
  expected.set('big', Buffer.concat(appends));
  const json: Record<string, string>[] = [{ a: 'x'.repeat(30_000) }, { b: 'y'.repeat(50_000) }];
  const jsonType = { 'content-type': 'application/json' };
  await fetch(url(server, 'json'), { method: 'PUT', headers: jsonType, body: JSON.stringify([json[0]]) });
  await fetch(url(server, 'json'), { method: 'POST', headers: jsonType, body: JSON.stringify(json[1]) });
  await server.close();

  // Restart 1: everything is replayed from the WAL, the large appends deferred.
  server = await start(walOnly);
  expect(await readAll(server, 'big')).toEqual(expected.get('big'));
  expect(await readAll(server, 'big')).toEqual(expected.get('big'));
  expect(JSON.parse((await readAll(server, 'json')).toString())).toEqual(json);
  // A fork of a stream whose bytes are deferred, at a position inside a deferred append.
  const forkAt = 20_000 + 16_384 + 1_000;
  const headers = (await fetch(`${url(server, 'big')}?offset=-1`)).headers;
  const atOffset = formatOffset(parseOffsetToken(headers.get('stream-next-offset') as string)!.incarnation, forkAt);
  const forked = await fetch(url(server, 'fork'), { method: 'PUT', headers: { ...octets, 'stream-forked-from': '/v1/stream/big', 'stream-fork-offset': atOffset } });
  expect(forked.status).toBe(201);
  expect(await readAll(server, 'fork')).toEqual(expected.get('big')!.subarray(0, forkAt));
  await server.close();

  // Restart 2, deferred again, with small segments: the sealer reads the deferred bytes to upload.
  server = await start({ ...walOnly, segmentSizeBytes: 64 * 1024, sealIdleMs: 10, unsealedAgeMsMax: 10 });
  await vi.waitFor(
    async () => {
      const sealed = (await fetch(url(server, 'big'), { method: 'HEAD' })).headers.get('cairn-sealed-offset');
      expect(parseOffsetToken(sealed ?? '')?.position).toBe(expected.get('big')!.length);
    },
    { timeout: 20_000, interval: 100 },
  );
  expect(await readAll(server, 'big')).toEqual(expected.get('big'));
  await server.close();

  // Restart 3 with a checkpoint: its snapshot loads whatever is still deferred (the JSON stream).
  server = await start({ ...walOnly, checkpointWalBytes: 1024 });
  await fetch(url(server, 'json'), { method: 'POST', headers: jsonType, body: JSON.stringify({ c: 'z'.repeat(20_000) }) });
  json.push({ c: 'z'.repeat(20_000) });
  await vi.waitFor(async () => expect((await readdir(path.join(dataDir, 'wal'))).some((f) => f.endsWith('.ckpt'))).toBe(true), { timeout: 10_000, interval: 100 });
  await server.close();
  server = await start(walOnly);
  expect(JSON.parse((await readAll(server, 'json')).toString())).toEqual(json);
  expect(await readAll(server, 'big')).toEqual(expected.get('big'));
}, 120_000);
