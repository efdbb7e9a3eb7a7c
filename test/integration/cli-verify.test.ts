/**
 * `cairn verify` (src/cli/verify-command.ts) over the filesystem store a real server wrote: exit 0
 * and "consistent" for sealed streams and a fork; exit 1 naming the key after a flipped byte in a
 * segment (bit rot) or a deleted segment; `--help` documents it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import { FsObjectStore, listAll } from '../../src/object-store/index.ts';
import { startServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const run = promisify(execFile);
const MAIN = path.resolve('src/cli/main.ts');
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function verify(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [MAIN, 'verify', ...args]);
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

test('verify passes a consistent store and names the key of a flipped byte or a missing segment', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-verify-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const server = await startServer(testConfig(dataDir, { sealIdleMs: 0, segmentSizeBytes: 16 }), { logger: pino({ level: 'warn' }) });
  const octet = { 'content-type': 'application/octet-stream' };
  expect((await fetch(`${server.url}/v1/stream/v`, { method: 'PUT', headers: octet, body: 'a'.repeat(40) })).status).toBe(201);
  expect((await fetch(`${server.url}/v1/stream/f`, { method: 'PUT', headers: { ...octet, 'stream-forked-from': 'v' }, body: 'b'.repeat(20) })).status).toBe(201);
  await waitFor(() => server.registry.get('v', { touch: false }).sealedOffset === 40 && server.registry.get('f', { touch: false }).sealedOffset === 60);
  await waitFor(() => !server.registry.get('f', { touch: false }).metaDirty);
  await server.close();

  const good = await verify('--data-dir', dataDir, '--no-progress');
  expect(good.stdout).toContain('consistent');
  expect(good.stdout).toContain('incarnations: 2');
  expect(good.code).toBe(0);

  const store = new FsObjectStore({ rootDir: path.join(dataDir, 'objects') });
  const segments: string[] = [];
  for await (const object of listAll(store, '')) if (object.key.endsWith('.seg')) segments.push(object.key);
  const rotten = segments[0];
  const bytes = Buffer.from((await store.get(rotten)).body);
  bytes[3] ^= 0x40;
  await store.put(rotten, bytes, { overwrite: true });
  const bad = await verify('--data-dir', dataDir, '--no-progress');
  expect(bad.code).toBe(1);
  expect(bad.stdout).toContain(`PROBLEM ${rotten}`);

  await store.delete(segments[1]);
  const missing = await verify('--data-dir', dataDir, '--no-progress');
  expect(missing.code).toBe(1);
  expect(missing.stdout).toContain(`${segments[1]}, which is missing`);

  const help = await run(process.execPath, [MAIN, 'verify', '--help']);
  expect(help.stdout).toContain('--key-prefix');
}, 60_000);
