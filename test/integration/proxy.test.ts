/**
 * The durable proxy end to end (the Proxy Protocol v0.1 §4; README "Durable proxy"): a loopback
 * upstream streaming SSE tokens slowly, read through the capability URL with the upstream
 * `@durable-streams/client` (live SSE), a reader dropped mid-stream and resumed from its offset,
 * a late reader, abort reaching the upstream, HEAD and DELETE, forwarded headers.
 */
import http from 'node:http';
import { stream } from '@durable-streams/client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sseToken, startMockUpstream, type MockUpstream } from '../support/mock-upstream.ts';
import { createProxy, createProxyOk, readToClose, startProxyServer, withQuery } from '../support/proxy.ts';
import type { TestServer } from '../support/server.ts';

let upstream: MockUpstream;
let server: TestServer;

beforeAll(async () => {
  upstream = await startMockUpstream();
  server = await startProxyServer(upstream);
});
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

const expected = (tokens: number) => Array.from({ length: tokens }, (_, i) => sseToken(i)).join('');

/** Token indexes in SSE text, in order. */
const tokenIndexes = (text: string) => [...text.matchAll(/"i":(\d+)/g)].map((match) => Number(match[1]));

describe('create and read', () => {
  test('201 with a capability URL before the upstream body ends; every token exactly once across a dropped and resumed SSE reader', { timeout: 60_000 }, async () => {
    const tokens = 40;
    const response = await createProxy(server.url, `${upstream.origin}/sse?tokens=${tokens}&delayMs=40&id=resume`);
    expect(response.status).toBe(201);
    expect(response.headers.get('upstream-content-type')).toBe('text/event-stream');
    expect(await response.text()).toBe('');
    const capability = response.headers.get('location') ?? '';
    expect(capability).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\/proxy\/[0-9a-f-]{36}\?expires=\d+&signature=[A-Za-z0-9_-]{43}$/);
    // The 201 came while the upstream is still streaming.
    expect(upstream.closedEarly('resume')).toBe(false);

    // First reader: live SSE, dropped after a few tokens.
    let text = '';
    let offset = '-1';
    const first = await stream({ url: capability, offset: '-1', live: 'sse' });
    expect(first.headers.get('upstream-content-type')).toBe('text/event-stream');
    await new Promise<void>((resolve, reject) => {
      first.subscribeText((chunk) => {
        text += chunk.text;
        offset = chunk.offset;
        if (tokenIndexes(text).length >= 5) resolve();
      });
      first.closed.catch(reject);
    });
    first.cancel();
    expect(tokenIndexes(text).length).toBeLessThan(tokens);

    // Resumed from its offset, to the end.
    const second = await stream({ url: capability, offset, live: 'sse' });
    await new Promise<void>((resolve, reject) => {
      second.subscribeText((chunk) => {
        text += chunk.text;
        if (chunk.streamClosed) resolve();
      });
      second.closed.catch(reject);
    });
    expect(tokenIndexes(text)).toEqual(Array.from({ length: tokens }, (_, i) => i));
    expect(text).toBe(expected(tokens));

    // A late reader with the client (catch-up first, then live SSE) gets everything once.
    const lateClient = await stream({ url: capability, offset: '-1', live: 'sse' });
    let lateText = '';
    await new Promise<void>((resolve, reject) => {
      lateClient.subscribeText((chunk) => {
        lateText += chunk.text;
        if (chunk.streamClosed) resolve();
      });
      lateClient.closed.catch(reject);
    });
    expect(lateText).toBe(expected(tokens));

    // A late reader gets everything, and learns the outcome.
    const catchUp = await fetch(withQuery(capability, { offset: '-1' }));
    expect(catchUp.headers.get('cache-control')).toMatch(/^private/);
    await catchUp.body?.cancel();
    const late = await readToClose(capability);
    expect(late.text).toBe(expected(tokens));
    expect(late.headers.get('upstream-content-type')).toBe('text/event-stream');
    expect(late.headers.get('cairn-proxy-outcome')).toBe('complete');
    expect(upstream.closedEarly('resume')).toBe(false);
  });

  test('a reader at offset=now learns closure and outcome; HEAD gives metadata; DELETE removes it (idempotent)', async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=3&delayMs=5&id=head`);
    await upstream.ended('head');
    await readToClose(capability);
    const now = await fetch(withQuery(capability, { offset: 'now' }));
    expect(now.status).toBe(200);
    expect(now.headers.get('stream-closed')).toBe('true');
    expect(now.headers.get('cairn-proxy-outcome')).toBe('complete');
    const bare = capability.split('?')[0] ?? '';
    const head = await fetch(bare, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('upstream-content-type')).toBe('text/event-stream');
    expect(head.headers.get('stream-closed')).toBe('true');
    expect(head.headers.get('cairn-proxy-outcome')).toBe('complete');
    expect((await fetch(bare, { method: 'DELETE' })).status).toBe(204);
    const gone = await fetch(capability);
    expect(gone.status).toBe(404);
    // The Proxy Protocol's JSON error body (§11.5), not the stream API's plain text.
    expect(gone.headers.get('content-type')).toMatch(/^application\/json/);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('STREAM_NOT_FOUND');
    expect((await fetch(bare, { method: 'DELETE' })).status).toBe(204);
  });

  test('forwards the body and headers (Upstream-Authorization as Authorization), not hop-by-hop or proxy headers', async () => {
    // node:http, because fetch refuses to send hop-by-hop headers at all.
    const capability = await rawCreate(server.url, {
      'upstream-url': `${upstream.origin}/echo`,
      'upstream-method': 'POST',
      'content-type': 'application/json',
      authorization: 'Bearer for-the-proxy',
      'upstream-authorization': 'Bearer for-the-upstream',
      'x-custom': 'kept',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic secret',
      connection: 'keep-alive, x-named-by-connection',
      'x-named-by-connection': 'dropped',
      te: 'trailers',
    });
    const { text, headers } = await readToClose(capability);
    expect(headers.get('upstream-content-type')).toBe('application/json');
    const echo = JSON.parse(text) as { method: string; headers: Record<string, string>; body: string };
    expect(echo.method).toBe('POST');
    expect(echo.body).toBe('{"prompt":"hello"}');
    expect(echo.headers.authorization).toBe('Bearer for-the-upstream');
    expect(echo.headers['x-custom']).toBe('kept');
    expect(echo.headers['content-type']).toBe('application/json');
    expect(echo.headers.host).toBe(new URL(upstream.origin).host);
    for (const name of ['keep-alive', 'te', 'proxy-authorization', 'x-named-by-connection', 'upstream-url', 'upstream-method', 'upstream-authorization']) {
      expect(echo.headers[name], name).toBeUndefined();
    }
  });
});

describe('abort', () => {
  test('PATCH action=abort cancels the upstream request, keeps the bytes received, closes the stream (aborted); idempotent', { timeout: 30_000 }, async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=1000&delayMs=20&id=abort`);
    // Wait until some tokens are in the stream.
    let received = '';
    for (let offset = '-1'; tokenIndexes(received).length < 3; ) {
      const response = await fetch(withQuery(capability, offset === '-1' ? { offset } : { offset, live: 'long-poll' }));
      received += await response.text();
      offset = response.headers.get('stream-next-offset') ?? offset;
    }
    const abort = await fetch(withQuery(capability, { action: 'abort' }), { method: 'PATCH' });
    expect(abort.status).toBe(204);
    await upstream.ended('abort');
    expect(upstream.closedEarly('abort')).toBe(true);
    const { text, headers } = await readToClose(capability);
    expect(headers.get('cairn-proxy-outcome')).toBe('aborted');
    const indexes = tokenIndexes(text);
    expect(indexes.length).toBeGreaterThanOrEqual(3);
    expect(indexes.length).toBeLessThan(1000);
    expect(indexes).toEqual(indexes.map((_, i) => i));
    expect((await fetch(withQuery(capability, { action: 'abort' }), { method: 'PATCH' })).status).toBe(204);
  });

  test('DELETE mid-answer aborts the upstream request and removes both streams', { timeout: 30_000 }, async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=1000&delayMs=20&id=delete`);
    const id = new URL(capability).pathname.split('/').pop() ?? '';
    expect((await fetch(capability.split('?')[0] ?? '', { method: 'DELETE' })).status).toBe(204);
    await upstream.ended('delete');
    expect(upstream.closedEarly('delete')).toBe(true);
    expect((await fetch(withQuery(capability, { offset: '-1' }))).status).toBe(404);
    for (const path of [`__proxy/${id}`, `__proxy/${id}/meta`]) expect((await fetch(`${server.url}/v1/stream/${path}?offset=-1`)).status).toBe(404);
  });

  test('abort needs the capability URL and action=abort', async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=3&delayMs=5&id=abort-bad`);
    const bare = capability.split('?')[0] ?? '';
    const unsigned = await fetch(`${bare}?action=abort`, { method: 'PATCH' });
    expect(unsigned.status).toBe(401);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('MISSING_SIGNATURE');
    const wrong = await fetch(withQuery(capability, { action: 'pause' }), { method: 'PATCH' });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe('INVALID_ACTION');
  });
});

/** POST /v1/proxy with exactly these headers and a JSON body; returns the capability URL. */
function rawCreate(serverUrl: string, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${serverUrl}/v1/proxy`, { method: 'POST', headers }, (response) => {
      response.resume();
      if (response.statusCode !== 201) reject(new Error(`create answered ${response.statusCode}`));
      else resolve(String(response.headers.location));
    });
    request.on('error', reject);
    request.end('{"prompt":"hello"}');
  });
}
