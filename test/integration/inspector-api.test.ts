/**
 * The listing and metadata endpoints behind the inspector (README "Listing streams") over real
 * HTTP, with auth on: pages in path order with a cursor that walks every visible stream once,
 * prefix filter, the page-size limit, grant scoping (a hidden stream is absent, never a 403), the
 * same 401 as the stream routes; per-stream metadata (offsets, lineage, producers, segments) with
 * 403 before the lookup; and the inspector's 503 while its files are not built.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sha256Hex } from '../../src/auth/tokens-file.ts';
import { STREAM_LIST_PAGE_SIZE_MAX } from '../../src/config/limits.ts';
import { installErrorHandler } from '../../src/http/error-handler.ts';
import { registerInspector } from '../../src/http/routes/inspector.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const TOKENS = { admin: 'admin-token-0123456789abcdef', readerA: 'reader-a-token-0123456789' };

let server: TestServer;
let tokenDir: string;
beforeAll(async () => {
  tokenDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-inspector-api-'));
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
`,
  );
  server = await startTestServer({ authTokensFile: file, sealIdleMs: 0, segmentSizeBytes: 64 });
  const names = ['tenant-a/x/1', 'tenant-a/x/2', 'tenant-a/y', 'tenant-b/secret', 'zeta', 'tenant-a/x/3', 'tenant-a/é'];
  for (const name of names) {
    const response = await call('PUT', `/v1/stream/${encodeURI(name)}`, TOKENS.admin, { 'content-type': 'text/plain' }, 'hello');
    expect(response.status).toBe(201);
  }
  // A fork whose source the reader may not read, a producer, and enough bytes to seal.
  expect((await call('PUT', '/v1/stream/tenant-a/fork', TOKENS.admin, { 'stream-forked-from': '/v1/stream/tenant-b/secret' })).status).toBe(201);
  const appended = await call('POST', '/v1/stream/tenant-a/y', TOKENS.admin, {
    'content-type': 'text/plain',
    'producer-id': 'writer-1',
    'producer-epoch': '2',
    'producer-seq': '0',
  }, 'x'.repeat(200));
  expect(appended.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await rm(tokenDir, { recursive: true, force: true });
});

function call(method: string, url: string, token: string | undefined, headers: Record<string, string> = {}, body?: string) {
  return fetch(`${server.url}${url}`, {
    method,
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body,
  });
}

interface Page {
  streams: { path: string; contentType: string; nextOffset: string; closed: boolean }[];
  nextCursor: string | null;
}

async function page(query: string, token: string): Promise<Page> {
  const response = await call('GET', `/v1/streams${query}`, token);
  expect(response.status).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return (await response.json()) as Page;
}

/** Every path of a listing, following the cursor with pages of `limit`. */
async function walk(prefix: string, limit: number, token: string): Promise<string[]> {
  const paths: string[] = [];
  let cursor: string | null = '';
  for (let pages = 0; cursor !== null; pages++) {
    expect(pages).toBeLessThan(50);
    const result: Page = await page(`?prefix=${encodeURIComponent(prefix)}&limit=${limit}&cursor=${cursor}`, token);
    expect(result.streams.length).toBeLessThanOrEqual(limit);
    paths.push(...result.streams.map((stream) => stream.path));
    cursor = result.nextCursor;
  }
  return paths;
}

describe('GET /v1/streams', () => {
  test('lists every stream once, in path order, across pages of any size', async () => {
    const all = ['tenant-a/fork', 'tenant-a/x/1', 'tenant-a/x/2', 'tenant-a/x/3', 'tenant-a/y', 'tenant-a/é', 'tenant-b/secret', 'zeta'];
    for (const limit of [1, 2, 3, 100]) expect(await walk('', limit, TOKENS.admin)).toEqual(all);
    expect(await walk('tenant-a/x/', 2, TOKENS.admin)).toEqual(['tenant-a/x/1', 'tenant-a/x/2', 'tenant-a/x/3']);
    const first = await page('?prefix=tenant-a/y', TOKENS.admin);
    expect(first).toEqual({ streams: [{ path: 'tenant-a/y', contentType: 'text/plain', nextOffset: expect.any(String), closed: false }], nextCursor: null });
  });

  test('shows only what the token may read; no token is a 401 as on the stream routes', async () => {
    expect(await walk('', 2, TOKENS.readerA)).toEqual(['tenant-a/fork', 'tenant-a/x/1', 'tenant-a/x/2', 'tenant-a/x/3', 'tenant-a/y', 'tenant-a/é']);
    expect(await walk('tenant-b/', 10, TOKENS.readerA)).toEqual([]);
    const anonymous = await call('GET', '/v1/streams', undefined);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await call('GET', '/v1/streams', 'not-a-token')).status).toBe(401);
  });

  test('refuses a limit out of range and a cursor it did not make', async () => {
    for (const query of ['?limit=0', `?limit=${STREAM_LIST_PAGE_SIZE_MAX + 1}`, '?limit=ten', '?cursor=%2F%2F', '?limit=1&limit=2']) {
      expect((await call('GET', `/v1/streams${query}`, TOKENS.admin)).status).toBe(400);
    }
    expect((await call('GET', `/v1/streams?limit=${STREAM_LIST_PAGE_SIZE_MAX}`, TOKENS.admin)).status).toBe(200);
  });

  test('the durable proxy\'s streams are never listed', async () => {
    expect((await call('PUT', '/v1/stream/__proxy/abc', TOKENS.admin, { 'content-type': 'text/plain' })).status).toBe(201);
    expect(await walk('', 100, TOKENS.admin)).not.toContain('__proxy/abc');
    expect(await walk('__proxy/', 100, TOKENS.admin)).toEqual([]);
  });

  test('a deleted stream leaves the listing', async () => {
    expect((await call('PUT', '/v1/stream/tmp/gone', TOKENS.admin, { 'content-type': 'text/plain' })).status).toBe(201);
    expect(await walk('tmp/', 10, TOKENS.admin)).toEqual(['tmp/gone']);
    expect((await call('DELETE', '/v1/stream/tmp/gone', TOKENS.admin)).status).toBe(204);
    expect(await walk('tmp/', 10, TOKENS.admin)).toEqual([]);
  });
});

