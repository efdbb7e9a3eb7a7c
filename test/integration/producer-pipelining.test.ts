/**
 * Idempotent producers with pipelined requests (PROTOCOL.md §5.2.1, "Concurrency Requirements"):
 * a request that overtakes its predecessor waits for it instead of failing with a false sequence
 * gap; a gap that stays is still a 409 naming the expected sequence number.
 */
import { afterEach, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function streamUrl(): Promise<string> {
  const server = await startTestServer({ durability: 'memory' });
  servers.push(server);
  const url = `${server.url}/v1/stream/pipelined`;
  expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
  return url;
}

function send(url: string, seq: number, body: string, epoch = 0): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'text/plain', 'producer-id': 'p', 'producer-epoch': String(epoch), 'producer-seq': String(seq) },
    body,
  });
}

test('requests that arrive ahead of their predecessors wait for them and are appended in sequence order', async () => {
  const url = await streamUrl();
  // seq 2 and 1 overtake seq 0; each waits until its predecessor is in.
  const second = send(url, 2, 'c;');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const first = send(url, 1, 'b;');
  await new Promise((resolve) => setTimeout(resolve, 50));
  const zeroth = await send(url, 0, 'a;');
  expect(zeroth.status).toBe(200);
  expect((await first).status).toBe(200);
  const last = await second;
  expect(last.status).toBe(200);
  expect(last.headers.get('producer-seq')).toBe('2');
  expect(await (await fetch(`${url}?offset=-1`)).text()).toBe('a;b;c;');
});

test('a gap that is not filled is answered 409 with the expected sequence number, and nothing is appended', async () => {
  const url = await streamUrl();
  expect((await send(url, 0, 'a;')).status).toBe(200);
  const gap = await send(url, 2, 'c;');
  expect(gap.status).toBe(409);
  expect(gap.headers.get('producer-expected-seq')).toBe('1');
  expect(gap.headers.get('producer-received-seq')).toBe('2');
  expect(await (await fetch(`${url}?offset=-1`)).text()).toBe('a;');
});

test('a waiting request gives way to a newer epoch: it is then fenced (403), not appended', async () => {
  const url = await streamUrl();
  expect((await send(url, 0, 'a;')).status).toBe(200);
  const stale = send(url, 2, 'stale;');
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect((await send(url, 0, 'b;', 1)).status).toBe(200);
  const fenced = await stale;
  expect(fenced.status).toBe(403);
  expect(fenced.headers.get('producer-epoch')).toBe('1');
  expect(await (await fetch(`${url}?offset=-1`)).text()).toBe('a;b;');
});
