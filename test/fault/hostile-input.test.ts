/**
 * Hostile input (issue 5, "Hostile input fuzzing"): raw `net` sockets for what `fetch` cannot send
 * (malformed and duplicated headers, header injection attempts, truncated chunked bodies,
 * disconnects mid-body) and fast-check for producer header numbers, read offsets at and past
 * every boundary, content types, invalid UTF-8 and deeply nested JSON. A real in-process server
 * (tiny segments sealed at once, so offsets cross the sealed/hot boundary).
 *
 * Invariants, checked after every request: the server never answers 5xx to bad input and keeps
 * answering; an append is all or nothing (a stream model gains a body only when the append was
 * acknowledged); a full read-back equals the model at the end of every property; no response
 * carries a header the request tried to inject.
 *
 * Replay a fast-check failure with FUZZ_SEED=<seed> (printed); FUZZ_RUNS sets the runs per property.
 */
import net from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { formatOffset, parseOffsetToken } from '../../src/protocol/offset.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';
import { envInteger } from './support/crash-cycles.ts';
import { header, HttpClient, type Response } from './support/http-client.ts';

const FUZZ_SEED = envInteger('FUZZ_SEED', (Date.now() ^ (process.pid << 12)) >>> 0, 0, 0xffff_ffff);
const FUZZ_RUNS = envInteger('FUZZ_RUNS', 150, 1, 100_000);
const BINARY = 'application/octet-stream';
const JSON_TYPE = 'application/json';

let server: TestServer;
let client: HttpClient;
let port: number;

beforeAll(async () => {
  console.log(`hostile input: FUZZ_SEED=${FUZZ_SEED} FUZZ_RUNS=${FUZZ_RUNS}`);
  server = await startTestServer({ sealIdleMs: 0, segmentSizeBytes: 512, chunkBytesMax: 1024, logLevel: 'silent' });
  port = Number(new URL(server.url).port);
  client = new HttpClient(port);
});

afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

const fcParams = (runs = FUZZ_RUNS) => ({ seed: FUZZ_SEED, numRuns: runs });

/** A stream and the bytes it must hold: bodies of acknowledged appends only. */
class ModelStream {
  readonly path: string;
  readonly url: string;
  bytes: Buffer = Buffer.alloc(0);
  messages: string[] = [];

  constructor(name: string) {
    this.path = `/v1/stream/${name}`;
    this.url = `${server.url}${this.path}`;
  }

  async create(contentType: string): Promise<void> {
    expect((await client.request('PUT', this.path, { headers: { 'content-type': contentType } })).status).toBe(201);
  }

  async readAll(): Promise<Buffer[]> {
    const bodies: Buffer[] = [];
    let offset = '-1';
    for (let i = 0; i < 100_000; i++) {
      const response = await client.request('GET', `${this.path}?offset=${encodeURIComponent(offset)}`);
      expect(response.status, `read ${this.path} at ${offset}`).toBe(200);
      bodies.push(response.body);
      if (header(response, 'stream-up-to-date') === 'true') return bodies;
      offset = header(response, 'stream-next-offset');
    }
    throw new Error('never up to date');
  }

  async expectBytes(): Promise<void> {
    const read = Buffer.concat(await this.readAll());
    expect(read.length, `${this.path}: read-back length vs model`).toBe(this.bytes.length);
    expect(read.equals(this.bytes), `${this.path}: read-back equals the model`).toBe(true);
  }

  async expectMessages(): Promise<void> {
    const read = (await this.readAll()).flatMap((body) => (JSON.parse(body.toString('utf8')) as unknown[]).map((m) => JSON.stringify(m)));
    expect(read).toEqual(this.messages);
  }
}

/** The server still answers a plain request. */
async function healthy(): Promise<void> {
  const response = await client.request('HEAD', '/v1/stream/__fuzz_health__');
  expect(response.status).toBe(404);
}

