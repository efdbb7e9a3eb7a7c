/**
 * SSE connections handed off from node:http (src/http/sse-hand-off.ts), read by raw TCP and TLS
 * clients so that every byte on the wire is compared: the same bytes as the node:http path, the
 * close at the reconnect deadline, the end by graceful shutdown, the live-reader counts and
 * metrics on client disconnect, the next request on the same connection after the response
 * ended, and the fallback to node:http for a pipelined request. Whether a connection was handed
 * off is read on the server's side of it: node:http's parser is gone (`socket.parser`).
 */
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, expect, test } from 'vitest';
import { seededRandom, systemClock, type Clock } from '../../src/clock.ts';
import { scrape, sampleValue } from '../support/prometheus-text.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';
import { selfSignedCertificate } from '../support/tls.ts';

const TEXT = { 'content-type': 'text/plain' };
const OCTETS = { 'content-type': 'application/octet-stream' };
const LAST_CHUNK = '0\r\n\r\n';
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const server = await startTestServer(...args);
  cleanups.push(() => server.stop());
  return server;
}

/** The server's side of every HTTP/1.1 connection it accepts (TLS: the TLS socket), newest last. */
function serverSockets(server: TestServer): net.Socket[] {
  const sockets: net.Socket[] = [];
  const tlsPort = server.url.startsWith('https:');
  server.app.server.on(tlsPort ? 'secureConnection' : 'connection', (socket: net.Socket) => {
    if (!sockets.includes(socket)) sockets.push(socket);
  });
  return sockets;
}

/** node:http still parses this connection (false once it was handed off). */
function onNodeHttp(socket: net.Socket): boolean {
  return (socket as net.Socket & { parser?: unknown }).parser != null;
}

/** One raw HTTP/1.1 connection: everything it received, whether the server ended it (FIN), and when it closed. */
class RawConnection {
  readonly #chunks: Buffer[] = [];
  ended = false;
  readonly closed: Promise<void>;
  readonly socket: net.Socket;

