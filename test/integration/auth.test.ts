/**
 * Access control over real HTTP (README "Authentication"): 401 and 403 for every operation,
 * identical whether the stream exists or not; forks need read on their source; reads are
 * `Cache-Control: private` unless the grant is public; CORS preflights need no token.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SignJWT } from 'jose';
import { sha256Hex } from '../../src/auth/tokens-file.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const SECRET = 'integration-secret-of-at-least-32-bytes';
const TOKENS = {
  admin: 'admin-token-0123456789abcdef',
  readerA: 'reader-a-token-0123456789',
  writerA: 'writer-a-token-0123456789',
  pub: 'public-token-0123456789ab',
};

let server: TestServer;
let tokenDir: string;
beforeAll(async () => {
  tokenDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-auth-'));
  const file = path.join(tokenDir, 'tokens.yaml');
  await writeFile(
    file,
    `tokens:
  - name: admin
    sha256: ${sha256Hex(TOKENS.admin)}
    grants: [{ paths: ["**"], operations: [read, write, delete] }]
  - name: reader-a
    token: ${TOKENS.readerA}
    grants: [{ paths: ["tenant-a/**"], operations: [read] }]
  - name: writer-a
    token: ${TOKENS.writerA}
    grants: [{ paths: ["tenant-a/**"], operations: [write] }]
  - name: pub
    token: ${TOKENS.pub}
    grants:
      - { paths: ["pub/**"], operations: [read, write], public: true }
      - { paths: ["tenant-a/**"], operations: [read] }
`,
  );
  // Seal at once, in small segments, so closed streams become immutable sealed reads quickly.
  server = await startTestServer({ authTokensFile: file, authJwtSecret: SECRET, authJwtAudience: 'cairn', sealIdleMs: 0, segmentSizeBytes: 64 });
  for (const name of ['tenant-a/exists', 'pub/exists', 'tenant-b/exists']) {
    const response = await call('PUT', name, TOKENS.admin, { 'content-type': 'text/plain' }, 'hello');
    expect(response.status).toBe(201);
  }
});
afterAll(async () => {
  await server?.stop();
  await rm(tokenDir, { recursive: true, force: true });
});

function call(method: string, name: string, token: string | undefined, headers: Record<string, string> = {}, body?: string, query = '') {
  return fetch(`${server.url}/v1/stream/${name}${query}`, {
    method,
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body,
  });
}

/** Status, the headers a client could learn from, and the body: must not differ between existing and missing streams. */
async function answer(response: Response) {
  return {
    status: response.status,
    wwwAuthenticate: response.headers.get('www-authenticate'),
    streamHeaders: [...response.headers.keys()].filter((name) => name.startsWith('stream-') || name === 'etag' || name === 'location'),
    body: (await response.text()).replaceAll('exists', 'NAME').replaceAll('missing', 'NAME'),
  };
}

