/**
 * `cairn recover` (src/recover.ts): over a data directory that lost its WAL, loads every stored
 * stream (a fork and its source included) into the WAL, so the next start serves them without
 * looking them up (no LIST on first use) and byte-exact.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import { shardPrefixes } from '../../src/recover.ts';
import { startServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const run = promisify(execFile);
const MAIN = path.resolve('src/cli/main.ts');
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

test('recover loads every stored stream; the next start serves them without a lookup', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-recover-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const config = testConfig(dataDir, { sealIdleMs: 0, segmentSizeBytes: 16, metadataFlushMs: 10 });
  const first = await startServer(config, { logger: pino({ level: 'warn' }) });
  const octet = { 'content-type': 'application/octet-stream' };
  expect((await fetch(`${first.url}/v1/stream/src`, { method: 'PUT', headers: octet, body: 'a'.repeat(40) })).status).toBe(201);
  expect((await fetch(`${first.url}/v1/stream/fk`, { method: 'PUT', headers: { ...octet, 'stream-forked-from': 'src' }, body: 'b'.repeat(20) })).status).toBe(201);
  expect((await fetch(`${first.url}/v1/stream/gone`, { method: 'PUT', headers: octet, body: 'x' })).status).toBe(201);
  expect((await fetch(`${first.url}/v1/stream/gone`, { method: 'DELETE' })).status).toBe(204);
  await waitFor(() => first.registry.get('fk', { touch: false }).sealedOffset === 60 && !first.registry.get('fk', { touch: false }).metaDirty);
  await waitFor(() => !first.registry.get('src', { touch: false }).metaDirty);
  await first.tiering.deletesDrained();
  const before = await (await fetch(`${first.url}/v1/stream/fk?offset=-1`)).text();
  await first.close();
  for (const entry of await readdir(dataDir)) if (entry !== 'objects') await rm(path.join(dataDir, entry), { recursive: true, force: true });

  const { stdout } = await run(process.execPath, [MAIN, 'recover', '--data-dir', dataDir, '--no-progress', '--log-level', 'warn']);
  expect(stdout).toContain('loaded: 2');
  // The 256 hash shards listed (one page each), the two newest manifests read (the deleted stream's objects are gone).
  expect(stdout).toContain('requests: 256 LIST, 2 GET');

  const second = await startServer(config, { logger: pino({ level: 'warn' }) });
  cleanup.push(() => second.close());
  const listsBefore = second.tiering.stats().objectStore.list.requestCount;
  expect(second.registry.streamCount).toBe(2);
  const read = await fetch(`${second.url}/v1/stream/fk?offset=-1`);
  expect(await read.text()).toBe(before);
  expect(second.tiering.stats().objectStore.list.requestCount).toBe(listsBefore);
  expect((await fetch(`${second.url}/v1/stream/gone`, { method: 'HEAD' })).status).toBe(404);
}, 60_000);

test('recover lists the hash shards under a key prefix in parallel; a longer prefix as it is', () => {
  expect(shardPrefixes('')).toHaveLength(256);
  expect(shardPrefixes('').slice(0, 2)).toEqual(['00/', '01/']);
  expect(shardPrefixes('a')).toEqual([...'0123456789abcdef'].map((digit) => `a${digit}/`));
  expect(shardPrefixes('a3/')).toEqual(['a3/']);
  expect(shardPrefixes('a3/0f')).toEqual(['a3/0f']);
});
