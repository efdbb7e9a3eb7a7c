/**
 * Integrity end to end (docs/storage-layout.md "Checksums"): every read unit's checksum is in the
 * manifest and verified when the unit is read from the object store. A flipped byte in a stored
 * segment answers 503 (STORED_DATA_CORRUPT) with no stream bytes, and the error log names the key.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, test } from 'vitest';
import { decodeManifest } from '../../src/manifest/manifest.ts';
import { listAll } from '../../src/object-store/index.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
});

test('a flipped byte in a stored segment is a 503 and an error log naming the key, never bytes', async () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  // No segment cache: every read goes to the object store.
  const server = await startTestServer({ sealIdleMs: 0, segmentCacheBytes: 0 }, { logger: pino({ level: 'warn' }, sink) });
  servers.push(server);
  const url = `${server.url}/v1/stream/rot`;
  const body = Buffer.from('the quick brown fox jumps over the lazy dog');
  expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body })).status).toBe(201);
  await waitFor(() => server.registry.get('rot', { touch: false }).sealedOffset === body.length);

  const keys: string[] = [];
  for await (const object of listAll(server.tiering.store, '')) keys.push(object.key);
  const manifestKey = keys.filter((key) => key.endsWith('.json')).sort().at(-1) ?? '';
  const manifest = decodeManifest(manifestKey, (await server.tiering.store.get(manifestKey)).body);
  expect(manifest.segments[0].unitSha256).toHaveLength(manifest.segments[0].unitEnds.length);

  const intact = await fetch(`${url}?offset=-1`);
  expect(intact.status).toBe(200);
  expect(Buffer.from(await intact.arrayBuffer())).toEqual(body);

  const segmentKey = keys.find((key) => key.endsWith('.seg')) ?? '';
  const stored = Buffer.from((await server.tiering.store.get(segmentKey)).body);
  stored[7] ^= 0x01;
  await server.tiering.store.put(segmentKey, stored, { overwrite: true });

  const rotten = await fetch(`${url}?offset=-1`);
  const text = await rotten.text();
  expect(rotten.status).toBe(503);
  expect(text).not.toContain('quick');
  expect(lines.some((line) => line.includes(segmentKey) && line.includes('"level":50'))).toBe(true);
});
