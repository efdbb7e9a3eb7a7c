/**
 * The durable proxy's security (the Proxy Protocol v0.1 §6, §7, §9, §11, §12): capability URL
 * signatures, expiry and key rotation; the upstream allowlist and SSRF checks after DNS; the
 * concurrency bounds; service authentication with the `proxy` grant.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UrlSigner } from '../../src/proxy/signing.ts';
import { startMockUpstream, type MockUpstream } from '../support/mock-upstream.ts';
import { createProxy, createProxyOk, PROXY_SECRET, PROXY_SECRET_PREVIOUS, startProxyServer, withQuery } from '../support/proxy.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

let upstream: MockUpstream;
let server: TestServer;
const extra: TestServer[] = [];

beforeAll(async () => {
  upstream = await startMockUpstream();
  server = await startProxyServer(upstream);
});
afterAll(async () => {
  for (const other of extra) await other.stop();
  await server?.stop();
  await upstream?.close();
});

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

/** A capability URL of `id` signed with `secret` at `nowMs`. */
function signedAt(base: string, id: string, secret: string, nowMs: number, lifetimeSeconds = 60): string {
  const { expires, signature } = new UrlSigner({ current: secret }, { nowMs: () => nowMs }).sign(id, lifetimeSeconds);
  return `${base}/v1/proxy/${id}?expires=${expires}&signature=${signature}`;
}

