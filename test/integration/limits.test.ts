/**
 * Limits against abuse over real HTTP (README "Limits"): each answers with its status and a
 * readable message, and a refused write leaves nothing behind.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({
    streamPathBytesMax: 64,
    headerBytesMax: 4096,
    appendBytesMax: 1024,
    jsonDepthMax: 8,
    liveReadersPerClientMax: 2,
    longPollTimeoutMs: 1_500,
    headersTimeoutMs: 500,
    requestTimeoutMs: 1_500,
    bodyTimeoutMs: 500,
    idleTimeoutMs: 500,
  });
});
afterAll(() => server?.stop());

const url = (name: string, query = '') => `${server.url}/v1/stream/${name}${query}`;

function rawRequest(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(`${server.url}${path}`, { method, headers, path }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

async function create(name: string, contentType = 'text/plain', body?: string): Promise<void> {
  const response = await fetch(url(name), { method: 'PUT', headers: { 'content-type': contentType }, body });
  expect(response.status).toBe(201);
}

async function contents(name: string): Promise<string> {
  const response = await fetch(url(name, '?offset=-1'));
  expect(response.status).toBe(200);
  return response.text();
}

describe('stream paths (--stream-path-bytes-max, traversal, control characters)', () => {
  const refused: [string, string, RegExp][] = [
    ['longer than the limit', 'p'.repeat(65), /longer than 64 bytes/],
    ['longer than the limit once decoded (multi-byte)', '%C3%A9'.repeat(33), /longer than 64 bytes/],
    ['a .. segment (percent-encoded)', 'a/%2e%2e/b', /\. or \.\. segments/],
    ['a . segment', 'a/%2E/b', /\. or \.\. segments/],
    ['a NUL byte', 'a%00b', /control characters/],
    ['a newline', 'a%0Ab', /control characters/],
    ['a .. segment', 'a/../b', /\. or \.\. segments/],
    ['bad percent-encoding', 'a%zzb', /Bad Request/],
  ];
  for (const [what, raw, message] of refused) {
    test(`${what}: 400 on create, nothing created`, async () => {
      // node:http sends the path as given (fetch would resolve `..` and `%2e%2e` before sending).
      const response = await rawRequest('PUT', `/v1/stream/${raw}`, { 'content-type': 'text/plain' });
      expect(response.status).toBe(400);
      expect(response.body).toMatch(message);
      expect(server.registry.streamCount).toBe(countBefore);
    });
  }
  let countBefore = 0;
  beforeAll(() => {
    countBefore = server.registry.streamCount;
  });

  test('a path of exactly the limit is accepted', async () => {
    await create('p'.repeat(64));
  });
});

describe('request head size (--header-bytes-max)', () => {
  test('a head over the limit gets 431 and the create is not done', async () => {
    const response = await fetch(url('big-head'), { method: 'PUT', headers: { 'content-type': 'text/plain', 'x-padding': 'x'.repeat(5000) } });
    expect(response.status).toBe(431);
    expect(await response.text()).toMatch(/header size/i);
    expect((await fetch(url('big-head'), { method: 'HEAD' })).status).toBe(404);
  });
});

describe('body size (--append-bytes-max)', () => {
  test('an append over the limit gets 413 and is absent; one at the limit is stored', async () => {
    await create('body-size');
    const over = await fetch(url('body-size'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(1025) });
    expect(over.status).toBe(413);
    expect(await over.text()).toMatch(/exceeds the limit of 1024 bytes/);
    expect(await contents('body-size')).toBe('');
    const at = await fetch(url('body-size'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'y'.repeat(1024) });
    expect(at.status).toBe(204);
    expect(await contents('body-size')).toBe('y'.repeat(1024));
  });

  test('a chunked body over the limit gets 413 too', async () => {
    await create('body-chunked');
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 3; i++) controller.enqueue(new Uint8Array(600).fill(0x61));
        controller.close();
      },
    });
    const over = await fetch(url('body-chunked'), { method: 'POST', headers: { 'content-type': 'text/plain' }, body: chunks, duplex: 'half' } as RequestInit);
    expect(over.status).toBe(413);
    expect(await contents('body-chunked')).toBe('');
  });
});

describe('JSON nesting (--json-depth-max)', () => {
  const nested = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);

  test('an append nesting deeper than the limit gets 400 and is absent; brackets in strings do not count', async () => {
    await create('json-depth', 'application/json');
    const deep = await fetch(url('json-depth'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: `[${JSON.stringify({ a: JSON.parse(nested(8)) })}]` });
    expect(deep.status).toBe(400);
    expect(await deep.text()).toMatch(/nests deeper than 8 levels/);
    expect(await contents('json-depth')).toBe('[]');
    const ok = await fetch(url('json-depth'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested(8) });
    expect(ok.status).toBe(204);
    const strings = await fetch(url('json-depth'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify('['.repeat(50)) });
    expect(strings.status).toBe(204);
    expect(JSON.parse(await contents('json-depth'))).toEqual([JSON.parse(nested(7)), '['.repeat(50)]);
  });

  test('a create with a too-deep JSON body gets 400 and creates nothing', async () => {
    const response = await fetch(url('json-depth-create'), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: nested(9) });
    expect(response.status).toBe(400);
    expect((await fetch(url('json-depth-create'), { method: 'HEAD' })).status).toBe(404);
  });
});

describe('live readers per client (--live-readers-per-client-max)', () => {
  test('past the limit a live read gets 503 with Retry-After; when one ends, a new one is admitted', async () => {
    await create('live-per-ip');
    // Two SSE readers hold the client's two slots (a 200 means the reader is counted).
    const holders = [new AbortController(), new AbortController()];
    for (const holder of holders) {
      const sse = await fetch(url('live-per-ip', '?offset=now&live=sse'), { signal: holder.signal });
      expect(sse.status).toBe(200);
    }
    const third = await fetch(url('live-per-ip', '?offset=now&live=long-poll'));
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(await third.text()).toMatch(/too many live readers from this client \(limit 2\)/);
    expect((await fetch(url('live-per-ip', '?offset=now&live=sse'))).status).toBe(503);
    // A catch-up read is not a live reader: still served.
    expect((await fetch(url('live-per-ip', '?offset=-1'))).status).toBe(200);
    // One reader goes away: its slot is freed (asynchronously, when the server sees the close).
    holders[0].abort();
    let status = 0;
    for (let i = 0; i < 400; i++) {
      const response = await fetch(url('live-per-ip', '?offset=now&live=sse'));
      status = response.status;
      await response.body?.cancel();
      if (status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(status).toBe(200);
    holders[1].abort();
  });
});

describe('slow clients (--headers-timeout-ms, --request-timeout-ms, --body-timeout-ms, --idle-timeout-ms)', () => {
  /** Opens a raw socket; resolves with everything the server sent once it closes (bounded by 15 s). */
  function rawExchange(script: (socket: net.Socket) => void): Promise<{ received: string; closedByServer: boolean }> {
    return new Promise((resolve, reject) => {
      const { port } = new URL(server.url);
      const socket = net.connect(Number(port), '127.0.0.1');
      let received = '';
      const guard = setTimeout(() => {
        socket.destroy();
        reject(new Error(`the server kept the slow connection open for 15 s; received: ${received}`));
      }, 15_000);
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(guard);
        resolve({ received, closedByServer: true });
      });
      socket.on('connect', () => script(socket));
    });
  }

  /** Writes `text` one byte every `everyMs` until the socket closes. */
  function trickle(socket: net.Socket, text: string, everyMs: number): void {
    let at = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || at >= text.length) {
        clearInterval(timer);
        return;
      }
      socket.write(text[at++]);
    }, everyMs);
    socket.once('close', () => clearInterval(timer));
  }

  test('a head trickled slower than --headers-timeout-ms gets 408 and the connection is closed', async () => {
    const { received } = await rawExchange((socket) => {
      socket.write('PUT /v1/stream/slow-head HTTP/1.1\r\nHost: x\r\n');
      trickle(socket, `X-Slow: ${'a'.repeat(1000)}\r\n\r\n`, 100);
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect((await fetch(url('slow-head'), { method: 'HEAD' })).status).toBe(404);
  });

  test('a body that stops coming is cut after --body-timeout-ms, and nothing is created', async () => {
    const { received } = await rawExchange((socket) => {
      socket.write('PUT /v1/stream/slow-body HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789');
    });
    expect(received).toBe(''); // closed without an answer, before the request timeout's 408
    expect((await fetch(url('slow-body'), { method: 'HEAD' })).status).toBe(404);
  });

  test('a body trickled past --request-timeout-ms gets 408, and the append is absent', async () => {
    await create('slow-append');
    const { received } = await rawExchange((socket) => {
      socket.write('POST /v1/stream/slow-append HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 200\r\n\r\n');
      trickle(socket, 'b'.repeat(200), 100); // 20 s at this pace: each byte within the body timeout, the whole far past the request timeout
    });
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(await contents('slow-append')).toBe('');
  });

  test('an idle keep-alive connection is closed after --idle-timeout-ms', async () => {
    const { received } = await rawExchange((socket) => {
      socket.write('GET /v1/stream/none HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    expect(received).toMatch(/^HTTP\/1\.1 404 /);
    expect(received).toMatch(/keep-alive/i); // the server kept it open after the answer, then closed it
  });

  test('a long-poll outlives --body-timeout-ms: live waits are exempt', async () => {
    await create('long-wait');
    const response = await fetch(url('long-wait', '?offset=now&live=long-poll'));
    expect(response.status).toBe(204); // after the 1.5 s long-poll timeout, 3× the body timeout
  });
});