  constructor(socket: net.Socket, request: string) {
    this.socket = socket;
    socket.on('data', (data: Buffer) => this.#chunks.push(data));
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.write(request);
    cleanups.push(async () => {
      socket.destroy();
    });
  }

  /** Everything received so far, byte for byte (latin1 keeps one character per byte). */
  text(): string {
    return Buffer.concat(this.#chunks).toString('latin1');
  }
}

function sseRequest(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: cairn.test\r\nAccept: text/event-stream\r\n\r\n${extra}`;
}

function openSse(server: TestServer, path: string, extra = ''): RawConnection {
  const { port } = new URL(server.url);
  return new RawConnection(net.connect(Number(port), '127.0.0.1'), sseRequest(path, extra));
}

function controlEvents(text: string): Record<string, unknown>[] {
  return [...text.matchAll(/event: control\ndata:(\{[^\n]*\})\n\n/g)].map((match) => JSON.parse(match[1]!) as Record<string, unknown>);
}

/** Wall-clock time held still (offsets' incarnations, cursors) with real timers, so two servers answer alike. */
function stillClock(nowMs: number): Clock {
  return { ...systemClock, nowMs: () => nowMs };
}

/**
 * The same reads on one server: a text stream with multi-line and space-led data and a binary one
 * (base64), each read live from the start through two appends and the stream's closure.
 * @returns what each raw client received.
 */
async function readScenario(server: TestServer, whileOpen: () => void): Promise<{ text: RawConnection; binary: RawConnection }> {
  const base = `${server.url}/v1/stream`;
  expect((await fetch(`${base}/text`, { method: 'PUT', headers: TEXT, body: 'hello\nworld\r\n leading space' })).status).toBe(201);
  expect((await fetch(`${base}/binary`, { method: 'PUT', headers: OCTETS, body: Buffer.from([0, 1, 2, 0xfe, 0xff]) })).status).toBe(201);
  const text = openSse(server, '/v1/stream/text?offset=-1&live=sse');
  const binary = openSse(server, '/v1/stream/binary?offset=-1&live=sse');
  await waitFor(() => controlEvents(text.text()).length === 1 && controlEvents(binary.text()).length === 1, 30_000);
  whileOpen();
  expect((await fetch(`${base}/text`, { method: 'POST', headers: TEXT, body: 'more' })).status).toBe(204);
  expect((await fetch(`${base}/binary`, { method: 'POST', headers: OCTETS, body: Buffer.alloc(300, 7) })).status).toBe(204);
  await waitFor(() => controlEvents(text.text()).length === 2 && controlEvents(binary.text()).length === 2, 30_000);
  const closing = { ...TEXT, 'stream-closed': 'true' };
  expect((await fetch(`${base}/text`, { method: 'POST', headers: closing, body: 'last' })).status).toBe(204);
  expect((await fetch(`${base}/binary`, { method: 'POST', headers: { ...OCTETS, 'stream-closed': 'true' } })).status).toBe(204);
  await waitFor(() => text.text().endsWith(LAST_CHUNK) && binary.text().endsWith(LAST_CHUNK), 30_000);
  return { text, binary };
}

/** Node's own Date header is the one thing the injected clock does not set. */
function withoutDate(raw: string): string {
  return raw.replace(/\r\nDate: [^\r]*\r\n/, '\r\n');
}

test('a handed-off connection carries exactly the bytes of the node:http path', async () => {
  const nowMs = systemClock.nowMs();
  const kept = await start({}, { sseHandOff: false, clock: stillClock(nowMs), random: seededRandom(19) });
  const handed = await start({}, { sseHandOff: true, clock: stillClock(nowMs), random: seededRandom(19) });
  const keptSockets = serverSockets(kept);
  const handedSockets = serverSockets(handed);
  const before = await readScenario(kept, () => expect(keptSockets.slice(-2).map(onNodeHttp)).toEqual([true, true]));
  const after = await readScenario(handed, () => expect(handedSockets.slice(-2).map(onNodeHttp)).toEqual([false, false]));

  for (const kind of ['text', 'binary'] as const) {
    const expected = withoutDate(before[kind].text());
    expect(withoutDate(after[kind].text())).toBe(expected);
  }
  const text = after.text.text();
  expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(text).toContain('\r\nTransfer-Encoding: chunked\r\n');
  expect(text).toContain('event: data\ndata:hello\ndata:world\ndata:  leading space\n\n');
  expect(after.binary.text()).toContain('\r\nstream-sse-data-encoding: base64\r\n');
  expect(after.binary.text()).toContain(`event: data\ndata:${Buffer.from([0, 1, 2, 0xfe, 0xff]).toString('base64')}\n\n`);
  expect(controlEvents(text).at(-1)).toMatchObject({ streamClosed: true, upToDate: true });
  expect(after.text.ended || after.binary.ended).toBe(false);
}, 120_000);

test('ends at the reconnect deadline, counted as a request; the connection then carries the next request', async () => {
  const server = await start({ sseReconnectMs: 1_500 });
  const sockets = serverSockets(server);
  expect((await fetch(`${server.url}/v1/stream/deadline`, { method: 'PUT', headers: TEXT, body: 'x' })).status).toBe(201);
  const sse = openSse(server, '/v1/stream/deadline?offset=-1&live=sse');
  await waitFor(() => controlEvents(sse.text()).length === 1, 30_000);
  expect(sampleValue(await scrape(server.url), 'cairn_live_connections', { mode: 'sse' })).toBe(1);
  const serverSide = sockets.at(-1)!;
  expect(onNodeHttp(serverSide)).toBe(false);

  await waitFor(() => sse.text().endsWith(`\r\n${LAST_CHUNK}`), 30_000);
  expect(controlEvents(sse.text())).toHaveLength(1);
  const samples = await scrape(server.url);
  expect(sampleValue(samples, 'cairn_live_connections', { mode: 'sse' })).toBe(0);
  expect(sampleValue(samples, 'cairn_http_request_duration_seconds_count', { operation: 'read_sse', status: '200' })).toBe(1);

  // Keep-alive as before: the next request on the same connection is answered by node:http.
  const length = sse.text().length;
  sse.socket.write('HEAD /v1/stream/deadline HTTP/1.1\r\nHost: cairn.test\r\n\r\n');
  await waitFor(() => sse.text().slice(length).includes('\r\n\r\n'), 30_000);
  expect(sse.text().slice(length)).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nstream-next-offset: /);
  expect(sse.ended).toBe(false);
  expect(onNodeHttp(serverSide)).toBe(true);
}, 60_000);

test('graceful shutdown ends handed-off connections with a final control event', async () => {
  const server = await startTestServer();
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await server.stop();
  });
  expect((await fetch(`${server.url}/v1/stream/stopping`, { method: 'PUT', headers: TEXT, body: 'x' })).status).toBe(201);
  const readers = [openSse(server, '/v1/stream/stopping?offset=-1&live=sse'), openSse(server, '/v1/stream/stopping?offset=now&live=sse')];
  await waitFor(() => readers.every((reader) => controlEvents(reader.text()).length === 1), 30_000);

  stopped = true;
  await server.stop();
  for (const reader of readers) {
    await reader.closed;
    expect(reader.ended).toBe(true);
    expect(reader.text().endsWith(LAST_CHUNK)).toBe(true);
    // One more control event than before the shutdown: where to resume, the stream still open.
    const controls = controlEvents(reader.text());
    expect(controls).toHaveLength(2);
    expect(controls[1]).toMatchObject({ upToDate: true });
    expect(controls[1]).not.toHaveProperty('streamClosed');
  }
}, 60_000);

test('client disconnects (FIN and reset) release the live-reader counts and are counted as requests', async () => {
  const PER_CLIENT = 3;
  const server = await start({ liveReadersPerClientMax: PER_CLIENT });
  expect((await fetch(`${server.url}/v1/stream/leaving`, { method: 'PUT', headers: TEXT, body: 'x' })).status).toBe(201);
  const path = '/v1/stream/leaving?offset=-1&live=sse';
  const open = async (count: number) => {
    const readers = Array.from({ length: count }, () => openSse(server, path));
    await waitFor(() => readers.every((reader) => controlEvents(reader.text()).length === 1), 30_000);
    return readers;
  };
  const sseOpen = async () => sampleValue(await scrape(server.url), 'cairn_live_connections', { mode: 'sse' });

  const readers = await open(PER_CLIENT);
  expect(await sseOpen()).toBe(PER_CLIENT);
  // The client's limit is reached: one more is refused.
  const refused = openSse(server, path);
  await waitFor(() => refused.text().includes('\r\n\r\n'), 30_000);
  expect(refused.text()).toMatch(/^HTTP\/1\.1 503 /);

  readers[0]!.socket.end();
  readers[1]!.socket.resetAndDestroy();
  await waitFor(async () => (await sseOpen()) === 1, 30_000);
  const samples = await scrape(server.url);
  expect(sampleValue(samples, 'cairn_http_request_duration_seconds_count', { operation: 'read_sse', status: '200' })).toBe(2);

  // Both places were given back: two new readers are admitted.
  await open(2);
  expect(await sseOpen()).toBe(PER_CLIENT);
}, 60_000);

test('a pipelined request keeps the connection on node:http: events, then the next response', async () => {
  const server = await start();
  const base = `${server.url}/v1/stream/piped`;
  expect((await fetch(base, { method: 'PUT', headers: TEXT, body: 'first' })).status).toBe(201);
  const sse = openSse(server, '/v1/stream/piped?offset=-1&live=sse', 'HEAD /v1/stream/piped HTTP/1.1\r\nHost: cairn.test\r\n\r\n');
  await waitFor(() => controlEvents(sse.text()).length === 1, 30_000);
  expect((await fetch(base, { method: 'POST', headers: { ...TEXT, 'stream-closed': 'true' }, body: 'second' })).status).toBe(204);
  await waitFor(() => /\r\n0\r\n\r\nHTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\n$/.test(sse.text()), 30_000);
  expect(sse.text()).toContain('data:second');
  expect(sse.ended).toBe(false);
}, 60_000);

test('HTTP/1.1 over TLS is handed off too', async () => {
  const certificate = await selfSignedCertificate();
  cleanups.push(() => certificate.remove());
  const server = await start({ tlsCertFile: certificate.certFile, tlsKeyFile: certificate.keyFile });
  const sockets = serverSockets(server);
  const { port } = new URL(server.url);
  const connect = () => tls.connect({ host: '127.0.0.1', port: Number(port), ca: certificate.cert, ALPNProtocols: ['http/1.1'] });
  /** One request on its own connection (`Connection: close`): the whole answer. */
  const request = async (head: string, body: string): Promise<string> => {
    const connection = new RawConnection(connect(), `${head}\r\nHost: cairn.test\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    await connection.closed;
    return connection.text();
  };
  expect(await request('PUT /v1/stream/secure HTTP/1.1', 'hello')).toMatch(/^HTTP\/1\.1 201 /);

  const sse = new RawConnection(connect(), sseRequest('/v1/stream/secure?offset=-1&live=sse'));
  await waitFor(() => controlEvents(sse.text()).length === 1, 30_000);
  expect(sse.text()).toContain('event: data\ndata:hello\n\n');
  const serverSide = sockets.at(-1)!;
  expect(onNodeHttp(serverSide)).toBe(false);
  expect(await request('POST /v1/stream/secure HTTP/1.1\r\nStream-Closed: true', 'bye')).toMatch(/^HTTP\/1\.1 204 /);
  await waitFor(() => sse.text().endsWith(LAST_CHUNK), 30_000);
  expect(sse.text()).toContain('data:bye');

  const length = sse.text().length;
  sse.socket.write('HEAD /v1/stream/secure HTTP/1.1\r\nHost: cairn.test\r\n\r\n');
  await waitFor(() => sse.text().slice(length).includes('\r\n\r\n'), 30_000);
  expect(sse.text().slice(length)).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\nstream-closed: true\r\n/);
  expect(onNodeHttp(serverSide)).toBe(true);
}, 60_000);