describe('capability URLs', () => {
  let capability: string;
  let id: string;
  beforeAll(async () => {
    capability = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=2&delayMs=5`);
    id = new URL(capability).pathname.split('/').pop() ?? '';
  });

  test('a tampered signature, or one for another stream, is SIGNATURE_INVALID (401)', async () => {
    const url = new URL(capability);
    const signature = url.searchParams.get('signature') ?? '';
    // The first character, not the last: the last base64url character of a 32-byte signature
    // carries 2 padding bits a decoder ignores, so 'B' → 'A' there can decode to the same bytes.
    url.searchParams.set('signature', `${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`);
    const tampered = await fetch(url);
    expect(tampered.status).toBe(401);
    expect(await errorCode(tampered)).toBe('SIGNATURE_INVALID');
    const other = await createProxyOk(server.url, `${upstream.origin}/sse?tokens=1&delayMs=5`);
    const swapped = new URL(other);
    swapped.pathname = new URL(capability).pathname;
    const response = await fetch(swapped);
    expect(response.status).toBe(401);
    expect(await errorCode(response)).toBe('SIGNATURE_INVALID');
    // A longer expiry with the same signature is not valid either.
    const extended = new URL(capability);
    extended.searchParams.set('expires', String(Number(extended.searchParams.get('expires')) + 3600));
    expect(await errorCode(await fetch(extended))).toBe('SIGNATURE_INVALID');
  });

  test('an expired URL is SIGNATURE_EXPIRED (401); a URL signed with the previous secret is still accepted', async () => {
    const expired = await fetch(signedAt(server.url, id, PROXY_SECRET, Date.now() - 3_600_000));
    expect(expired.status).toBe(401);
    expect(await errorCode(expired)).toBe('SIGNATURE_EXPIRED');
    const rotated = await fetch(withQuery(signedAt(server.url, id, PROXY_SECRET_PREVIOUS, Date.now()), { offset: '-1' }));
    expect(rotated.status).toBe(200);
    const unknownKey = await fetch(signedAt(server.url, id, 'some-other-secret-of-enough-length-000000', Date.now()));
    expect(await errorCode(unknownKey)).toBe('SIGNATURE_INVALID');
  });

  test('PATCH with an expired URL is SIGNATURE_EXPIRED', async () => {
    const expired = await fetch(withQuery(signedAt(server.url, id, PROXY_SECRET, Date.now() - 3_600_000), { action: 'abort' }), { method: 'PATCH' });
    expect(expired.status).toBe(401);
    expect(await errorCode(expired)).toBe('SIGNATURE_EXPIRED');
  });
});

describe('expiry', () => {
  test('the streams expire with the capability URL (--proxy-url-expiry-seconds)', { timeout: 30_000 }, async () => {
    const short = await startProxyServer(upstream, { proxyUrlExpirySeconds: 2 });
    extra.push(short);
    const capability = await createProxyOk(short.url, `${upstream.origin}/sse?tokens=2&delayMs=5`);
    expect((await fetch(withQuery(capability, { offset: '-1' }))).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 3100));
    const expired = await fetch(capability);
    expect(expired.status).toBe(401);
    expect(await errorCode(expired)).toBe('SIGNATURE_EXPIRED');
    // Without a signature (service authentication; auth is off here) the stream itself is gone.
    expect((await fetch(`${capability.split('?')[0]}?offset=-1`)).status).toBe(404);
    const id = new URL(capability).pathname.split('/').pop() ?? '';
    expect((await fetch(`${short.url}/v1/stream/__proxy/${id}/meta?offset=-1`)).status).toBe(404);
  });
});

describe('request validation', () => {
  test('missing or invalid Upstream-URL / Upstream-Method are 400 with the spec codes', async () => {
    const noUrl = await createProxy(server.url, undefined);
    expect(noUrl.status).toBe(400);
    expect(await errorCode(noUrl)).toBe('MISSING_UPSTREAM_URL');
    const noMethod = await createProxy(server.url, `${upstream.origin}/echo`, { method: '' });
    expect(noMethod.status).toBe(400);
    expect(await errorCode(noMethod)).toBe('MISSING_UPSTREAM_METHOD');
    const badMethod = await createProxy(server.url, `${upstream.origin}/echo`, { method: 'TRACE' });
    expect(badMethod.status).toBe(400);
    expect(await errorCode(badMethod)).toBe('INVALID_UPSTREAM_METHOD');
  });
});

describe('allowlist and SSRF (§6, §12.1)', () => {
  const refused = async (target: string, on: TestServer = server) => {
    const response = await createProxy(on.url, target);
    expect(response.status, target).toBe(403);
    expect(await errorCode(response)).toBe('UPSTREAM_NOT_ALLOWED');
  };

  test('URLs no pattern matches are refused before any request', async () => {
    const hitsBefore = upstream.hits('/echo');
    await refused('https://example.com/v1/chat');
    await refused(`${upstream.origin.replace('127.0.0.1', 'localhost')}/echo`);
    await refused(`${upstream.origin.replace(/:\d+$/, ':1')}/echo`);
    await refused('ftp://127.0.0.1/file');
    await refused('not a url');
    await refused(`http://user:pass@${new URL(upstream.origin).host}/echo`);
    expect(upstream.hits('/echo')).toBe(hitsBefore);
  });

  test('private and reserved targets are refused after resolution even when a pattern allows them', async () => {
    const open = await startProxyServer(upstream, { proxyAllowUpstream: ['http://*', 'https://*'] });
    extra.push(open);
    for (const target of [
      'http://10.0.0.1/',
      'http://192.168.1.1/',
      'http://172.16.0.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://[::ffff:10.0.0.1]/',
      'http://[::ffff:127.0.0.1]/',
      // Loopback through a wildcard pattern: not named literally, so refused even with --proxy-allow-localhost.
      `${upstream.origin}/echo`,
      // A name that resolves to loopback (DNS): refused.
      `${upstream.origin.replace('127.0.0.1', 'localhost')}/echo`,
    ]) {
      await refused(target, open);
    }
  });

  test('loopback needs both --proxy-allow-localhost and a pattern naming it; an empty allowlist refuses everything', async () => {
    const noLocalhost = await startProxyServer(upstream, { proxyAllowLocalhost: false });
    const empty = await startProxyServer(upstream, { proxyAllowUpstream: undefined });
    extra.push(noLocalhost, empty);
    await refused(`${upstream.origin}/echo`, noLocalhost);
    await refused(`${upstream.origin}/echo`, empty);
    expect((await createProxy(server.url, `${upstream.origin}/echo`)).status).toBe(201);
  });

  test('without --proxy-signing-secret the proxy is off (404)', async () => {
    const off = await startTestServer({});
    extra.push(off);
    expect((await createProxy(off.url, `${upstream.origin}/echo`)).status).toBe(404);
  });
});

describe('concurrency bounds', () => {
  test('past the per-caller bound 429, past the total 503, both with Retry-After; slots come back when pipes end', { timeout: 30_000 }, async () => {
    const perClient = await startProxyServer(upstream, { proxyUpstreamsPerClientMax: 1 });
    const total = await startProxyServer(upstream, { proxyUpstreamsMax: 1 });
    extra.push(perClient, total);
    for (const [target, status] of [
      [perClient, 429],
      [total, 503],
    ] as const) {
      const id = `bound-${status}`;
      const first = await createProxyOk(target.url, `${upstream.origin}/sse?tokens=100000&delayMs=50&id=${id}`);
      const second = await createProxy(target.url, `${upstream.origin}/sse?tokens=1&delayMs=5`);
      expect(second.status).toBe(status);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await fetch(withQuery(first, { action: 'abort' }), { method: 'PATCH' })).status).toBe(204);
      await upstream.ended(id);
      expect((await createProxy(target.url, `${upstream.origin}/sse?tokens=1&delayMs=5`)).status).toBe(201);
    }
  });
});

