/**
 * The `cairn` client commands end to end: a real `cairn serve` child process, and every command
 * run as a child process the way a user runs it. Byte-exact round trips (a few MiB from a file,
 * text from stdin), head, tail receiving live appends until the stream is closed, the exit codes
 * (conflict after close, not found after delete, usage errors, unauthorised, unavailable), and
 * `cairn serve` refusing an invalid configuration before it listens.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sseEvents } from '../../src/cli/client/sse.ts';
import { ChildServer, freePort } from '../fault/support/child-server.ts';

const MAIN = path.resolve('src/cli/main.ts');
/** Every CLI run is bounded; a hung command fails the test instead of the suite. */
const RUN_TIMEOUT_MS = 20_000;
/** Each test runs several CLI processes (a few hundred ms each on a busy 2-core machine). */
const TEST_TIMEOUT_MS = 120_000;
/** Small catch-up responses, so `read` of a few MiB must follow Stream-Next-Offset several times. */
const CHUNK_BYTES_MAX = 1024 * 1024;
/** Above the 3 MiB round trip, below the 5 MiB refused one. */
const APPEND_BYTES_MAX = 4 * 1024 * 1024;

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `cairn <args>` to completion, feeding `input` on stdin. */
function cairn(args: string[], options: { input?: Buffer | string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(stdout), stderr });
    });
    child.stdin.on('error', () => undefined); // a command that fails early closes its stdin
    child.stdin.end(options.input ?? '');
  });
}

function ok(run: Run): Run {
  if (run.code !== 0) throw new Error(`cairn exited ${run.code}: ${run.stderr}`);
  return run;
}

let dir: string;
let server: ChildServer;
let base: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-cli-'));
  server = new ChildServer({ port: await freePort(), dataDir: path.join(dir, 'data'), args: ['--chunk-bytes-max', String(CHUNK_BYTES_MAX), '--append-bytes-max', String(APPEND_BYTES_MAX)] });
  await server.start();
  base = `http://127.0.0.1:${server.port}/v1/stream`;
});

afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('round trips', { timeout: TEST_TIMEOUT_MS }, () => {
  it('create, append a few MiB from a file, read back byte-exact; head agrees with append', async () => {
    const url = `${base}/file-round-trip`;
    const created = ok(await cairn(['create', url]));
    const startOffset = created.stdout.toString().trim();
    expect(startOffset).toMatch(/^\S+$/);

    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const file = path.join(dir, 'payload.bin');
    await writeFile(file, payload);
    const appended = ok(await cairn(['append', url, file]));
    const tailOffset = appended.stdout.toString().trim();
    expect(tailOffset).not.toBe(startOffset);

    const read = ok(await cairn(['read', url]));
    expect(read.stdout.length).toBe(payload.length);
    expect(read.stdout.equals(payload)).toBe(true);

    const head = ok(await cairn(['head', url, '--json']));
    const metadata = JSON.parse(head.stdout.toString()) as Record<string, string>;
    expect(metadata['content-type']).toBe('application/octet-stream');
    expect(metadata['stream-next-offset']).toBe(tailOffset);
    expect(metadata['stream-closed']).toBeUndefined();

    // Reading from the offset an append returned gives exactly what came after it.
    const more = Buffer.from('more bytes');
    ok(await cairn(['append', url, '-'], { input: more }));
    expect(ok(await cairn(['read', url, '--offset', tailOffset])).stdout.equals(more)).toBe(true);
  });

  it('append from stdin, with the content type learnt from the stream; head prints header lines', async () => {
    const url = `${base}/stdin-text`;
    ok(await cairn(['create', url, '--content-type', 'text/plain']));
    ok(await cairn(['append', url], { input: 'hello, ' }));
    ok(await cairn(['append', url], { input: 'world\n' }));
    expect(ok(await cairn(['read', url])).stdout.toString()).toBe('hello, world\n');
    const head = ok(await cairn(['head', url])).stdout.toString();
    expect(head).toContain('content-type: text/plain\n');
    expect(head).toMatch(/^stream-next-offset: \S+$/m);
  });

  it('JSON streams: read and tail print one message per line', async () => {
    const url = `${base}/json`;
    ok(await cairn(['create', url, '--content-type', 'application/json']));
    ok(await cairn(['append', url], { input: '[{"n":1},{"n":2}]' }));
    ok(await cairn(['append', url, '--close'], { input: '{"n":3}' }));
    const expected = '{"n":1}\n{"n":2}\n{"n":3}\n';
    expect(ok(await cairn(['read', url])).stdout.toString()).toBe(expected);
    // The stream is closed: tail from the beginning delivers everything and ends by itself.
    expect(ok(await cairn(['tail', url, '--offset', '-1'])).stdout.toString()).toBe(expected);
  });
});

