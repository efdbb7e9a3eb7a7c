/**
 * What each upstream failure gives (the Proxy Protocol v0.1 §4.1, §6.1, §8): 4xx/5xx → 502 with
 * Upstream-Status and the (truncated) body, no stream; 3xx → 400 REDIRECT_NOT_ALLOWED, never
 * followed; no response head in time → 504 UPSTREAM_TIMEOUT; a reset mid-body, an idle or total
 * timeout → the bytes received, the stream closed, and the outcome readers see.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PROXY_ERROR_BODY_BYTES_MAX } from '../../src/config/limits.ts';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.ts';
import { createProxy, createProxyOk, readToClose, startProxyServer } from '../support/proxy.ts';
import type { TestServer } from '../support/server.ts';

let upstream: MockUpstream;
let server: TestServer;

beforeAll(async () => {
  upstream = await startMockUpstream();
  server = await startProxyServer(upstream, { proxyFirstByteTimeoutMs: 2000, proxyIdleTimeoutMs: 2000, proxyTotalTimeoutMs: 6000 });
});
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

describe('before the response head', () => {
  test.each([400, 401, 404, 429, 500, 503])('upstream %i → 502 with Upstream-Status, its content type and body; no stream', async (code) => {
    const before = server.registry.streamCount;
    const response = await createProxy(server.url, `${upstream.origin}/status?code=${code}`);
    expect(response.status).toBe(502);
    expect(response.headers.get('upstream-status')).toBe(String(code));
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('location')).toBeNull();
    expect(JSON.parse(await response.text())).toEqual({ error: { message: `upstream says ${code}`, padding: '' } });
    expect(server.registry.streamCount).toBe(before);
  });

  test('a large upstream error body is truncated', async () => {
    const response = await createProxy(server.url, `${upstream.origin}/status?code=500&pad=${4 * PROXY_ERROR_BODY_BYTES_MAX}`);
    expect(response.status).toBe(502);
    expect((await response.arrayBuffer()).byteLength).toBe(PROXY_ERROR_BODY_BYTES_MAX);
  });

  test.each([301, 302, 307, 308])('upstream %i → 400 REDIRECT_NOT_ALLOWED, not followed', async (code) => {
    const response = await createProxy(server.url, `${upstream.origin}/status?code=${code}`);
    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ error: { code: 'REDIRECT_NOT_ALLOWED', message: expect.any(String) } });
  });

  test('no response head within --proxy-first-byte-timeout-ms → 504 UPSTREAM_TIMEOUT; the upstream connection is closed', { timeout: 20_000 }, async () => {
    const response = await createProxy(server.url, `${upstream.origin}/hang?id=hang`);
    expect(response.status).toBe(504);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_TIMEOUT');
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
    await upstream.ended('hang');
  });

  test('an unreachable upstream → 502 UPSTREAM_ERROR without Upstream-Status', async () => {
    await upstream.close();
    const response = await createProxy(server.url, `${upstream.origin}/echo`);
    upstream = await startMockUpstream();
    // The new mock has a new port; the allowlist names the old one, so the server is restarted below.
    expect(response.status).toBe(502);
    expect(response.headers.get('upstream-status')).toBeNull();
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('UPSTREAM_ERROR');
    await server.stop();
    server = await startProxyServer(upstream, { proxyFirstByteTimeoutMs: 2000, proxyIdleTimeoutMs: 2000, proxyTotalTimeoutMs: 6000 });
  });
});

describe('after the response head', () => {
  test('a connection ended mid-body keeps the bytes received and closes the stream with outcome upstream-error', async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/reset?bytes=1000`);
    const { text, headers } = await readToClose(capability);
    expect(text).toBe('x'.repeat(1000));
    expect(headers.get('cairn-proxy-outcome')).toBe('upstream-error');
    expect(headers.get('upstream-content-type')).toBe('text/plain');
  });

  test('a reset mid-body closes the stream with outcome upstream-error, keeping what arrived before it', async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/reset?bytes=1000&how=rst`);
    const { text, headers } = await readToClose(capability);
    // A reset may discard bytes still in flight, so only a prefix is certain.
    expect('x'.repeat(1000).startsWith(text)).toBe(true);
    expect(headers.get('cairn-proxy-outcome')).toBe('upstream-error');
  });

  test('silence past --proxy-idle-timeout-ms closes the stream with outcome timed-out and the upstream connection', { timeout: 20_000 }, async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/stall?bytes=300&id=stall`);
    const { text, headers } = await readToClose(capability);
    expect(text).toBe('y'.repeat(300));
    expect(headers.get('cairn-proxy-outcome')).toBe('timed-out');
    await upstream.ended('stall');
  });

  test('an exchange past --proxy-total-timeout-ms closes the stream with outcome timed-out', { timeout: 20_000 }, async () => {
    const capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=100000&delayMs=50&id=total`);
    const { text, headers } = await readToClose(capability);
    expect(headers.get('cairn-proxy-outcome')).toBe('timed-out');
    expect(text.length).toBeGreaterThan(0);
    await upstream.ended('total');
    expect(upstream.closedEarly('total')).toBe(true);
  });
});