describe('service authentication (the proxy grant)', () => {
  let authed: TestServer;
  let dir: string;
  const PROXY_TOKEN = 'proxy-token-0123456789abcdef';
  const READ_TOKEN = 'read-token-0123456789abcdef';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-proxy-auth-'));
    const file = path.join(dir, 'tokens.yaml');
    await writeFile(
      file,
      `tokens:
  - name: service
    token: ${PROXY_TOKEN}
    grants: [{ paths: ["__proxy/**"], operations: [proxy] }]
  - name: reader
    token: ${READ_TOKEN}
    grants: [{ paths: ["**"], operations: [read, write, delete] }]
`,
    );
    authed = await startProxyServer(upstream, { authTokensFile: file });
  });
  afterAll(async () => {
    await authed?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('create needs a token with the proxy grant; the capability URL alone reads and aborts; HEAD and DELETE need the grant', { timeout: 30_000 }, async () => {
    expect((await createProxy(authed.url, `${upstream.origin}/echo`)).status).toBe(401);
    expect((await createProxy(authed.url, `${upstream.origin}/echo`, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).status).toBe(403);
    const capability = await createProxyOk(authed.url, `${upstream.origin}/sse?tokens=1000&delayMs=20&id=authed`, { headers: { authorization: `Bearer ${PROXY_TOKEN}` } });
    expect((await fetch(withQuery(capability, { offset: '-1' }))).status).toBe(200);
    const bare = capability.split('?')[0] ?? '';
    // No signature and no token: service authentication is required.
    expect((await fetch(`${bare}?offset=-1`)).status).toBe(401);
    expect((await fetch(`${bare}?offset=-1`, { headers: { authorization: `Bearer ${PROXY_TOKEN}` } })).status).toBe(200);
    expect((await fetch(capability, { method: 'HEAD' })).status).toBe(401);
    expect((await fetch(bare, { method: 'HEAD', headers: { authorization: `Bearer ${PROXY_TOKEN}` } })).status).toBe(200);
    // Abort: the capability URL only; a service token does not replace it.
    const tokenOnly = await fetch(`${bare}?action=abort`, { method: 'PATCH', headers: { authorization: `Bearer ${PROXY_TOKEN}` } });
    expect(tokenOnly.status).toBe(401);
    expect((await fetch(withQuery(capability, { action: 'abort' }), { method: 'PATCH' })).status).toBe(204);
    await upstream.ended('authed');
    expect((await fetch(capability, { method: 'DELETE' })).status).toBe(401);
    expect((await fetch(bare, { method: 'DELETE', headers: { authorization: `Bearer ${READ_TOKEN}` } })).status).toBe(403);
    expect((await fetch(bare, { method: 'DELETE', headers: { authorization: `Bearer ${PROXY_TOKEN}` } })).status).toBe(204);
  });
});
