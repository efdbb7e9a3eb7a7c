/**
 * An append the write-ahead log cannot hold in one record is refused with 413 and a readable
 * message, not 503 (retrying the same body can never succeed), and leaves nothing behind: the
 * tail does not move, a later append lands where the refused one would have, and a read returns
 * only accepted bytes. The WAL frame limit is 256 MiB (above the largest `--max-append-bytes`),
 * so this test lowers it to 4 MiB for the real WAL, registry and HTTP stack.
 */
import { afterAll, describe, expect, test, vi } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

vi.mock('../../src/wal/wal-limits.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../src/wal/wal-limits.ts')>()),
  WAL_FRAME_PAYLOAD_BYTES_MAX: 4 * 1024 * 1024,
}));

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.stop();
});

const text = { 'content-type': 'text/plain' };

describe('an append over the WAL record limit', () => {
  test('gets 413 with a readable message, and nothing is stored', async () => {
    const server = await startTestServer({});
    servers.push(server);
    const url = `${server.url}/v1/stream/big`;
    expect((await fetch(url, { method: 'PUT', headers: text, body: 'first;' })).status).toBe(201);
    const before = (await fetch(url, { method: 'HEAD' })).headers.get('stream-next-offset');

    const refused = await fetch(url, { method: 'POST', headers: text, body: Buffer.alloc(5 * 1024 * 1024, 0x78) });
    expect(refused.status).toBe(413);
    expect(refused.headers.get('retry-after')).toBeNull();
    expect(await refused.text()).toMatch(/write-ahead log record of \d+ bytes is over the limit of \d+ bytes/);

    expect((await fetch(url, { method: 'HEAD' })).headers.get('stream-next-offset')).toBe(before);
    const accepted = await fetch(url, { method: 'POST', headers: text, body: 'second' });
    expect(accepted.status).toBe(204);
    const read = await fetch(`${url}?offset=-1`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('first;second');
  });

  test('a create whose initial body is over the limit gets 413 and creates nothing', async () => {
    const server = await startTestServer({});
    servers.push(server);
    const url = `${server.url}/v1/stream/big-create`;
    const refused = await fetch(url, { method: 'PUT', headers: text, body: Buffer.alloc(5 * 1024 * 1024, 0x78) });
    expect(refused.status).toBe(413);
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(404);
  });
});
