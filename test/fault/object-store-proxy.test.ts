/**
 * Object-store faults through a real TCP proxy (support/fault-proxy.ts) between Cairn's S3 client
 * and a real S3 server (test/support/s3-server.ts: S3_ENDPOINT or a one-node Ceph RGW). The
 * server runs in-process with the real `S3ObjectStore` pointed at the proxy, tiny segments sealed
 * at once, no segment cache (every cold read goes to the store) and a small hot-tail budget.
 *
 * Each phase creates a stream, seals 16 KiB of it through a healthy proxy, switches the proxy to
 * a fault, then checks: a read of the sealed data answers 503 with Retry-After and a complete
 * body (never a hang — a client-side guard of READ_HANG_MS declares one —, never a partial 200);
 * appends keep being acknowledged while the hot tail has room, then get 503 with Retry-After
 * (latency: appends and seals simply go on); after the fault clears, sealing catches up, appends
 * are accepted again and the stream reads back byte-exact. A last test repeats the black hole with
 * the S3 client's and the retry policy's defaults, to show they bound the wait too.
 *
 * STORE_OUTAGE_MS (default 5,000; `npm run test:soak` sets 60,000) is how long the store
 * "disappears" (the proxy stops listening) while appends continue.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { S3ObjectStore } from '../../src/object-store/s3-store.ts';
import { findS3ServerSource, startS3Server, warnS3Unavailable, type S3TestServer } from '../support/s3-server.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { readToEnd, waitFor } from '../support/streams.ts';
import { envInteger } from './support/crash-cycles.ts';
import { FaultProxy, type ProxyMode } from './support/fault-proxy.ts';

const source = findS3ServerSource();
const STORE_OUTAGE_MS = envInteger('STORE_OUTAGE_MS', 5_000, 1_000, 600_000);
const BUDGET_BYTES = 128 * 1024;
const APPEND_BYTES = 1024;
/** The S3 client's per-request and connect timeouts in the short-timeout server. */
const REQUEST_TIMEOUT_MS = 2_000;
const CONNECTION_TIMEOUT_MS = 1_000;
/** A read not answered within this is declared hung (the bound the store's timeouts must beat by far). */
const READ_HANG_MS = 120_000;

interface ColdRead {
  status: number;
  retryAfter: string | undefined;
  contentLength: number | undefined;
  receivedBytes: number;
  complete: boolean;
  elapsedMs: number;
}

