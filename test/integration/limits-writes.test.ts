/**
 * Limits on writes over real HTTP (README "Limits"): the streams cap (`--streams-max`, 503) and
 * the per-client write rate (`--appends-per-second-max`, 429 + Retry-After), keyed by token when
 * auth is on and by client IP otherwise. A refused write is absent.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.stop();
});

async function start(overrides: Parameters<typeof startTestServer>[0]): Promise<TestServer> {
  const server = await startTestServer(overrides);
  servers.push(server);
  return server;
}

const text = { 'content-type': 'text/plain' };

describe('--streams-max', () => {
  test('past the cap a create gets 503 with Retry-After and nothing is created; existing streams still confirm, and a delete frees a slot', async () => {
    const server = await start({ streamsMax: 3 });
    const url = (name: string) => `${server.url}/v1/stream/${name}`;
    for (const name of ['s1', 's2', 's3']) expect((await fetch(url(name), { method: 'PUT', headers: text })).status).toBe(201);
    const refused = await fetch(url('s4'), { method: 'PUT', headers: text, body: 'first bytes' });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('30');
    expect(await refused.text()).toMatch(/maximum of 3 streams/);
    expect(server.registry.streamCount).toBe(3);
    expect((await fetch(url('s4'), { method: 'HEAD' })).status).toBe(404);
    // An idempotent re-create of an existing stream is not a new stream.
    expect((await fetch(url('s2'), { method: 'PUT', headers: text })).status).toBe(200);
    expect((await fetch(url('s1'), { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(url('s4'), { method: 'PUT', headers: text })).status).toBe(201);
  });
});

/** Appends numbered bodies until one is refused (at most `limit` requests); returns the accepted ones and the refusal. */
async function appendUntilRefused(url: string, headers: Record<string, string>, limit: number) {
  const accepted: string[] = [];
  for (let i = 0; i < limit; i++) {
    const body = `<${i}>`;
    const response = await fetch(url, { method: 'POST', headers: { ...text, ...headers }, body });
    if (response.status === 204) {
      accepted.push(body);
      continue;
    }
    return { accepted, refused: response, refusedBody: body };
  }
  throw new Error(`no append was refused in ${limit} requests`);
}

