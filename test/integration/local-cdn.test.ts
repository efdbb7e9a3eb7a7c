/**
 * The local CDN (infra/local-cdn): real nginx in front of a real in-process Cairn, with every
 * request that reaches Cairn counted. Shows request collapsing for cold catch-up reads, clients
 * from -1 converging on the same URLs (and hitting the cache), long-poll waiters collapsing into
 * one request, and 204s never being cached. Needs Debian's nginx (`apt-get install -y nginx-light`;
 * .ci/run installs it): without it the tests fail under CI and are skipped elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LONG_POLL_TIMEOUT_MS_DEFAULT } from '../../src/config/limits.ts';
import { renderLocalCdnConfig } from '../../infra/local-cdn/render.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';

const NGINX = '/usr/sbin/nginx';
const nginxInstalled = existsSync(NGINX);
if (!nginxInstalled) {
  if (process.env['CI']) throw new Error(`local-CDN tests: ${NGINX} is missing (apt-get install -y nginx-light)`);
  process.stderr.write(`\n*** local-CDN tests SKIPPED: ${NGINX} is not installed (apt-get install -y nginx-light) ***\n\n`);
}

/** Identical cold catch-up reads sent at once (the number). */
const CONCURRENT_COLD_READS = 1000;
/** Long-poll waiters at one offset and cursor. */
const LONG_POLL_WAITERS = 50;
/** Clients walking a stream from -1 at the same time. */
const CONVERGING_CLIENTS = 4;
/**
 * How long the long-poll waiters are held before the append: longer than nginx's default
 * proxy_cache_lock_age (5 s), after which nginx would let a second request through to Cairn.
 */
const LONG_POLL_HOLD_MS = 6_000;

interface UpstreamRequest {
  method: string;
  url: string;
  /** The Authorization header as Cairn received it (absent: not recorded). */
  authorization?: string;
}

/** A Cairn whose every incoming HTTP request is recorded (the Node server's 'request' event). */
async function startCountedCairn(longPollTimeoutMs: number): Promise<{ server: TestServer; requests: UpstreamRequest[] }> {
  const server = await startTestServer({
    durability: 'memory',
    longPollTimeoutMs,
    // Small segments sealed at once, so history is served from segments as immutable chunks.
    segmentSizeBytes: 16 * 1024,
    chunkBytesMax: 32 * 1024,
    sealIdleMs: 0,
  });
  const requests: UpstreamRequest[] = [];
  server.app.server.on('request', (request: http.IncomingMessage) => {
    const recorded: UpstreamRequest = { method: request.method ?? '', url: request.url ?? '' };
    if (request.headers.authorization !== undefined) recorded.authorization = request.headers.authorization;
    requests.push(recorded);
  });
  return { server, requests };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

interface Cdn {
  url: string;
  stop(): Promise<void>;
}

/** nginx with the rendered local-CDN configuration in a temporary prefix, in front of `upstream`. */
async function startNginx(upstream: string, longPollTimeoutMs: number): Promise<Cdn> {
  const prefix = await mkdtemp(path.join(os.tmpdir(), 'cairn-cdn-'));
  await mkdir(path.join(prefix, 'temp'));
  await mkdir(path.join(prefix, 'logs'));
  const port = await freePort();
  const config = renderLocalCdnConfig({
    upstream,
    listen: `127.0.0.1:${port}`,
    accessLog: 'logs/access.log',
    longPollTimeoutMs,
    // As root, nginx's workers would otherwise run as nobody, who cannot write the 0700 temp prefix.
    ...(process.getuid?.() === 0 ? { user: 'root' } : {}),
  });
  await writeFile(path.join(prefix, 'nginx.conf'), config);
  const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-c', 'nginx.conf', '-g', `daemon off; pid ${path.join(prefix, 'nginx.pid')};`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(prefix, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}: ${stderr}`);
      return (await fetch(`${url}/_cdn/status`).then((response) => response.status === 200).catch(() => false)) as boolean;
    }, 15_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop };
}