/** A GET with node:http, so the received byte count can be compared with Content-Length. */
function coldRead(url: string): Promise<ColdRead> {
  const startedMs = performance.now();
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      let receivedBytes = 0;
      response.on('data', (chunk: Buffer) => (receivedBytes += chunk.length));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          retryAfter: response.headers['retry-after'],
          contentLength: response.headers['content-length'] === undefined ? undefined : Number(response.headers['content-length']),
          receivedBytes,
          complete: response.complete,
          elapsedMs: Math.round(performance.now() - startedMs),
        }),
      );
      response.on('error', reject);
    });
    request.setTimeout(READ_HANG_MS, () => request.destroy(new Error(`GET ${url} hung for ${READ_HANG_MS} ms`)));
    request.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class Subject {
  readonly name: string;
  readonly url: string;
  readonly acked: Buffer[] = [];
  #counter = 0;

  constructor(server: TestServer, name: string) {
    this.name = name;
    this.url = `${server.url}/v1/stream/${name}`;
  }

  async create(): Promise<void> {
    expect((await fetch(this.url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
  }

  async append(): Promise<Response> {
    const body = Buffer.alloc(APPEND_BYTES, this.#counter++ % 251);
    body.writeUInt32BE(this.#counter, 0);
    const response = await fetch(this.url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
    if (response.status === 204) this.acked.push(body);
    else await response.arrayBuffer();
    return response;
  }

  get ackedBytes(): number {
    return this.acked.length * APPEND_BYTES;
  }
}

function sealedOffset(server: TestServer, name: string): number {
  return server.registry.get(name, { touch: false }).sealedOffset;
}

/** Appends until one is refused (or `maxAppends`); returns the first refusal. */
async function appendUntilRefused(subject: Subject, maxAppends: number, pauseMs: number): Promise<Response | undefined> {
  for (let i = 0; i < maxAppends; i++) {
    const response = await subject.append();
    if (response.status !== 204) return response;
    if (pauseMs > 0) await sleep(pauseMs);
  }
  return undefined;
}

if (source.kind === 'unavailable') {
  warnS3Unavailable(source.reason);
  test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
    throw new Error(`no S3-compatible server: ${source.reason}`);
  });
  test.skip(`object-store faults through a TCP proxy (skipped: ${source.reason})`, () => {});
} else {
  let s3: S3TestServer;
  let proxy: FaultProxy;

  beforeAll(async () => {
    s3 = await startS3Server(source);
    proxy = await FaultProxy.start(s3.storeConfig().endpoint ?? '');
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await s3?.stop();
  }, 60_000);

  describe('short S3 timeouts', () => {
    let server: TestServer;
    const measured: string[] = [];

    beforeAll(async () => {
      await proxy.setMode({ kind: 'pass' });
      server = await startTestServer(
        { sealIdleMs: 0, segmentSizeBytes: 4096, hotTailBudgetBytes: BUDGET_BYTES, segmentCacheBytes: 0, logLevel: 'silent' },
        {
          objectStore: new S3ObjectStore({ ...s3.storeConfig(), endpoint: proxy.url, requestTimeoutMs: REQUEST_TIMEOUT_MS, connectionTimeoutMs: CONNECTION_TIMEOUT_MS }),
          retryPolicy: { attemptsMax: 3, backoffBaseMs: 50, backoffMaxMs: 500, elapsedMsMax: 5_000 },
        },
      );
    });

    afterAll(async () => {
      await proxy.setMode({ kind: 'pass' });
      await server?.stop();
      console.log(`object-store proxy faults (outage ${STORE_OUTAGE_MS} ms):\n${measured.join('\n')}`);
    });

    /** Healthy start: 16 KiB appended and sealed through the proxy. */
    async function healthySubject(name: string): Promise<Subject> {
      const subject = new Subject(server, name);
      await subject.create();
      for (let i = 0; i < 16; i++) expect((await subject.append()).status).toBe(204);
      await waitFor(() => sealedOffset(server, name) === subject.ackedBytes, 30_000);
      return subject;
    }

    /** The store is back: sealing catches up, appends are accepted, everything reads back once. */
    async function recovers(subject: Subject): Promise<number> {
      const startedMs = performance.now();
      await proxy.setMode({ kind: 'pass' });
      await waitFor(() => server.registry.hotTailBytes < BUDGET_BYTES / 2, 90_000);
      for (let i = 0; i < 4; i++) expect((await subject.append()).status).toBe(204);
      await waitFor(() => sealedOffset(server, subject.name) === subject.ackedBytes, 90_000);
      const catchUpMs = Math.round(performance.now() - startedMs);
      expect((await readToEnd(subject.url)).equals(Buffer.concat(subject.acked))).toBe(true);
      return catchUpMs;
    }

    /**
     * A read of the sealed bytes: 503 + Retry-After, a complete body, no hang — for a catch-up
     * read, and for SSE and long-poll readers starting in sealed history (an SSE reader must not
     * get a 200 event stream that closes empty: it would reconnect in a loop without a status).
     */
    async function coldReadRefused(subject: Subject): Promise<ColdRead> {
      const reads: [string, ColdRead][] = [];
      for (const live of ['', '&live=sse', '&live=long-poll']) {
        reads.push([live, await coldRead(`${subject.url}?offset=-1${live}`)]);
      }
      for (const [live, read] of reads) {
        expect(read.status, `read${live} while the store fails`).toBe(503);
        expect(read.retryAfter).toMatch(/^\d+$/);
        expect(read.complete, 'the 503 body arrived whole').toBe(true);
        expect(read.receivedBytes).toBe(read.contentLength);
      }
      return reads[0][1];
    }

    const outages: [string, ProxyMode][] = [
      ['connection resets', { kind: 'reset' }],
      ['black hole (accepts, never answers)', { kind: 'blackhole' }],
      ['HTTP 503 SlowDown', { kind: 'http-error', status: 503, code: 'SlowDown' }],
      ['HTTP 500 InternalError', { kind: 'http-error', status: 500, code: 'InternalError' }],
      ['HTTP 503 ServiceUnavailable', { kind: 'http-error', status: 503, code: 'ServiceUnavailable' }],
    ];
    test.each(outages)('%s: appends until the budget, then 503; cold reads 503; catch-up after', async (label, mode) => {
      const subject = await healthySubject(`proxy-${mode.kind}-${'code' in mode ? mode.code : 'x'}`);
      const failuresBefore = server.tiering.stats().failures;
      await proxy.setMode(mode);
      const read = await coldReadRefused(subject);
      const ackedBefore = subject.acked.length;
      const refused = await appendUntilRefused(subject, 2 * (BUDGET_BYTES / APPEND_BYTES), 0);
      expect(refused?.status, 'an append past the hot-tail budget').toBe(503);
      expect(refused?.headers.get('retry-after')).toMatch(/^\d+$/);
      const acceptedInOutage = subject.acked.length - ackedBefore;
      expect(acceptedInOutage, 'appends acknowledged during the outage').toBeGreaterThan(0);
      expect(server.registry.hotTailBytes).toBeLessThanOrEqual(BUDGET_BYTES);
      await waitFor(() => server.tiering.stats().failures > failuresBefore, 60_000);
      const catchUpMs = await recovers(subject);
      measured.push(
        `  ${label}: cold read 503 in ${read.elapsedMs} ms; ${acceptedInOutage} appends (${acceptedInOutage} KiB) acked in the outage, then 503; ` +
          `caught up ${catchUpMs} ms after the store returned; ${subject.ackedBytes} B read back exact`,
      );
    }, 240_000);

    test('the store disappears (connections refused) for STORE_OUTAGE_MS while appends continue', async () => {
      const subject = await healthySubject('proxy-refuse');
      await proxy.setMode({ kind: 'refuse' });
      const outageStartedMs = performance.now();
      const read = await coldReadRefused(subject);
      // A steady trickle of appends for the whole outage: acknowledged until the budget is used, then 503.
      const statuses = new Map<number, number>();
      let firstRefusalMs: number | undefined;
      while (performance.now() - outageStartedMs < STORE_OUTAGE_MS) {
        const response = await subject.append();
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status !== 204) {
          expect(response.status).toBe(503);
          expect(response.headers.get('retry-after')).toMatch(/^\d+$/);
          firstRefusalMs ??= Math.round(performance.now() - outageStartedMs);
        }
        await sleep(Math.max(1, Math.floor(STORE_OUTAGE_MS / 2_000)));
      }
      expect(statuses.get(204) ?? 0, 'appends acknowledged during the outage').toBeGreaterThan(0);
      const catchUpMs = await recovers(subject);
      measured.push(
        `  store gone for ${STORE_OUTAGE_MS} ms (ECONNREFUSED): cold read 503 in ${read.elapsedMs} ms; statuses during the outage ` +
          `${[...statuses].map(([s, n]) => `${s}×${n}`).join(', ')}; first 503 after ${firstRefusalMs ?? 'never'} ms; ` +
          `caught up ${catchUpMs} ms after the store returned; ${subject.ackedBytes} B read back exact`,
      );
    }, STORE_OUTAGE_MS + 240_000);

    test('responses cut mid-body: a history read answers 503 whole, never a partial 200; reads recover after', async () => {
      const subject = await healthySubject('proxy-truncate');
      // Segment GET responses (4 KiB bodies) are cut after 1 KiB; PUT answers (a few hundred bytes) pass.
      await proxy.setMode({ kind: 'truncate', afterBytes: 1024 });
      const read = await coldReadRefused(subject);
      await proxy.setMode({ kind: 'pass' });
      const healed = await coldRead(`${subject.url}?offset=-1`);
      expect(healed.status).toBe(200);
      expect(healed.receivedBytes).toBe(healed.contentLength);
      expect((await readToEnd(subject.url)).equals(Buffer.concat(subject.acked))).toBe(true);
      measured.push(`  responses cut after 1 KiB: history read 503 in ${read.elapsedMs} ms (complete body); 200 and byte-exact once the store was whole again`);
    }, 120_000);

    test('added latency (200 ms per chunk each way): appends and seals go on, cold reads answer 200', async () => {
      const subject = await healthySubject('proxy-latency');
      await proxy.setMode({ kind: 'latency', delayMs: 200 });
      for (let i = 0; i < 32; i++) expect((await subject.append()).status).toBe(204);
      const startedMs = performance.now();
      await waitFor(() => sealedOffset(server, subject.name) === subject.ackedBytes, 120_000);
      const sealMs = Math.round(performance.now() - startedMs);
      const read = await coldRead(`${subject.url}?offset=-1`);
      expect(read.status).toBe(200);
      expect(read.receivedBytes).toBe(read.contentLength);
      expect((await readToEnd(subject.url)).equals(Buffer.concat(subject.acked))).toBe(true);
      await proxy.setMode({ kind: 'pass' });
      measured.push(`  latency 200 ms per chunk: 32 appends acked, sealed ${sealMs} ms later; cold read 200 in ${read.elapsedMs} ms, byte-exact`);
    }, 240_000);
  });

  test('black hole with the default S3 timeouts and retry policy: a cold read still ends in 503', async () => {
    await proxy.setMode({ kind: 'pass' });
    const server = await startTestServer(
      { sealIdleMs: 0, segmentSizeBytes: 4096, segmentCacheBytes: 0, logLevel: 'silent' },
      { objectStore: new S3ObjectStore({ ...s3.storeConfig(), endpoint: proxy.url }) },
    );
    try {
      const subject = new Subject(server, 'proxy-default-timeouts');
      await subject.create();
      for (let i = 0; i < 8; i++) expect((await subject.append()).status).toBe(204);
      await waitFor(() => sealedOffset(server, subject.name) === subject.ackedBytes, 30_000);
      await proxy.setMode({ kind: 'blackhole' });
      const read = await coldRead(`${subject.url}?offset=-1`);
      expect(read.status).toBe(503);
      expect(read.receivedBytes).toBe(read.contentLength);
      // Hot data is still served while the store hangs.
      const tail = await fetch(`${subject.url}?offset=now`);
      expect(tail.status).toBe(200);
      console.log(`object-store proxy faults: black hole with default timeouts: cold read 503 after ${read.elapsedMs} ms`);
    } finally {
      await proxy.setMode({ kind: 'pass' });
      await server.stop();
    }
  }, 240_000);
}
