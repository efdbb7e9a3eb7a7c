/**
 * A client that adds 1 to the part of an offset token after `_` (y-durable-streams does so to
 * resume "after" a snapshot offset) reads exactly what the unchanged token reads: same body, same
 * Stream-Next-Offset, same ETag, same Cache-Control — in byte, text and JSON streams, from the hot
 * tail and from sealed segments (src/protocol/offset.ts, the slack digit).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

/** What y-durable-streams 0.2.7 does to an offset (read from its source for the fact, not copied). */
function addOneAfterUnderscore(offset: string): string {
  const [head, tail] = offset.split('_');
  return `${head}_${(BigInt(tail) + 1n).toString().padStart(tail.length, '0')}`;
}

const CONTENT_TYPES = [
  { type: 'application/octet-stream', bodies: ['\u0001\u0002abc', 'defgh', 'ij'] },
  { type: 'text/plain', bodies: ['first line\n', 'second line\n', 'third\n'] },
  { type: 'application/json', bodies: ['{"n":1}', '{"n":2,"s":"two"}', '[{"n":3},{"n":4}]'] },
];

describe.each([
  ['hot', {}],
  ['sealed', { segmentSizeBytes: 16, sealIdleMs: 0, chunkBytesMax: 4096 }],
] as const)('reads at an offset plus one, %s', (mode, settings) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(settings);
  });
  afterAll(() => server.stop());

  for (const { type, bodies } of CONTENT_TYPES) {
    test(type, async () => {
      const url = `${server.url}/v1/stream/inc-${mode}-${type.replace('/', '-')}`;
      expect((await fetch(url, { method: 'PUT', headers: { 'content-type': type } })).status).toBe(201);
      const offsets: string[] = [];
      for (const body of bodies) {
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': type }, body });
        expect(response.status).toBe(204);
        offsets.push(response.headers.get('stream-next-offset') ?? '');
      }
      const stream = server.registry.get(url.slice(url.lastIndexOf('/') + 1), { touch: false });
      if (mode === 'sealed') await waitFor(() => stream.sealedOffset === stream.durableOffset, 20_000);
      else expect(stream.sealedOffset).toBe(0);

      for (const offset of offsets.slice(0, -1)) {
        const exact = await fetch(`${url}?offset=${offset}`);
        const plusOne = await fetch(`${url}?offset=${addOneAfterUnderscore(offset)}`);
        expect(exact.status).toBe(200);
        expect(plusOne.status).toBe(200);
        const exactBody = Buffer.from(await exact.arrayBuffer());
        expect(Buffer.from(await plusOne.arrayBuffer()).equals(exactBody)).toBe(true);
        expect(exactBody.length).toBeGreaterThan(0);
        for (const header of ['stream-next-offset', 'etag', 'cache-control', 'stream-up-to-date']) {
          expect(plusOne.headers.get(header), header).toBe(exact.headers.get(header));
        }
      }
    });
  }

  test('tokens without the slack digit (saved before it existed) still name their position', async () => {
    const url = `${server.url}/v1/stream/legacy-${mode}`;
    await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } });
    const first = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'abc' });
    await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'def' });
    const token = first.headers.get('stream-next-offset') ?? '';
    expect(token).toMatch(/^\d{16}_\d{17}$/);
    const legacy = token.slice(0, -1);
    expect(await (await fetch(`${url}?offset=${legacy}`)).text()).toBe('def');
  });
});