const jwt = (claims: Record<string, unknown>) =>
  new SignJWT({ aud: 'cairn', ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
const nowS = () => Math.floor(Date.now() / 1000);

/** Every operation of the protocol, as [label, method, headers, body, query]. */
const OPERATIONS: [string, string, Record<string, string>, string | undefined, string][] = [
  ['create', 'PUT', { 'content-type': 'text/plain' }, undefined, ''],
  ['append', 'POST', { 'content-type': 'text/plain' }, 'more', ''],
  ['close', 'POST', { 'stream-closed': 'true' }, undefined, ''],
  ['read', 'GET', {}, undefined, '?offset=-1'],
  ['long-poll', 'GET', {}, undefined, '?offset=now&live=long-poll'],
  ['sse', 'GET', {}, undefined, '?offset=now&live=sse'],
  ['metadata', 'HEAD', {}, undefined, ''],
  ['delete', 'DELETE', {}, undefined, ''],
];

describe('401 without a valid token', async () => {
  const expired = await jwt({ sub: 'x', exp: nowS() - 60, cairn: { grants: [{ paths: ['**'], operations: ['read', 'write', 'delete'] }] } });
  const wrongAudience = await jwt({ sub: 'x', aud: 'other', cairn: { grants: [{ paths: ['**'], operations: ['read'] }] } });
  const credentials: [string, string | undefined, Record<string, string>][] = [
    ['no token', undefined, {}],
    ['an unknown token', 'not-a-token-of-this-server', {}],
    ['an expired JWT', expired, {}],
    ['a JWT for another audience', wrongAudience, {}],
    ['Basic credentials', undefined, { authorization: 'Basic YWRtaW46YWRtaW4=' }],
  ];
  for (const [who, token, extra] of credentials) {
    for (const [label, method, headers, body, query] of OPERATIONS) {
      test(`${label} with ${who}: 401, the same for an existing and a missing stream`, async () => {
        const existing = await answer(await call(method, 'tenant-a/exists', token, { ...headers, ...extra }, body, query));
        const missing = await answer(await call(method, 'tenant-a/missing', token, { ...headers, ...extra }, body, query));
        expect(existing.status).toBe(401);
        expect(existing.wwwAuthenticate).toMatch(/^Bearer realm="cairn"/);
        expect(existing.streamHeaders).toEqual([]);
        expect(missing).toEqual(existing);
      });
    }
  }

  test('nothing was changed by the refused requests', async () => {
    const read = await call('GET', 'tenant-a/exists', TOKENS.admin, {}, undefined, '?offset=-1');
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('hello');
    expect((await call('HEAD', 'tenant-a/missing', TOKENS.admin)).status).toBe(404);
  });
});

describe('403 when the grant does not cover the path or operation', () => {
  const cases: [string, string, string, string][] = [
    // [token, label of operation, stream prefix, why]
    [TOKENS.readerA, 'create', 'tenant-a', 'read-only token writing'],
    [TOKENS.readerA, 'append', 'tenant-a', 'read-only token appending'],
    [TOKENS.readerA, 'close', 'tenant-a', 'read-only token closing'],
    [TOKENS.readerA, 'delete', 'tenant-a', 'read-only token deleting'],
    [TOKENS.readerA, 'read', 'tenant-b', 'another tenant'],
    [TOKENS.readerA, 'long-poll', 'tenant-b', 'another tenant'],
    [TOKENS.readerA, 'sse', 'tenant-b', 'another tenant'],
    [TOKENS.readerA, 'metadata', 'tenant-b', 'another tenant'],
    [TOKENS.writerA, 'read', 'tenant-a', 'write-only token reading'],
    [TOKENS.writerA, 'delete', 'tenant-a', 'write-only token deleting'],
    [TOKENS.pub, 'delete', 'pub', 'no delete grant'],
  ];
  for (const [token, label, prefix, why] of cases) {
    test(`${label} on ${prefix}/… (${why}): 403, the same for an existing and a missing stream`, async () => {
      const [, method, headers, body, query] = OPERATIONS.find(([name]) => name === label) ?? [];
      const existing = await answer(await call(method as string, `${prefix}/exists`, token, headers, body, query));
      const missing = await answer(await call(method as string, `${prefix}/missing`, token, headers, body, query));
      expect(existing.status).toBe(403);
      if (method !== 'HEAD') expect(existing.body).toMatch(/does not grant/);
      expect(existing.streamHeaders).toEqual([]);
      expect(missing).toEqual(existing);
    });
  }

  test('a JWT carries grants in its cairn claim', async () => {
    const token = await jwt({ sub: 'u', exp: nowS() + 60, cairn: { grants: [{ paths: ['tenant-a/*'], operations: ['read'] }] } });
    expect((await call('GET', 'tenant-a/exists', token, {}, undefined, '?offset=-1')).status).toBe(200);
    expect((await call('POST', 'tenant-a/exists', token, { 'content-type': 'text/plain' }, 'x')).status).toBe(403);
    const none = await jwt({ sub: 'u', exp: nowS() + 60 });
    expect((await call('GET', 'tenant-a/exists', none, {}, undefined, '?offset=-1')).status).toBe(403);
  });

  test('a fork needs read on its source: write alone on both paths is 403, and nothing is created', async () => {
    const forkHeaders = { 'content-type': 'text/plain', 'stream-forked-from': '/v1/stream/tenant-b/exists' };
    const refused = await call('PUT', 'tenant-a/fork-1', TOKENS.writerA, forkHeaders);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toMatch(/fork source/);
    const missingSource = await call('PUT', 'tenant-a/fork-1', TOKENS.writerA, { ...forkHeaders, 'stream-forked-from': '/v1/stream/tenant-b/missing' });
    expect(missingSource.status).toBe(403); // not 404: the source's existence is not revealed
    expect((await call('HEAD', 'tenant-a/fork-1', TOKENS.admin)).status).toBe(404);
    const allowed = await call('PUT', 'tenant-a/fork-1', TOKENS.admin, forkHeaders);
    expect(allowed.status).toBe(201);
  });

  test('a token with the right grant gets through (the writer appends, the reader reads it)', async () => {
    expect((await call('POST', 'tenant-a/exists', TOKENS.writerA, { 'content-type': 'text/plain' }, ' world')).status).toBe(204);
    const read = await call('GET', 'tenant-a/exists', TOKENS.readerA, {}, undefined, '?offset=-1');
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('hello world');
  });
});

describe('Cache-Control with auth on', () => {
  test('hot-tail reads are private unless the grant marks the path public', async () => {
    const privateRead = await call('GET', 'tenant-a/exists', TOKENS.readerA, {}, undefined, '?offset=-1');
    expect(privateRead.headers.get('cache-control')).toBe('private, max-age=60, stale-while-revalidate=300');
    const publicRead = await call('GET', 'pub/exists', TOKENS.pub, {}, undefined, '?offset=-1');
    expect(publicRead.headers.get('cache-control')).toBe('public, max-age=60, stale-while-revalidate=300');
    // The same path through a grant that is not public stays private.
    const adminRead = await call('GET', 'pub/exists', TOKENS.admin, {}, undefined, '?offset=-1');
    expect(adminRead.headers.get('cache-control')).toBe('private, max-age=60, stale-while-revalidate=300');
  });

  test('immutable sealed reads are private too, unless public', async () => {
    for (const name of ['tenant-a/sealed', 'pub/sealed']) {
      expect((await call('PUT', name, TOKENS.admin, { 'content-type': 'text/plain', 'stream-closed': 'true' }, 'final bytes')).status).toBe(201);
    }
    const sealed = async (name: string) => {
      // Up to 20 s: a busy machine seals slowly (below the 30 s test timeout).
      for (const deadline = performance.now() + 20_000; performance.now() < deadline; ) {
        const head = await call('HEAD', name, TOKENS.admin);
        if (head.headers.get('cairn-sealed-offset') === head.headers.get('stream-next-offset')) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`${name} was not sealed in time`);
    };
    await sealed('tenant-a/sealed');
    await sealed('pub/sealed');
    // An explicit offset (this incarnation's position 0), not `-1`: only positions are immutable.
    const startOf = async (name: string) => {
      const tail = (await call('HEAD', name, TOKENS.admin)).headers.get('stream-next-offset')!;
      return `?offset=${tail.split('_')[0]}_${'0'.repeat(16)}`;
    };
    const privateRead = await call('GET', 'tenant-a/sealed', TOKENS.readerA, {}, undefined, await startOf('tenant-a/sealed'));
    expect(await privateRead.text()).toBe('final bytes');
    expect(privateRead.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    const publicRead = await call('GET', 'pub/sealed', TOKENS.pub, {}, undefined, await startOf('pub/sealed'));
    expect(publicRead.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const privateStart = await call('GET', 'tenant-a/sealed', TOKENS.readerA, {}, undefined, '?offset=-1');
    expect(privateStart.headers.get('cache-control')).toBe('private, max-age=60, stale-while-revalidate=300');
  });
});

describe('CORS with auth on', () => {
  test('a preflight needs no token and lists exactly the protocol request headers', async () => {
    const response = await fetch(`${server.url}/v1/stream/tenant-a/exists`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-origin')).toBe('*');
    expect(response.headers.get('access-control-allow-headers')?.split(/, */)).toEqual([
      'Content-Type',
      'Authorization',
      'If-None-Match',
      'Stream-TTL',
      'Stream-Expires-At',
      'Stream-Closed',
      'Stream-Seq',
      'Stream-Forked-From',
      'Stream-Fork-Offset',
      'Stream-Fork-Sub-Offset',
      'Cairn-Retention-Ms',
      'Cairn-Retention-Bytes',
      'Producer-Id',
      'Producer-Epoch',
      'Producer-Seq',
    ]);
  });
});