/** nginx's in-progress requests (stub_status "Writing"), the status request itself included. */
async function nginxRequestsInProgress(cdn: Cdn): Promise<number> {
  const text = await (await fetch(`${cdn.url}/_cdn/status`)).text();
  const match = /Writing: (\d+)/.exec(text);
  if (match === null) throw new Error(`unexpected stub_status output: ${text}`);
  return Number(match[1]);
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One GET on its own connection (no pooling: each reader is a separate client). */
function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

async function createStream(server: TestServer, name: string, contentType = 'application/octet-stream'): Promise<void> {
  const response = await fetch(`${server.url}/v1/stream/${name}`, { method: 'PUT', headers: { 'content-type': contentType } });
  expect(response.status).toBe(201);
}

async function appendDirect(server: TestServer, name: string, body: Uint8Array, contentType = 'application/octet-stream'): Promise<void> {
  const response = await fetch(`${server.url}/v1/stream/${name}`, { method: 'POST', headers: { 'content-type': contentType }, body });
  expect(response.status).toBe(204);
}

/** A stream of `appendCount` random appends of `appendBytes`, all sealed into segments. */
async function sealedStream(server: TestServer, name: string, appendCount: number, appendBytes: number): Promise<Buffer> {
  await createStream(server, name);
  const appends: Buffer[] = [];
  for (let i = 0; i < appendCount; i++) {
    const bytes = randomBytes(appendBytes);
    appends.push(bytes);
    await appendDirect(server, name, bytes);
  }
  await waitFor(() => {
    const stream = server.registry.get(name, { touch: false });
    return stream.sealedOffset === stream.durableOffset;
  }, 20_000);
  return Buffer.concat(appends);
}

const streamGets = (requests: UpstreamRequest[], name: string) =>
  requests.filter((request) => request.method === 'GET' && request.url.startsWith(`/v1/stream/${name}?`));

describe.skipIf(!nginxInstalled)('local CDN (nginx) in front of Cairn', () => {
  let cairn: { server: TestServer; requests: UpstreamRequest[] };
  let cdn: Cdn;
  beforeAll(async () => {
    cairn = await startCountedCairn(LONG_POLL_TIMEOUT_MS_DEFAULT);
    cdn = await startNginx(new URL(cairn.server.url).host, LONG_POLL_TIMEOUT_MS_DEFAULT);
  });
  afterAll(async () => {
    await cdn?.stop();
    await cairn?.server.stop();
  });

  test(`${CONCURRENT_COLD_READS} concurrent identical cold catch-up reads reach Cairn as 1 request`, async () => {
    const data = await sealedStream(cairn.server, 'cold', 32, 2048);
    const url = `${cdn.url}/v1/stream/cold?offset=-1`;
    const replies = await Promise.all(Array.from({ length: CONCURRENT_COLD_READS }, () => get(url)));

    expect(streamGets(cairn.requests, 'cold')).toEqual([{ method: 'GET', url: '/v1/stream/cold?offset=-1' }]);
    const first = replies[0]!;
    expect(first.status).toBe(200);
    expect(first.body.length).toBeGreaterThan(0);
    expect(first.body.equals(data.subarray(0, first.body.length))).toBe(true);
    // `-1` is cacheable briefly (it names the start, which a re-create or a trim moves), not immutable.
    expect(first.headers['cache-control']).toBe('public, max-age=60, stale-while-revalidate=300');
    const digest = (body: Buffer) => createHash('sha256').update(body).digest('hex');
    const expectedDigest = digest(first.body);
    for (const reply of replies) {
      expect(reply.status).toBe(200);
      expect(digest(reply.body)).toBe(expectedDigest);
      expect(reply.headers['stream-next-offset']).toBe(first.headers['stream-next-offset']);
      expect(reply.headers['etag']).toBe(first.headers['etag']);
    }
    const statuses = replies.map((reply) => reply.headers['x-cache-status']);
    expect(statuses.filter((status) => status === 'MISS')).toHaveLength(1);
    expect(statuses.filter((status) => status === 'HIT')).toHaveLength(CONCURRENT_COLD_READS - 1);
  }, 60_000);

  test('clients following Stream-Next-Offset from -1 request the same URLs; a later client only hits the cache', async () => {
    const data = await sealedStream(cairn.server, 'converge', 40, 3000);

    /** Walks the stream from -1 through the CDN; returns the URLs, cache statuses and bytes. */
    const walk = async () => {
      const urls: string[] = [];
      const cacheStatuses: string[] = [];
      const chunks: Buffer[] = [];
      for (let offset = '-1'; ; ) {
        const url = `/v1/stream/converge?offset=${offset}`;
        const reply = await get(`${cdn.url}${url}`);
        expect(reply.status).toBe(200);
        urls.push(url);
        cacheStatuses.push(String(reply.headers['x-cache-status']));
        chunks.push(reply.body);
        if (reply.headers['stream-up-to-date'] === 'true') break;
        offset = String(reply.headers['stream-next-offset']);
        expect(urls.length).toBeLessThan(100);
      }
      return { urls, cacheStatuses, body: Buffer.concat(chunks) };
    };

    const together = await Promise.all(Array.from({ length: CONVERGING_CLIENTS }, walk));
    const sequence = together[0]!.urls;
    expect(sequence.length).toBeGreaterThanOrEqual(3);
    for (const client of together) {
      expect(client.urls).toEqual(sequence);
      expect(client.body.equals(data)).toBe(true);
    }
    // Each URL reached Cairn once however many clients walked it at the same time.
    expect(streamGets(cairn.requests, 'converge').map((request) => request.url)).toEqual(sequence);

    const late = await walk();
    expect(late.urls).toEqual(sequence);
    expect(late.cacheStatuses).toEqual(sequence.map(() => 'HIT'));
    expect(late.body.equals(data)).toBe(true);
    expect(streamGets(cairn.requests, 'converge')).toHaveLength(sequence.length);

    // HEAD is passed to Cairn as HEAD (not turned into a cached GET) and keeps Cairn's headers.
    const head = await fetch(`${cdn.url}/v1/stream/converge`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('cairn-sealed-offset')).toBe(head.headers.get('stream-next-offset'));
    expect(head.headers.get('x-cache-status')).toBe('BYPASS');
    expect(cairn.requests.filter((request) => request.method === 'HEAD' && request.url === '/v1/stream/converge')).toHaveLength(1);
  }, 60_000);

  test(`${LONG_POLL_WAITERS} long-poll waiters at the tail with one cursor collapse into 1 request and all get the append`, async () => {
    await createStream(cairn.server, 'live');
    await appendDirect(cairn.server, 'live', Buffer.from('history '));
    const tail = await fetch(`${cairn.server.url}/v1/stream/live?offset=-1`);
    const offset = tail.headers.get('stream-next-offset')!;
    const cursor = tail.headers.get('stream-cursor')!;
    expect(offset).not.toBe('');
    expect(cursor).toMatch(/^\d+$/);

    const url = `${cdn.url}/v1/stream/live?cursor=${cursor}&live=long-poll&offset=${offset}`;
    const inProgressBefore = await nginxRequestsInProgress(cdn);
    const waiters = Array.from({ length: LONG_POLL_WAITERS }, () => get(url));
    // Awaited below; if an assertion fails first, nginx's shutdown must not surface as unhandled rejections.
    for (const waiter of waiters) waiter.catch(() => {});
    // Every waiter is inside nginx (waiting on the cache lock, or the one request at Cairn).
    await waitFor(async () => (await nginxRequestsInProgress(cdn)) >= inProgressBefore + LONG_POLL_WAITERS, 15_000);
    await new Promise((resolve) => setTimeout(resolve, LONG_POLL_HOLD_MS));
    const longPolls = () => streamGets(cairn.requests, 'live').filter((request) => request.url.includes('live=long-poll'));
    expect(longPolls()).toHaveLength(1);

    const appended = randomBytes(1500);
    await appendDirect(cairn.server, 'live', appended);
    const replies = await Promise.all(waiters);

    expect(longPolls()).toEqual([{ method: 'GET', url: `/v1/stream/live?cursor=${cursor}&live=long-poll&offset=${offset}` }]);
    for (const reply of replies) {
      expect(reply.status).toBe(200);
      expect(reply.body.equals(appended)).toBe(true);
      expect(reply.headers['stream-cursor']).toBe(replies[0]!.headers['stream-cursor']);
      expect(reply.headers['stream-next-offset']).toBe(replies[0]!.headers['stream-next-offset']);
      expect(reply.headers['stream-up-to-date']).toBe('true');
    }
    const statuses = replies.map((reply) => reply.headers['x-cache-status']);
    expect(statuses.filter((status) => status === 'MISS')).toHaveLength(1);
    expect(statuses.filter((status) => status === 'HIT')).toHaveLength(LONG_POLL_WAITERS - 1);
  }, 60_000);

  test('SSE passes through unbuffered and uncached: every client has its own stream and sees the append', async () => {
    // Text, so the SSE data events carry the bytes as they are (binary streams are base64).
    await createStream(cairn.server, 'events', 'text/plain');
    const tail = await fetch(`${cairn.server.url}/v1/stream/events?offset=-1`);
    const offset = tail.headers.get('stream-next-offset')!;
    const url = `${cdn.url}/v1/stream/events?live=sse&offset=${offset}`;
    const marker = `appended-${randomBytes(8).toString('hex')}`;
    const requests: http.ClientRequest[] = [];
    /** Resolves with the response headers and the text received up to the marker. */
    const readUntilMarker = () =>
      new Promise<{ headers: http.IncomingHttpHeaders; text: string }>((resolve, reject) => {
        const request = http.get(url, { agent: false }, (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
            if (text.includes(marker)) resolve({ headers: response.headers, text });
          });
          response.on('end', () => reject(new Error(`SSE ended before the append arrived: ${text}`)));
        });
        request.on('error', reject);
        requests.push(request);
      });
    const sseGets = () => streamGets(cairn.requests, 'events').filter((request) => request.url.includes('live=sse'));
    try {
      const readers = Array.from({ length: 3 }, readUntilMarker);
      for (const reader of readers) reader.catch(() => {});
      // Not collapsed behind a cache lock: each client's stream reaches Cairn.
      await waitFor(() => sseGets().length === 3, 15_000);
      await appendDirect(cairn.server, 'events', Buffer.from(marker), 'text/plain');
      // Buffered, the event would only arrive when Cairn closes the stream (60 s), past this test's limit.
      for (const { headers, text } of await Promise.all(readers)) {
        expect(headers['content-type']).toBe('text/event-stream');
        expect(headers['x-cache-status']).toBe('BYPASS');
        expect(text).toContain(marker);
      }
    } finally {
      for (const request of requests) request.destroy();
    }
  }, 20_000);

  test('Authorization: stripped from public reads (one shared entry), part of the key under /v1/stream/private/, kept on writes', async () => {
    const reply = (name: string, token: string) => get(`${cdn.url}/v1/stream/${name}?offset=-1`, { authorization: `Bearer ${token}` });
    await createStream(cairn.server, 'shared');
    await appendDirect(cairn.server, 'shared', Buffer.from('for everyone'));
    expect((await reply('shared', 'alice')).headers['x-cache-status']).toBe('MISS');
    expect((await reply('shared', 'bob')).headers['x-cache-status']).toBe('HIT');
    expect(streamGets(cairn.requests, 'shared')).toEqual([{ method: 'GET', url: '/v1/stream/shared?offset=-1' }]);

    await createStream(cairn.server, 'private/mine');
    await appendDirect(cairn.server, 'private/mine', Buffer.from('per token'));
    expect((await reply('private/mine', 'alice')).headers['x-cache-status']).toBe('MISS');
    expect((await reply('private/mine', 'bob')).headers['x-cache-status']).toBe('MISS');
    const again = await reply('private/mine', 'alice');
    expect(again.headers['x-cache-status']).toBe('HIT');
    expect(again.body.toString()).toBe('per token');
    expect(streamGets(cairn.requests, 'private/mine').map((request) => request.authorization)).toEqual(['Bearer alice', 'Bearer bob']);

    const write = await fetch(`${cdn.url}/v1/stream/shared`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: 'Bearer writer' },
      body: 'more',
    });
    expect(write.status).toBe(204);
    // The first POST is the test's own append, straight to Cairn; the second came through the CDN.
    expect(cairn.requests.filter((request) => request.method === 'POST' && request.url === '/v1/stream/shared').map((request) => request.authorization)).toEqual([
      undefined,
      'Bearer writer',
    ]);
  }, 30_000);
});

