/**
 * TLS and HTTP/2 (README "TLS and HTTP/2"), against real servers on port 0:
 * - one TLS port speaks HTTP/2 to clients offering h2 and HTTP/1.1 to a plain HTTPS client (ALPN);
 * - appends, catch-up reads, long-poll and SSE work over HTTP/2, several live streams on one session;
 *   an upload cancelled mid-body stores nothing (Node's compatibility layer would end it as whole);
 * - the silence limit (--body-timeout-ms) is per stream on HTTP/2: a stalled upload is reset while
 *   a long-poll on the same session waits it out; an oversized head is refused; an upload still
 *   trickling past --request-timeout-ms is reset; an idle session gets a GOAWAY;
 * - the certificate is reloaded when its files change: new connections get the new one, open
 *   connections keep working; a bad pair is refused and the certificate in use kept;
 * - h2c (--http2-cleartext) serves HTTP/2 with prior knowledge;
 * - graceful shutdown ends SSE over HTTP/2 with its final control event.
 */
import http2 from 'node:http2';
import https from 'node:https';
import { copyFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';
import { connectH2, h2Open, h2Request } from '../support/http2-client.ts';
import { waitFor } from '../support/streams.ts';
import { describeCertificate, selfSignedCertificate, type TestCertificate } from '../support/tls.ts';

type Certificate = Awaited<ReturnType<typeof selfSignedCertificate>>;
const TEXT = { 'content-type': 'text/plain' };

/** A plain HTTP/1.1 HTTPS request (node:https offers only http/1.1 by ALPN). */
function https1(
  url: string,
  ca: Buffer,
  method: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; httpVersion: string; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method, ca, headers: { ...(body === undefined ? {} : TEXT), ...headers }, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, httpVersion: response.httpVersion, body: text }));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** The certificate a new TLS connection to `url` is shown (its serial number). */