describe('tail', { timeout: TEST_TIMEOUT_MS }, () => {
  it('receives appends made while it is following, then ends when the stream is closed', async () => {
    const url = `${base}/tailed`;
    const offset = ok(await cairn(['create', url, '--content-type', 'text/plain'])).stdout.toString().trim();
    // Started at the stream's tail offset, tail misses nothing whenever it connects.
    const tailing = cairn(['tail', url, '--offset', offset]);
    // Lines starting with spaces: an SSE parser drops one space after `data:`, so the server must send one.
    const parts = ['first line\n', ' second line, one leading space\n', '   third,\n  indented\n'];
    for (const part of parts) ok(await cairn(['append', url], { input: part }));
    const binaryUrl = `${base}/tailed-binary`;
    const binaryOffset = ok(await cairn(['create', binaryUrl])).stdout.toString().trim();
    const binaryTailing = cairn(['tail', binaryUrl, '--offset', binaryOffset]);
    const binary = randomBytes(200_000);
    ok(await cairn(['append', binaryUrl], { input: binary }));
    ok(await cairn(['close', url]));
    ok(await cairn(['close', binaryUrl]));
    const tailed = await tailing;
    expect(tailed.code).toBe(0);
    expect(tailed.stdout.toString()).toBe(parts.join(''));
    const binaryTailed = await binaryTailing;
    expect(binaryTailed.code).toBe(0);
    expect(binaryTailed.stdout.equals(binary)).toBe(true);
  });
});