interface Meta {
  offsets: Record<'tail' | 'durable' | 'sealed' | 'earliest', string>;
  fork: { sourcePath: string | null; offset: string } | null;
  forkCount: number;
  segmentCount: number;
  segments: unknown[];
}

async function meta(path: string, token: string): Promise<Meta> {
  const response = await call('GET', `/v1/streams/meta?path=${path}`, token);
  expect(response.status).toBe(200);
  return (await response.json()) as Meta;
}

describe('GET /v1/streams/meta', () => {
  test('gives offsets, producers, segments and lineage of a readable stream', async () => {
    const y = await meta('tenant-a/y', TOKENS.readerA);
    const head = await call('HEAD', '/v1/stream/tenant-a/y', TOKENS.readerA);
    expect(y).toMatchObject({
      path: 'tenant-a/y',
      contentType: 'text/plain',
      closed: false,
      ttlSeconds: null,
      fork: null,
      producerCount: 1,
      producers: [{ producerId: 'writer-1', epoch: 2, lastSeq: 0 }],
    });
    expect(y.offsets.durable).toBe(head.headers.get('stream-next-offset'));
    expect(y.offsets.tail).toBe(head.headers.get('stream-next-offset'));
    expect(y.offsets.earliest).toBe(head.headers.get('cairn-earliest-offset'));
    expect(y.segmentCount).toBe(y.segments.length);
  });

  test('a fork names its source only when the token may read it', async () => {
    const asReader = await meta('tenant-a/fork', TOKENS.readerA);
    expect(asReader.fork).toEqual({ sourcePath: null, offset: expect.any(String) });
    const asAdmin = await meta('tenant-a/fork', TOKENS.admin);
    expect(asAdmin.fork?.sourcePath).toBe('tenant-b/secret');
    const source = await meta('tenant-b/secret', TOKENS.admin);
    expect(source.forkCount).toBe(1);
  });

  test('401, 403 the same for existing and missing paths, 404, 400', async () => {
    expect((await call('GET', '/v1/streams/meta?path=tenant-a/y', undefined)).status).toBe(401);
    for (const hidden of ['tenant-b/secret', 'tenant-b/missing']) {
      const response = await call('GET', `/v1/streams/meta?path=${hidden}`, TOKENS.readerA);
      expect(response.status).toBe(403);
      expect(await response.text()).toBe('the token does not grant read on this stream path');
    }
    expect((await call('GET', '/v1/streams/meta?path=tenant-a/missing', TOKENS.readerA)).status).toBe(404);
    expect((await call('GET', '/v1/streams/meta', TOKENS.readerA)).status).toBe(400);
    expect((await call('GET', '/v1/streams/meta?path=a/../b', TOKENS.admin)).status).toBe(400);
  });
});

describe('/inspector/ before a build', () => {
  test('answers 503 with the command to run', async () => {
    const emptyDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-inspector-none-'));
    const app = Fastify({ logger: false });
    installErrorHandler(app, 1024);
    await registerInspector(app, emptyDir);
    for (const url of ['/inspector/', '/inspector', '/inspector/app.js']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(503);
      expect(response.body).toBe('inspector not built: run npm run build:inspector');
    }
    await writeFile(path.join(emptyDir, 'index.html'), '<!doctype html><title>x</title>');
    const built = await app.inject({ method: 'GET', url: '/inspector/' });
    expect(built.statusCode).toBe(200);
    expect(built.headers['content-security-policy']).toContain("connect-src 'self'");
    await app.close();
    await rm(emptyDir, { recursive: true, force: true });
  });
});