function servedSerial(url: string, ca: Buffer[]): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), ca, ALPNProtocols: ['h2'] }, () => {
      const serial = socket.getPeerX509Certificate()?.serialNumber ?? '';
      socket.destroy();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('HTTPS with HTTP/2 and HTTP/1.1 on one port', () => {
  let certificate: Certificate;
  let server: TestServer;
  let session: http2.ClientHttp2Session;
  const bodyTimeoutMs = 400;

  beforeAll(async () => {
    certificate = await selfSignedCertificate();
    server = await startTestServer({
      tlsCertFile: certificate.certFile,
      tlsKeyFile: certificate.keyFile,
      longPollTimeoutMs: 3_000,
      bodyTimeoutMs,
      headerBytesMax: 4096,
    });
    session = await connectH2(server.url, certificate.cert);
  });
  afterAll(async () => {
    session.close();
    await server.stop();
    await certificate.remove();
  });

  it('negotiates h2 by ALPN and serves create, append and read over HTTP/2', async () => {
    expect(server.url).toMatch(/^https:/);
    expect(session.alpnProtocol).toBe('h2');
    expect((await h2Request(session, 'PUT', '/v1/stream/h2-basic', { headers: TEXT })).status).toBe(201);
    expect((await h2Request(session, 'POST', '/v1/stream/h2-basic', { headers: TEXT, body: 'one ' })).status).toBe(204);
    expect((await h2Request(session, 'POST', '/v1/stream/h2-basic', { headers: TEXT, body: 'two' })).status).toBe(204);
    const read = await h2Request(session, 'GET', '/v1/stream/h2-basic?offset=-1');
    expect(read.status).toBe(200);
    expect(read.body.toString()).toBe('one two');
    expect(read.headers['stream-up-to-date']).toBe('true');
  });

  it('falls back to HTTP/1.1 for a client that offers only http/1.1', async () => {
    const created = await https1(`${server.url}/v1/stream/h1-fallback`, certificate.cert, 'PUT', 'hello');
    expect(created).toMatchObject({ status: 201, httpVersion: '1.1' });
    const read = await https1(`${server.url}/v1/stream/h1-fallback?offset=-1`, certificate.cert, 'GET');
    expect(read).toMatchObject({ status: 200, httpVersion: '1.1', body: 'hello' });
    // The HTTP/1.1 limits hold on the TLS port too: a head above --header-bytes-max gets 431.
    const big = await https1(`${server.url}/healthz`, certificate.cert, 'GET', undefined, { 'x-big': 'a'.repeat(8_000) });
    expect(big.status).toBe(431);
  });

  it('answers a long-poll over HTTP/2 when data arrives', async () => {
    const created = await h2Request(session, 'PUT', '/v1/stream/h2-long-poll', { headers: TEXT });
    const tail = String(created.headers['stream-next-offset']);
    const poll = h2Request(session, 'GET', `/v1/stream/h2-long-poll?offset=${tail}&live=long-poll`);
    await waitFor(async () => (await liveLongPollsWaiting(session)) > 0);
    await h2Request(session, 'POST', '/v1/stream/h2-long-poll', { headers: TEXT, body: 'woken' });
    const answered = await poll;
    expect(answered.status).toBe(200);
    expect(answered.body.toString()).toBe('woken');
  });

  it('keeps 12 SSE streams open on one HTTP/2 session and delivers every append to each', async () => {
    const names = Array.from({ length: 12 }, (_, index) => `h2-sse-${index}`);
    for (const name of names) await h2Request(session, 'PUT', `/v1/stream/${name}`, { headers: TEXT });
    const open = names.map((name) => h2Open(session, `/v1/stream/${name}?offset=-1&live=sse`));
    await waitFor(() => open.every((stream) => stream.status() === 200));
    for (let round = 0; round < 3; round++) {
      for (const name of names) await h2Request(session, 'POST', `/v1/stream/${name}`, { headers: TEXT, body: `${name}:${round};` });
    }
    await waitFor(() => open.every((stream, index) => stream.text().includes(`h2-sse-${index}:2;`)), 20_000);
    for (const [index, stream] of open.entries()) {
      for (let round = 0; round < 3; round++) expect(stream.text()).toContain(`data:h2-sse-${index}:${round};`);
      stream.close();
    }
  });

  it('resets a stalled upload stream after --body-timeout-ms while a long-poll on the same session waits on', async () => {
    const created = await h2Request(session, 'PUT', '/v1/stream/h2-stall', { headers: TEXT });
    const tail = String(created.headers['stream-next-offset']);
    const poll = h2Request(session, 'GET', `/v1/stream/h2-stall?offset=${tail}&live=long-poll`);
    const stalled = session.request({ ':method': 'POST', ':path': '/v1/stream/h2-stall', 'content-type': 'text/plain', 'content-length': '100' });
    stalled.write('only ten b');
    const stalledClose = new Promise<number>((resolve) => stalled.on('close', () => resolve(stalled.rstCode ?? -1)));
    stalled.on('error', () => {});
    // The stalled stream is reset (CANCEL); the silent long-poll is exempt and ends with its 204.
    expect(await stalledClose).toBe(http2.constants.NGHTTP2_CANCEL);
    expect((await poll).status).toBe(204);
    expect(session.closed || session.destroyed).toBe(false);
  });

  it('stores nothing of an upload the client cancels mid-body (no Content-Length)', async () => {
    expect((await h2Request(session, 'PUT', '/v1/stream/h2-cancelled', { headers: TEXT })).status).toBe(201);
    // waitForTrailers: node's client would otherwise end the body (END_STREAM) before its reset,
    // and the server would rightly see a whole body; browsers and curl reset without ending.
    const upload = session.request(
      { ':method': 'POST', ':path': '/v1/stream/h2-cancelled', 'content-type': 'text/plain' },
      { waitForTrailers: true },
    );
    upload.on('error', () => {});
    upload.write('half of a message');
    // Frames on one connection arrive in order: once a later request is answered, the server has the partial body.
    expect((await h2Request(session, 'GET', '/healthz')).status).toBe(200);
    upload.close(http2.constants.NGHTTP2_CANCEL);
    expect((await h2Request(session, 'GET', '/healthz')).status).toBe(200);
    const read = await h2Request(session, 'GET', '/v1/stream/h2-cancelled?offset=-1');
    expect(read.status).toBe(200);
    expect(read.body.toString()).toBe('');
  });

  it('refuses a request head above --header-bytes-max; the session keeps working', async () => {
    // A client that has the server's SETTINGS refuses to send it; one that has not yet (or ignores
    // them) gets the stream reset by the server. Either way the request is not served.
    const big = { 'x-big': 'a'.repeat(8_000) };
    const refused = await h2Request(session, 'GET', '/healthz', { headers: big }).then(
      (response) => `served with ${response.status}`,
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/Stream closed with error code|reset/);
    expect((await h2Request(session, 'GET', '/healthz')).status).toBe(200);
  });
});

/** Long-polls waiting now, from /metrics (read over the same session). */
async function liveLongPollsWaiting(session: http2.ClientHttp2Session): Promise<number> {
  const text = (await h2Request(session, 'GET', '/metrics')).body.toString();
  const match = /^cairn_live_connections\{mode="long-poll"\} (\d+)$/m.exec(text);
  return Number(match?.[1] ?? 0);
}

describe('whole-request and idle limits over HTTP/2', () => {
  let certificate: Certificate;
  let server: TestServer;

  beforeAll(async () => {
    certificate = await selfSignedCertificate();
    server = await startTestServer({
      tlsCertFile: certificate.certFile,
      tlsKeyFile: certificate.keyFile,
      headersTimeoutMs: 500,
      requestTimeoutMs: 1_000,
      bodyTimeoutMs: 30_000,
      idleTimeoutMs: 1_000,
    });
  });
  afterAll(async () => {
    await server.stop();
    await certificate.remove();
  });

  it('resets an upload still trickling past --request-timeout-ms, and stores nothing of it', async () => {
    const session = await connectH2(server.url, certificate.cert);
    expect((await h2Request(session, 'PUT', '/v1/stream/h2-trickle', { headers: TEXT })).status).toBe(201);
    const upload = session.request({ ':method': 'POST', ':path': '/v1/stream/h2-trickle', 'content-type': 'text/plain' });
    upload.on('error', () => {});
    const closed = new Promise<number>((resolve) => upload.on('close', () => resolve(upload.rstCode ?? -1)));
    // A byte every 50 ms, far inside the 30 s silence limit; stops when the server resets the stream.
    let sent = 0;
    while (!upload.closed && sent < 600) {
      upload.write('x');
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await closed).toBe(http2.constants.NGHTTP2_CANCEL);
    const read = await h2Request(session, 'GET', '/v1/stream/h2-trickle?offset=-1');
    expect(read.body.length).toBe(0);
    session.close();
  }, 60_000);

  it('answers 408 to an HTTP/1.1 head on the TLS port not finished within --headers-timeout-ms', async () => {
    const { hostname, port } = new URL(server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      const socket = tls.connect({ host: hostname, port: Number(port), ca: certificate.cert, ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
      });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (text += chunk));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  }, 30_000);

  it('sends a GOAWAY to a session idle for --idle-timeout-ms', async () => {
    const session = await connectH2(server.url, certificate.cert);
    expect((await h2Request(session, 'GET', '/healthz')).status).toBe(200);
    const goaway = await new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    expect(goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    session.destroy();
  }, 30_000);
});

describe('certificate reload', () => {
  let first: Certificate;
  let server: TestServer;
  let dir: string;
  const warnings: string[] = [];

  beforeAll(async () => {
    first = await selfSignedCertificate(undefined, 'cairn-first');
    dir = first.dir;
    const logger = pino(
      { level: 'warn' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          warnings.push(chunk.toString());
          done();
        },
      }),
    );
    server = await startTestServer({ tlsCertFile: first.certFile, tlsKeyFile: first.keyFile }, { logger });
  });
  afterAll(async () => {
    await server.stop();
    await first.remove();
  });

  /** Replaces the served files by rename, as certificate managers do. */
  async function install(cert: string, key: string): Promise<void> {
    await copyFile(cert, path.join(dir, 'cert.next'));
    await copyFile(key, path.join(dir, 'key.next'));
    await rename(path.join(dir, 'key.next'), first.keyFile);
    await rename(path.join(dir, 'cert.next'), first.certFile);
  }

  it('serves a new certificate to new connections; open connections keep working; a bad pair is refused', async () => {
    const second = await selfSignedCertificate(undefined, 'cairn-second');
    const third = await selfSignedCertificate(undefined, 'cairn-third');
    const ca = [first.cert, second.cert, third.cert];
    const firstSerial = describeCertificate(first.cert).serialNumber;
    expect(await servedSerial(server.url, ca)).toBe(firstSerial);
    const old = await connectH2(server.url, ca);
    expect((await h2Request(old, 'PUT', '/v1/stream/reload', { headers: TEXT })).status).toBe(201);

    await install(second.certFile, second.keyFile);
    await waitFor(async () => (await servedSerial(server.url, ca)) === second.serialNumber, 30_000);
    // The connection made before the swap still works, with the certificate it was made with.
    expect((await h2Request(old, 'POST', '/v1/stream/reload', { headers: TEXT, body: 'after swap' })).status).toBe(204);
    expect((old.socket as tls.TLSSocket).getPeerX509Certificate()?.serialNumber).toBe(firstSerial);

    // A key that does not match the certificate: refused, the second certificate stays in use.
    await writeFile(path.join(dir, 'key.next'), third.key);
    await rename(path.join(dir, 'key.next'), first.keyFile);
    await waitFor(() => warnings.some((line) => line.includes('do not load')), 30_000);
    expect(await servedSerial(server.url, ca)).toBe(second.serialNumber);
    // Then the third certificate's own pair: installed at a later check.
    await install(third.certFile, third.keyFile);
    await waitFor(async () => (await servedSerial(server.url, ca)) === third.serialNumber, 30_000);
    const fresh = await connectH2(server.url, ca);
    expect((await h2Request(fresh, 'GET', '/v1/stream/reload?offset=-1')).body.toString()).toBe('after swap');
    fresh.close();
    old.close();
    await second.remove();
    await third.remove();
  }, 90_000);
});