describe('--appends-per-second-max', () => {
  test('by client IP without auth: 429 with Retry-After and a message; the refused append is absent', async () => {
    const server = await start({ appendsPerSecondMax: 3 });
    const url = `${server.url}/v1/stream/rated`;
    expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
    const { accepted, refused, refusedBody } = await appendUntilRefused(url, {}, 1000);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await refused.text()).toMatch(/more than 3 writes per second from this client/);
    const stored = await (await fetch(`${url}?offset=-1`)).text();
    expect(stored).toBe(accepted.join(''));
    expect(stored).not.toContain(refusedBody);
    // Reads are not limited.
    for (let i = 0; i < 10; i++) expect((await fetch(`${url}?offset=-1`)).status).toBe(200);
  });

  test('by token with auth on: one token at its limit does not limit another from the same IP', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-rate-'));
    try {
      const file = path.join(dir, 'tokens.json');
      const grants = [{ paths: ['**'], operations: ['read', 'write'] }];
      await writeFile(file, JSON.stringify({ tokens: [{ name: 'a', token: 'token-a-0123456789abcdef', grants }, { name: 'b', token: 'token-b-0123456789abcdef', grants }] }));
      const server = await start({ appendsPerSecondMax: 3, authTokensFile: file });
      const url = `${server.url}/v1/stream/shared`;
      const a = { authorization: 'Bearer token-a-0123456789abcdef' };
      const b = { authorization: 'Bearer token-b-0123456789abcdef' };
      expect((await fetch(url, { method: 'PUT', headers: { ...text, ...b } })).status).toBe(201);
      const { accepted, refused } = await appendUntilRefused(url, a, 1000);
      expect(refused.status).toBe(429);
      // Token b (same IP) still writes right after a was refused.
      const other = await fetch(url, { method: 'POST', headers: { ...text, ...b }, body: '<b>' });
      expect(other.status).toBe(204);
      const stored = await (await fetch(`${url}?offset=-1`, { headers: b })).text();
      expect(stored).toBe(accepted.join('') + '<b>');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('--trust-proxy', () => {
  const appendAs = (url: string, forwardedFor: string) =>
    appendUntilRefused(url, { 'x-forwarded-for': forwardedFor }, 1000).then(({ refused }) => refused.status);

  test('behind a trusted proxy, X-Forwarded-For is the client: each forwarded client has its own budget', async () => {
    const server = await start({ appendsPerSecondMax: 3, trustProxy: ['127.0.0.1'] });
    const url = `${server.url}/v1/stream/proxied`;
    expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
    expect(await appendAs(url, '203.0.113.1')).toBe(429);
    const other = await fetch(url, { method: 'POST', headers: { ...text, 'x-forwarded-for': '203.0.113.2' }, body: 'x' });
    expect(other.status).toBe(204);
  });

  test('without it, X-Forwarded-For is ignored (a client cannot pick its own key)', async () => {
    const server = await start({ appendsPerSecondMax: 3 });
    const url = `${server.url}/v1/stream/direct`;
    expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
    expect(await appendAs(url, '203.0.113.1')).toBe(429);
    // Thirty more, each claiming another client: if the header were the key, all thirty would
    // pass. One key allows 3 per 1-second window, so at most 3 per window the requests touched
    // (bounded by their elapsed time, so a slow machine cannot fail this); all thirty would need
    // over 9 s of requests, which take milliseconds.
    const spoofedCount = 30;
    const startMs = performance.now();
    let accepted = 0;
    for (let i = 2; i < 2 + spoofedCount; i++) {
      const spoofed = await fetch(url, { method: 'POST', headers: { ...text, 'x-forwarded-for': `203.0.113.${i}` }, body: 'x' });
      if (spoofed.status === 204) accepted++;
      else expect(spoofed.status).toBe(429);
    }
    const windowsTouched = Math.ceil((performance.now() - startMs) / 1000) + 1;
    expect(accepted).toBeLessThanOrEqual(3 * windowsTouched);
  });
});

describe('--live-readers-max (the total)', () => {
  test('past the total a live read gets 503 with Retry-After, whatever the client', async () => {
    const server = await start({ liveReadersMax: 1 });
    const url = `${server.url}/v1/stream/live-total`;
    expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
    const holder = new AbortController();
    const first = await fetch(`${url}?offset=now&live=sse`, { signal: holder.signal });
    expect(first.status).toBe(200);
    // The SSE reader counts while it waits; wait until its first control event was written.
    const reader = (first.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const second = await fetch(`${url}?offset=now&live=long-poll`);
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(await second.text()).toMatch(/too many live readers/);
    holder.abort();
  });
});

describe('SSE and the socket inactivity timeout', () => {
  test('an SSE reader waiting longer than --body-timeout-ms stays connected and gets the next append', async () => {
    const server = await start({ bodyTimeoutMs: 300 });
    const url = `${server.url}/v1/stream/sse-wait`;
    expect((await fetch(url, { method: 'PUT', headers: text })).status).toBe(201);
    const response = await fetch(`${url}?offset=now&live=sse`);
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let seen = '';
    const readUntil = async (needle: string) => {
      while (!seen.includes(needle)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`SSE ended before "${needle}"; got: ${seen}`);
        seen += new TextDecoder().decode(value);
      }
    };
    await readUntil('event: control');
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // over three body timeouts of silence
    expect((await fetch(url, { method: 'POST', headers: text, body: 'after the wait' })).status).toBe(204);
    await readUntil('data:after the wait');
    await reader.cancel();
  });
});