describe.skipIf(!nginxInstalled)('local CDN: long-poll timeouts', () => {
  const longPollTimeoutMs = 1000;
  let cairn: { server: TestServer; requests: UpstreamRequest[] };
  let cdn: Cdn;
  beforeAll(async () => {
    cairn = await startCountedCairn(longPollTimeoutMs);
    cdn = await startNginx(new URL(cairn.server.url).host, longPollTimeoutMs);
  });
  afterAll(async () => {
    await cdn?.stop();
    await cairn?.server.stop();
  });

  test('a 204 at the long-poll timeout is not cached: the same URL goes to Cairn again', async () => {
    await createStream(cairn.server, 'quiet');
    const tail = await fetch(`${cairn.server.url}/v1/stream/quiet?offset=-1`);
    const offset = tail.headers.get('stream-next-offset')!;
    const cursor = tail.headers.get('stream-cursor')!;
    const url = `${cdn.url}/v1/stream/quiet?cursor=${cursor}&live=long-poll&offset=${offset}`;

    const first = await get(url);
    expect(first.status).toBe(204);
    expect(first.headers['stream-next-offset']).toBe(offset);
    expect(first.headers['stream-up-to-date']).toBe('true');
    expect(first.headers['stream-cursor']).toMatch(/^\d+$/);
    expect(first.headers['x-cache-status']).toBe('MISS');

    const second = await get(url);
    expect(second.status).toBe(204);
    expect(second.headers['x-cache-status']).toBe('MISS');
    expect(streamGets(cairn.requests, 'quiet').filter((request) => request.url.includes('live=long-poll'))).toHaveLength(2);
  }, 30_000);
});