describe('h2c (--http2-cleartext)', () => {
  let server: TestServer;
  let session: http2.ClientHttp2Session;

  beforeAll(async () => {
    server = await startTestServer({ http2Cleartext: true, longPollTimeoutMs: 3_000 });
    session = await connectH2(server.url);
  });
  afterAll(async () => {
    session.close();
    await server.stop();
  });

  it('serves every operation over HTTP/2 with prior knowledge, SSE included', async () => {
    expect(server.url).toMatch(/^http:/);
    expect((await h2Request(session, 'PUT', '/v1/stream/h2c', { headers: TEXT, body: 'first;' })).status).toBe(201);
    const sse = h2Open(session, '/v1/stream/h2c?offset=-1&live=sse');
    await waitFor(() => sse.text().includes('data:first;'));
    expect((await h2Request(session, 'POST', '/v1/stream/h2c', { headers: TEXT, body: 'second;' })).status).toBe(204);
    await waitFor(() => sse.text().includes('data:second;'));
    sse.close();
    expect((await h2Request(session, 'HEAD', '/v1/stream/h2c')).status).toBe(200);
    expect((await h2Request(session, 'GET', '/v1/stream/h2c?offset=-1')).body.toString()).toBe('first;second;');
    expect((await h2Request(session, 'DELETE', '/v1/stream/h2c')).status).toBe(204);
    expect((await h2Request(session, 'GET', '/v1/stream/h2c?offset=-1')).status).toBe(404);
  });
});

describe('graceful shutdown over HTTP/2', () => {
  it('ends an SSE stream with its final control event and stops', async () => {
    const certificate: TestCertificate & { remove(): Promise<void> } = await selfSignedCertificate();
    const server = await startTestServer({ tlsCertFile: certificate.certFile, tlsKeyFile: certificate.keyFile });
    const session = await connectH2(server.url, certificate.cert);
    await h2Request(session, 'PUT', '/v1/stream/shutdown', { headers: TEXT, body: 'x' });
    const sse = h2Open(session, '/v1/stream/shutdown?offset=-1&live=sse');
    await waitFor(() => sse.text().includes('data:x'));
    const controlsBefore = sse.text().split('event: control').length;
    await server.stop();
    await sse.ended;
    expect(sse.text().split('event: control').length).toBeGreaterThan(controlsBefore);
    session.destroy();
    await certificate.remove();
  }, 60_000);
});