test('readers woken by one append each get their own cursor', async () => {
  const server = await start();
  expect((await fetch(`${server.url}/v1/stream/cursors`, { method: 'PUT', headers: TEXT })).status).toBe(201);
  const AHEAD = '99999999999';
  const plain = openSse(server, '/v1/stream/cursors?offset=-1&live=sse');
  const ahead = openSse(server, `/v1/stream/cursors?offset=-1&live=sse&cursor=${AHEAD}`);
  await waitFor(() => [plain, ahead].every((reader) => controlEvents(reader.text()).length === 1), 30_000);
  expect((await fetch(`${server.url}/v1/stream/cursors`, { method: 'POST', headers: TEXT, body: 'one' })).status).toBe(204);
  await waitFor(() => [plain, ahead].every((reader) => controlEvents(reader.text()).length === 2), 30_000);

  const cursors = (reader: RawConnection) => controlEvents(reader.text()).map((control) => BigInt(String(control.streamCursor)));
  // A cursor at or past the current interval moves further ahead on every event (§10.1).
  const [aheadFirst, aheadSecond] = cursors(ahead);
  expect(aheadFirst!).toBeGreaterThan(BigInt(AHEAD));
  expect(aheadSecond!).toBeGreaterThan(aheadFirst!);
  const [plainFirst, plainSecond] = cursors(plain);
  expect(plainSecond!).toBeGreaterThan(plainFirst!);
  expect(plainSecond!).toBeLessThan(BigInt(AHEAD));
  for (const reader of [plain, ahead]) expect(reader.text()).toContain('event: data\ndata:one\n\nevent: control\n');
}, 60_000);