function no5xx(response: Response | RawResponse, what: string): void {
  expect(response.status, `${what}: ${'body' in response ? response.body.toString('utf8', 0, 200) : ''}`).toBeLessThan(500);
}

// -------------------------------------------------------------------------------------------------
// Raw sockets

interface RawResponse {
  /** 0 when the server closed the connection without answering. */
  status: number;
  head: string;
  body: Buffer;
}

/**
 * Sends `chunks` on a fresh connection, then ends it (`end: 'fin'`), destroys it abruptly
 * (`'destroy'`, after `holdMs`), or keeps it open; resolves with the first response.
 */
function raw(chunks: (string | Buffer)[], options: { end?: 'fin' | 'destroy' | 'keep'; holdMs?: number; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const all = Buffer.concat(received);
      const split = all.indexOf('\r\n\r\n');
      const head = (split < 0 ? all : all.subarray(0, split)).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({ status: status === undefined ? 0 : Number(status), head, body: split < 0 ? Buffer.alloc(0) : all.subarray(split + 4) });
      socket.destroy();
    };
    const timer = setTimeout(() => {
      if (options.end === 'keep' || received.length > 0) finish();
      else {
        socket.destroy();
        reject(new Error('no answer on the raw socket'));
      }
    }, options.timeoutMs ?? 5_000);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      // A response with Content-Length is complete once the body is in.
      const all = Buffer.concat(received);
      const split = all.indexOf('\r\n\r\n');
      if (split >= 0) {
        const length = /\r\ncontent-length: *(\d+)/i.exec(all.subarray(0, split).toString('latin1'))?.[1];
        if (length !== undefined && all.length >= split + 4 + Number(length)) finish();
      }
    });
    socket.on('end', finish);
    socket.on('close', finish);
    socket.on('error', () => finish());
    socket.on('connect', async () => {
      for (const chunk of chunks) socket.write(chunk);
      if (options.end === 'fin') socket.end();
      else if (options.end === 'destroy') {
        await new Promise((r) => setTimeout(r, options.holdMs ?? 50));
        socket.destroy();
        finish();
      }
    });
  });
}