describe('exit codes', { timeout: TEST_TIMEOUT_MS }, () => {
  it('close, then append exits 4 (conflict) naming the status; close again is fine', async () => {
    const url = `${base}/closing`;
    ok(await cairn(['create', url]));
    ok(await cairn(['append', url], { input: 'last words' }));
    const closed = ok(await cairn(['close', url]));
    expect(closed.stdout.toString().trim()).toBe(JSON.parse(ok(await cairn(['head', url, '--json'])).stdout.toString())['stream-next-offset']);
    const refused = await cairn(['append', url], { input: 'too late' });
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^cairn: POST \S+closing: 409 Conflict \(stream closed\)/);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    ok(await cairn(['close', url]));
    // A create that disagrees with the existing stream is a conflict too.
    expect((await cairn(['create', url, '--content-type', 'text/plain'])).code).toBe(4);
  });

  it('delete, then read and head exit 3 (not found)', async () => {
    const url = `${base}/deleted`;
    ok(await cairn(['create', url]));
    ok(await cairn(['delete', url]));
    const read = await cairn(['read', url]);
    expect(read.code).toBe(3);
    expect(read.stderr).toMatch(/404 Not Found/);
    expect((await cairn(['head', url])).code).toBe(3);
    expect((await cairn(['delete', url])).code).toBe(3);
    // append asks HEAD first, so it fails before reading stdin.
    expect((await cairn(['append', url], { input: 'x' })).code).toBe(3);
  });

  it('an append above the server limit exits 1, from a file (413) and from stdin, and appends nothing', async () => {
    const url = `${base}/too-big`;
    const offset = ok(await cairn(['create', url])).stdout.toString().trim();
    const big = randomBytes(APPEND_BYTES_MAX + 1024 * 1024);
    const file = path.join(dir, 'too-big.bin');
    await writeFile(file, big);
    // The server answers 413 and closes while the body is still being sent: fetch either reads the
    // 413 or sees only the broken pipe (then the CLI finds the server up and says it refused). Both
    // are exit 1 with a reason; which one a run gets is a race on a busy machine.
    const fromFile = await cairn(['append', url, file]);
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toMatch(/413 Payload Too Large|refused the append/);
    // From stdin the length is unknown: the server may answer 413 or just close the connection.
    const fromStdin = await cairn(['append', url], { input: big });
    expect(fromStdin.code).toBe(1);
    expect(fromStdin.stderr).toMatch(/413 Payload Too Large|refused the append/);
    expect(JSON.parse(ok(await cairn(['head', url, '--json'])).stdout.toString())['stream-next-offset']).toBe(offset);
  });

  it('usage errors exit 2', async () => {
    const bad = [
      ['read', 'not-a-url'],
      ['read'],
      ['create', `${base}/u`, '--ttl-seconds', 'soon'],
      ['create', `${base}/u`, '--ttl-seconds', '5', '--expires-at', '2030-01-01T00:00:00Z'],
      ['append', `${base}/u`, '--producer-id', 'p1', '--content-type', 'text/plain'],
      ['frobnicate'],
    ];
    for (const args of bad) {
      const run = await cairn(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).not.toBe('');
    }
  });

  it('an unreachable server exits 6', async () => {
    const port = await freePort();
    const run = await cairn(['head', `http://127.0.0.1:${port}/v1/stream/x`]);
    expect(run.code).toBe(6);
    expect(run.stderr).toMatch(/cannot reach the server \(ECONNREFUSED\)/);
  });

  it('sends --token / CAIRN_TOKEN as a bearer token; 401/403 exit 5, 503/429 exit 6, 400 exits 1', async () => {
    // A stand-in server answering with the status the path names, recording Authorization.
    const seen: (string | undefined)[] = [];
    const stub = http.createServer((request, response) => {
      seen.push(request.headers.authorization);
      const status = Number(/\/(\d{3})/.exec(request.url ?? '')?.[1] ?? 500);
      response.writeHead(status, { 'content-type': 'text/plain' }).end(`status ${status} as asked`);
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    const address = stub.address();
    const stubBase = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    try {
      const unauthorised = await cairn(['read', `${stubBase}/401`, '--token', 'tok-flag']);
      expect(unauthorised.code).toBe(5);
      expect(unauthorised.stderr).toMatch(/401 Unauthorized: status 401 as asked/);
      expect((await cairn(['delete', `${stubBase}/403`], { env: { CAIRN_TOKEN: 'tok-env' } })).code).toBe(5);
      expect((await cairn(['create', `${stubBase}/503`])).code).toBe(6);
      expect((await cairn(['close', `${stubBase}/429`])).code).toBe(6);
      expect((await cairn(['close', `${stubBase}/400`])).code).toBe(1);
      expect(seen.slice(0, 2)).toEqual(['Bearer tok-flag', 'Bearer tok-env']);
      expect(seen[2]).toBeUndefined();
    } finally {
      await new Promise((resolve) => stub.close(resolve));
    }
  });
});

describe('cairn serve with an invalid configuration', { timeout: TEST_TIMEOUT_MS }, () => {
  it('exits 2 naming the key and the source, before it listens', async () => {
    const port = await freePort();
    const configPath = path.join(dir, 'bad.yaml');
    await writeFile(configPath, 'sealIdleMs: soon\n');
    const cases: [string[], Record<string, string>, string][] = [
      [['--port', String(port), '--chunk-bytes-max', '12'], {}, 'chunkBytesMax (flag --chunk-bytes-max): expected a whole number from 1024 to 268435456'],
      [['--port', String(port)], { CAIRN_DURABILITY: 'fast' }, 'durability (env CAIRN_DURABILITY): expected one of: wal, memory'],
      [['--port', String(port), '--config', configPath], {}, `sealIdleMs (file ${configPath}): expected a whole number, got "soon"`],
      [['--port', String(port), '--object-store', 's3'], {}, 's3Bucket (not set): required with objectStore s3'],
    ];
    for (const [args, env, message] of cases) {
      const run = await cairn(['serve', '--data-dir', path.join(dir, 'never'), ...args], { env });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`cairn: invalid configuration: ${message}`);
    }
    // Nothing listened on the port, and no data directory was made.
    const { code } = await cairn(['head', `http://127.0.0.1:${port}/v1/stream/x`]);
    expect(code).toBe(6);
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });

  it('config print shows the values a serve with the same flags, env and file would use', async () => {
    const configPath = path.join(dir, 'good.yaml');
    await writeFile(configPath, 'segmentSizeBytes: 65536\nlogLevel: debug\n');
    const run = ok(await cairn(['config', 'print', '--format', 'json', '--config', configPath, '--port', '9'], { env: { CAIRN_LOG_LEVEL: 'error' } }));
    expect(JSON.parse(run.stdout.toString())).toMatchObject({ port: 9, segmentSizeBytes: 65_536, logLevel: 'error', durability: 'wal' });
  });

  it('config print takes the old spellings, shows the new names, and warns once per old spelling on stderr', async () => {
    const configPath = path.join(dir, 'old.yaml');
    await writeFile(configPath, 'maxJsonDepth: 16\n');
    const run = ok(
      await cairn(['config', 'print', '--format', 'json', '--config', configPath, '--max-append-bytes', '2048'], {
        env: { CAIRN_LIVE_READERS_PER_IP_MAX: '7', CAIRN_CHUNK_BYTES_MAX: '8192', CAIRN_MAX_CHUNK_BYTES: '4096' },
      }),
    );
    const printed = JSON.parse(run.stdout.toString()) as Record<string, unknown>;
    expect(printed).toMatchObject({ appendBytesMax: 2048, liveReadersPerClientMax: 7, jsonDepthMax: 16, chunkBytesMax: 8192 });
    expect(Object.keys(printed).filter((key) => key.startsWith('max') || key.includes('PerIp'))).toEqual([]);
    expect(run.stderr.split('\n').filter((line) => line.includes('deprecated')).sort()).toEqual([
      'cairn: --max-append-bytes is deprecated; use --append-bytes-max',
      'cairn: CAIRN_LIVE_READERS_PER_IP_MAX is deprecated; use CAIRN_LIVE_READERS_PER_CLIENT_MAX',
      'cairn: CAIRN_MAX_CHUNK_BYTES is deprecated; use CAIRN_CHUNK_BYTES_MAX (both given: CAIRN_CHUNK_BYTES_MAX wins)',
      `cairn: maxJsonDepth (file ${configPath}) is deprecated; use jsonDepthMax`,
    ]);
  });
});

describe('the SSE parser behind cairn tail', () => {
  async function parse(chunks: string[]) {
    async function* body() {
      for (const chunk of chunks) yield new TextEncoder().encode(chunk);
    }
    const events = [];
    for await (const event of sseEvents(body())) events.push(event);
    return events;
  }

  it('joins data lines, splits on LF, CRLF and CR even across chunks, drops comments and a cut-off event', async () => {
    const events = await parse([
      ': comment\nevent: data\ndata:one\r',
      '\ndata: two\r\n\r',
      '\nevent:control\rdata:{"streamNextOffset":"1_5"}\n\n',
      'event: data\ndata:never finished\n',
    ]);
    expect(events).toEqual([
      { event: 'data', data: 'one\ntwo' },
      { event: 'control', data: '{"streamNextOffset":"1_5"}' },
    ]);
  });
});