test('malformed request lines and headers get 400-class answers; nothing is appended', async () => {
  const stream = new ModelStream('fuzz/malformed');
  await stream.create(BINARY);
  const target = stream.path;
  const cases: [string, string][] = [
    ['garbage request line', 'GARBAGE\r\n\r\n'],
    ['no HTTP version', `POST ${target}\r\n\r\n`],
    ['header without a colon', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type application/octet-stream\r\nContent-Length: 1\r\n\r\nA`],
    ['space before the colon', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type : ${BINARY}\r\nContent-Length: 1\r\n\r\nA`],
    ['obsolete line folding', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/\r\n octet-stream\r\nContent-Length: 1\r\n\r\nA`],
    ['NUL in a header value', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\0\r\nContent-Length: 1\r\n\r\nA`],
    ['bare CR inside a header value', `POST ${target} HTTP/1.1\r\nHost: x\r\nProducer-Id: a\rb\r\nContent-Length: 1\r\n\r\nA`],
    ['two different Content-Lengths', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nAB`],
    ['Content-Length and Transfer-Encoding', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n`],
    ['negative Content-Length', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: -1\r\n\r\nA`],
    ['huge Content-Length', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 99999999999999999999999\r\n\r\nA`],
    ['unknown transfer coding', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nTransfer-Encoding: gzip, chunked, x\r\n\r\n1\r\nA\r\n0\r\n\r\n`],
    ['bad chunk size', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nA\r\n0\r\n\r\n`],
    ['header block over 64 KiB', `POST ${target} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\nContent-Length: 1\r\n\r\nA`],
    ['duplicated Content-Type', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['duplicated Producer-Seq', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nProducer-Id: p\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\nProducer-Seq: 1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['duplicated Producer-Epoch', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nProducer-Id: p\r\nProducer-Epoch: 0\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['duplicated Stream-Closed', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nStream-Closed: true\r\nStream-Closed: false\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['producer headers incomplete', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nProducer-Id: p\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['content type of another stream', `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
    ['path traversal', `PUT /v1/stream/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`],
    ['encoded NUL in the path', `PUT /v1/stream/a%00b HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`],
    ['bad percent-encoding in the path', `PUT /v1/stream/a%zz HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`],
    ['absolute-form target', `POST http://evil.example${target} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`],
  ];
  // Node's parser keeps the first of duplicated singleton headers it knows (Content-Type), and
  // joins others with ', ': 'Stream-Closed: true, false' is not 'true', so no close. Those two
  // requests may be valid appends; then the body must be stored exactly once (and no close).
  const mayAppend = new Set(['duplicated Content-Type', 'duplicated Stream-Closed']);
  const seen: string[] = [];
  for (const [label, request] of cases) {
    const response = await raw([request], { end: 'keep', timeoutMs: 3_000 });
    seen.push(`${label}: ${response.status === 0 ? 'closed' : response.status}`);
    if (response.status !== 0) {
      no5xx(response, label);
      if (mayAppend.has(label) && response.status === 204) {
        expect(response.head.toLowerCase()).not.toContain('stream-closed: true');
        stream.bytes = Buffer.concat([stream.bytes, Buffer.from('A')]);
      }
      else expect(response.status, `${label}: ${response.head}`).toBeGreaterThanOrEqual(400);
    }
    await healthy();
  }
  // None of them appended anything (but the one valid append).
  await stream.expectBytes();
  console.log(`hostile input: malformed requests: ${seen.join('; ')}`);
});

test('header injection: CR/LF and foreign headers never reach a response', async () => {
  const stream = new ModelStream('fuzz/inject');
  await stream.create(BINARY);
  const attempts = [
    // Percent-encoded CRLF in the path (echoed in Location on create).
    `PUT /v1/stream/inj%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    // A Host with CRLF-looking text (echoed in Location).
    `PUT /v1/stream/inj-host HTTP/1.1\r\nHost: x%0d%0aX-Injected: yes\r\nContent-Type: ${BINARY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
    // Obs-text in the content type (echoed on reads).
    Buffer.concat([
      Buffer.from(`PUT /v1/stream/inj-ct HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain; x=`),
      Buffer.from([0xc3, 0xa9, 0xff]),
      Buffer.from(`\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`),
    ]),
    // Producer-Id with obs-text (its epoch and seq are echoed).
    Buffer.concat([
      Buffer.from(`POST ${stream.path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\nProducer-Id: `),
      Buffer.from([0xe2, 0x80, 0xa8, 0x0b]),
      Buffer.from(`\r\nProducer-Epoch: 0\r\nProducer-Seq: 0\r\nContent-Length: 1\r\nConnection: close\r\n\r\nA`),
    ]),
  ];
  for (const attempt of attempts) {
    const response = await raw([attempt], { end: 'keep', timeoutMs: 3_000 });
    no5xx(response, `injection attempt ${attempt.toString().slice(0, 60)}`);
    expect(response.head.toLowerCase()).not.toMatch(/\r\nx-injected:/);
    if (response.status === 204 || response.status === 200) stream.bytes = Buffer.concat([stream.bytes, Buffer.from('A')]);
    await healthy();
  }
  // Reads of the stream created with an obs-text content type answer without 5xx.
  const read = await client.request('GET', '/v1/stream/inj-ct?offset=-1');
  no5xx(read, 'read of the obs-text content-type stream');
  await stream.expectBytes();
});

test('truncated chunked bodies and disconnects mid-body: the append is absent, the stream intact', async () => {
  const stream = new ModelStream('fuzz/truncated');
  await stream.create(BINARY);
  const whole = Buffer.from('whole-append;');
  // One complete append first, so "absent" is distinguishable from "empty".
  expect((await client.request('POST', stream.path, { headers: { 'content-type': BINARY }, body: whole })).status).toBe(204);
  stream.bytes = whole;
  const head = (extra: string) => `POST ${stream.path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${BINARY}\r\n${extra}\r\n`;
  const cases: [string, (string | Buffer)[], 'fin' | 'destroy'][] = [
    ['chunked, FIN before the last chunk', [head('Transfer-Encoding: chunked\r\n'), '5\r\nhello\r\n', '5\r\nwor'], 'fin'],
    ['chunked, reset before the last chunk', [head('Transfer-Encoding: chunked\r\n'), '5\r\nhello\r\n'], 'destroy'],
    ['chunked, FIN without the terminating 0-chunk', [head('Transfer-Encoding: chunked\r\n'), '5\r\nhello\r\n'], 'fin'],
    ['Content-Length, FIN after half the body', [head('Content-Length: 100\r\n'), 'x'.repeat(50)], 'fin'],
    ['Content-Length, reset after half the body', [head('Content-Length: 100000\r\n'), 'y'.repeat(50_000)], 'destroy'],
    ['Content-Length, reset after the headers', [head('Content-Length: 10\r\n')], 'destroy'],
  ];
  for (const [label, chunks, end] of cases) {
    const response = await raw(chunks, { end, holdMs: 100, timeoutMs: 3_000 });
    if (response.status !== 0) no5xx(response, label);
    expect(response.status === 204 || response.status === 200, `${label}: must not be acknowledged`).toBe(false);
    await healthy();
    await stream.expectBytes();
  }
  // Still appendable afterwards.
  const after = Buffer.from('after;');
  expect((await client.request('POST', stream.path, { headers: { 'content-type': BINARY }, body: after })).status).toBe(204);
  stream.bytes = Buffer.concat([stream.bytes, after]);
  await stream.expectBytes();
});

// -------------------------------------------------------------------------------------------------
// fast-check

/** Numbers as header text: huge, negative, non-numeric, past 2^53, fractions, padded, empty. */
const numberText = fc.oneof(
  fc.nat({ max: 5 }).map(String),
  fc.integer({ min: -1_000_000, max: -1 }).map(String),
  fc.constantFrom('9007199254740991', '9007199254740992', '9007199254740993', '18446744073709551616', '1e3', '0x10', '1.5', '-0', '+1', ' 1', '1 ', '00', '', 'NaN', 'Infinity', '１'),
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 80n }).map(String),
  fc.string({ maxLength: 12 }),
);

test('producer headers with hostile numbers: never 5xx, appends all-or-nothing, read-back equals the model', async () => {
  const stream = new ModelStream('fuzz/producer');
  await stream.create(BINARY);
  const statuses = new Map<number, number>();
  let counter = 0;
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('p0', 'p1'), numberText, numberText, async (producerId, epoch, seq) => {
      const body = Buffer.from(`[${counter++}]`);
      let response: Response;
      try {
        response = await client.request('POST', stream.path, {
          headers: { 'content-type': BINARY, 'producer-id': producerId, 'producer-epoch': epoch, 'producer-seq': seq },
          body,
        });
      } catch (error) {
        // Node refuses to send some header values (e.g. non-latin1): not a server answer.
        if ((error as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') return;
        throw error;
      }
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      no5xx(response, `producer ${producerId} epoch '${epoch}' seq '${seq}'`);
      expect([200, 204, 400, 403, 409]).toContain(response.status);
      if (response.status === 200) stream.bytes = Buffer.concat([stream.bytes, body]);
    }),
    fcParams(),
  );
  await stream.expectBytes();
  await healthy();
  console.log(`hostile input: producer headers: statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`);
}, 120_000);

test('read offsets at and past every boundary (start, sealed/hot, tail, past tail, malformed): never 5xx, bodies match', async () => {
  const stream = new ModelStream('fuzz/offsets');
  await stream.create(BINARY);
  for (let i = 0; i < 40; i++) {
    const body = Buffer.alloc(100 + i, i);
    expect((await client.request('POST', stream.path, { headers: { 'content-type': BINARY }, body })).status).toBe(204);
    stream.bytes = Buffer.concat([stream.bytes, body]);
  }
  // Some of it sealed (512-byte segments), the rest hot.
  await waitFor(async () => {
    const head = await client.request('HEAD', stream.path);
    const sealed = parseOffsetToken(header(head, 'cairn-sealed-offset'))?.position ?? 0;
    return sealed > 1024;
  }, 30_000);
  const head = await client.request('HEAD', stream.path);
  const tailToken = parseOffsetToken(header(head, 'stream-next-offset'));
  const sealedToken = parseOffsetToken(header(head, 'cairn-sealed-offset'));
  if (tailToken === undefined || sealedToken === undefined) throw new Error('HEAD without offsets');
  const incarnation = tailToken.incarnation;
  const tail = tailToken.position;
  const sealed = sealedToken.position;
  const positions = [0, 1, sealed - 1, sealed, sealed + 1, 511, 512, 513, tail - 1, tail, tail + 1, tail + 1_000_000, Number.MAX_SAFE_INTEGER];
  const offsetText = fc.oneof(
    fc.constantFrom('-1', 'now', '-2', '', 'now ', 'NOW', '0', '-0', '1', 'abc', '%00', '_', '9'.repeat(40)),
    fc.constantFrom(...positions).map((p) => formatOffset(incarnation, Math.max(0, p))),
    fc.integer({ min: 0, max: tail + 10 }).map((p) => formatOffset(incarnation, p)),
    fc.integer({ min: 0, max: tail }).map((p) => formatOffset(incarnation + 1, p)),
    fc.integer({ min: 0, max: tail }).map((p) => formatOffset(Math.max(0, incarnation - 1), p)),
    fc.string({ maxLength: 40 }),
  );
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(offsetText, fc.constantFrom('', '&live=long-poll'), async (offset, live) => {
      const response = await client.request('GET', `${stream.path}?offset=${encodeURIComponent(offset)}${live}`, { timeoutMs: 10_000 });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      no5xx(response, `offset '${offset}'${live}`);
      if (response.status !== 200) return;
      // A 200 at a position serves the model's bytes from that position on.
      const token = offset === '-1' ? { incarnation, position: 0 } : parseOffsetToken(offset);
      if (token === undefined || offset === 'now') return;
      expect(token.position, `200 for offset '${offset}' beyond the tail ${tail}`).toBeLessThanOrEqual(tail);
      const expected = stream.bytes.subarray(token.position, token.position + response.body.length);
      expect(response.body.equals(expected), `body at offset '${offset}'`).toBe(true);
      const next = parseOffsetToken(header(response, 'stream-next-offset'));
      expect(next?.position).toBe(token.position + response.body.length);
    }),
    fcParams(),
  );
  await stream.expectBytes();
  console.log(`hostile input: offsets (sealed ${sealed}, tail ${tail}): statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`);
}, 120_000);

test('JSON streams: invalid UTF-8, deep nesting, junk: never 5xx, all-or-nothing, read-back equals the model', async () => {
  const stream = new ModelStream('fuzz/json');
  await stream.create(JSON_TYPE);
  const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
  const bodyArb = fc.oneof(
    fc.jsonValue({ maxDepth: 4 }).map((value) => Buffer.from(JSON.stringify(value))),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    fc.constantFrom(
      Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // {"a":"\xc3(" — invalid UTF-8 in a string
      Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22]), // an encoded surrogate
      Buffer.from([0x22, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x22]), // a 5-byte sequence
      Buffer.from([0xef, 0xbb, 0xbf, 0x31]), // BOM then 1
      Buffer.from(deep(100, '[', ']')),
      Buffer.from('[]'),
      Buffer.from('[1,]'),
      Buffer.from('{"a":1}{"b":2}'),
      Buffer.from('1e999999'),
      Buffer.from('"\\ud800"'),
    ),
  );
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(bodyArb, async (body) => {
      const response = await client.request('POST', stream.path, { headers: { 'content-type': JSON_TYPE }, body });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      no5xx(response, `JSON body ${body.toString('utf8', 0, 60)}`);
      if (response.status === 204) {
        // Acknowledged: it was valid JSON; its messages are appended (an array is flattened one level).
        // (A leading UTF-8 byte order mark may be ignored, RFC 8259 §8.1.)
        const value = JSON.parse(body.toString('utf8').replace(/^\uFEFF/, '')) as unknown;
        const messages = Array.isArray(value) ? value : [value];
        stream.messages.push(...messages.map((m) => JSON.stringify(m)));
      } else {
        expect(response.status).toBeGreaterThanOrEqual(400);
      }
    }),
    fcParams(),
  );
  await stream.expectMessages();
  await healthy();
  console.log(`hostile input: JSON bodies: statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`);
}, 120_000);

test('deeply nested JSON (10^3 to 10^5 levels): never 5xx; accepted or refused whole; the stream stays readable', async () => {
  const stream = new ModelStream('fuzz/json-deep');
  await stream.create(JSON_TYPE);
  const seen: string[] = [];
  let acceptedBytes = 0;
  for (const depth of [1_000, 10_000, 100_000]) {
    for (const [open, close] of [['[', ']'], ['{"a":', '}']]) {
      const body = Buffer.from(`${open.repeat(depth)}${open === '[' ? '' : '1'}${close.repeat(depth)}`);
      const response = await client.request('POST', stream.path, { headers: { 'content-type': JSON_TYPE }, body });
      no5xx(response, `depth ${depth} ${open}`);
      seen.push(`${depth} ${open}: ${response.status}`);
      if (response.status === 204) acceptedBytes += body.length - (open === '[' ? 2 : 0);
      else expect(response.status).toBeGreaterThanOrEqual(400);
      await healthy();
    }
  }
  // Read back as bytes (a JS JSON.parse of 10^5 levels would overflow the test's own stack).
  const readBytes = (await stream.readAll()).reduce((sum, body) => sum + body.length, 0);
  // The stored messages, wrapped in arrays, are at least the accepted bodies (minus a top-level array's brackets).
  expect(readBytes).toBeGreaterThanOrEqual(acceptedBytes);
  console.log(`hostile input: deep JSON: ${seen.join('; ')}`);
}, 60_000);

test('content types and stream paths from fast-check: never 5xx', async () => {
  const statuses = new Map<number, number>();
  let counter = 0;
  const contentTypes = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/octet-stream', 'text/plain;;;', 'application/json; charset=latin1', 'TEXT/PLAIN', 'text/', '/'),
  );
  await fc.assert(
    fc.asyncProperty(contentTypes, fc.string({ minLength: 1, maxLength: 40 }), async (contentType, name) => {
      const path = `/v1/stream/fuzz-ct/${counter++}-${encodeURIComponent(name)}`;
      let response: Response;
      try {
        response = await client.request('PUT', path, { headers: { 'content-type': contentType } });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ERR_INVALID_CHAR') return;
        throw error;
      }
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      no5xx(response, `PUT ${path} content-type '${contentType}'`);
      if (response.status === 201) {
        const read = await client.request('GET', `${path}?offset=-1`);
        no5xx(read, `GET ${path}`);
        expect(read.status).toBe(200);
        const head = await client.request('HEAD', path);
        expect(head.status).toBe(200);
      }
    }),
    fcParams(),
  );
  await healthy();
  console.log(`hostile input: content types and paths: statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}`);
}, 120_000);
