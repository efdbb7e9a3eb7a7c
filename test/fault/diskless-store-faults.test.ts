/**
 * Diskless durability (`--durability object-store`) under object-store faults during WAL object
 * flushes, through the real TCP fault proxy (support/fault-proxy.ts) in front of a real S3 server:
 * connection resets, HTTP 503 SlowDown, a black hole and responses cut mid-body, each for a few
 * seconds while four writers append in sequence and probes are sent every 100 ms without waiting.
 * Every append must end 204 (then it is stored) or 503 with Retry-After (then nothing of it is
 * written); appends in flight when the fault starts wait and complete once the store is back. At the end a second server on an EMPTY data directory, reading
 * the same bucket directly, must hold exactly the acknowledged appends: each once, each writer's
 * in its order, nothing else.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { S3ObjectStore } from '../../src/object-store/s3-store.ts';
import { findS3ServerSource, startS3Server, warnS3Unavailable, type S3TestServer } from '../support/s3-server.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { readToEnd } from '../support/streams.ts';
import { FaultProxy, type ProxyMode } from './support/fault-proxy.ts';

const source = findS3ServerSource();
const WRITERS = 4;
const APPEND_BYTES = 64;
/** How long each fault lasts, ms: past the store's retry budget below (3 s), so the writer gives up on puts for a while. */
const FAULT_MS = 6_000;
/** A probe append is sent every this many ms without waiting for the previous one. */
const PROBE_EVERY_MS = 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (source.kind === 'unavailable') {
  warnS3Unavailable(source.reason);
  test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
    throw new Error(`no S3-compatible server: ${source.reason}`);
  });
  test.skip(`diskless store faults (skipped: ${source.reason})`, () => {});
} else {
  let s3: S3TestServer;
  let proxy: FaultProxy;
  let server: TestServer | undefined;
  let reader: TestServer | undefined;
  const dirs: string[] = [];

  beforeAll(async () => {
    s3 = await startS3Server(source);
    proxy = await FaultProxy.start(s3.storeConfig().endpoint ?? '');
  }, 120_000);

  afterAll(async () => {
    await proxy?.setMode({ kind: 'pass' });
    await server?.stop();
    await reader?.stop();
    await proxy?.close();
    await s3?.stop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 120_000);

  test('appends under store faults: 204 only once stored, else 503 + Retry-After; a fresh node holds exactly what was acknowledged', async () => {
    const storeConfig = s3.storeConfig();
    const fsStoreDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-diskless-unused-'));
    dirs.push(fsStoreDir);
    server = await startTestServer(
      { durability: 'object-store', walObjectFlushMs: 10, logLevel: 'silent' },
      {
        objectStore: new S3ObjectStore({ ...storeConfig, endpoint: proxy.url, requestTimeoutMs: 2_000, connectionTimeoutMs: 1_000 }),
        retryPolicy: { attemptsMax: 3, backoffBaseMs: 50, backoffMaxMs: 500, elapsedMsMax: 3_000 },
      },
    );
    const url = `${server.url}/v1/stream/diskless-faults`;
    expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);

    const acked: Buffer[][] = Array.from({ length: WRITERS }, () => []);
    const unexpected: string[] = [];
    const counts = { acked: 0, refused: 0, waitedOverFaultMs: 0 };
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      for (let n = 0; !stop; n++) {
        const body = Buffer.alloc(APPEND_BYTES, 0x20 + w);
        body.write(`w${w}:${n};`, 'latin1');
        const startedMs = performance.now();
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
        const text = await response.text();
        if (response.status === 204) {
          acked[w]!.push(body);
          counts.acked++;
          if (performance.now() - startedMs > FAULT_MS) counts.waitedOverFaultMs++;
        } else if (response.status === 503 && /^\d+$/.test(response.headers.get('retry-after') ?? '')) {
          counts.refused++;
          await sleep(100);
        } else {
          unexpected.push(`writer ${w} append ${n}: ${response.status} ${text}`);
          return;
        }
      }
    };
    const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
    // Probes: one append every PROBE_EVERY_MS, not waiting for the last, so some arrive while the
    // writer refuses new records (WAL_OBJECT_STORE_UNAVAILABLE). Their order is not defined.
    const probesAcked = new Set<string>();
    const probes: Promise<void>[] = [];
    const probe = async (n: number): Promise<void> => {
      const body = Buffer.alloc(APPEND_BYTES, 0x20 + WRITERS);
      body.write(`probe:${n};`, 'latin1');
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      const text = await response.text();
      if (response.status === 204) probesAcked.add(body.toString('latin1'));
      else if (response.status === 503 && /^\d+$/.test(response.headers.get('retry-after') ?? '')) counts.refused++;
      else unexpected.push(`probe ${n}: ${response.status} ${text}`);
    };
    const prober = (async () => {
      for (let n = 0; !stop; n++) {
        probes.push(probe(n));
        await sleep(PROBE_EVERY_MS);
      }
    })();
    const faults: [string, ProxyMode][] = [
      ['connection resets', { kind: 'reset' }],
      ['HTTP 503 SlowDown', { kind: 'http-error', status: 503, code: 'SlowDown' }],
      ['black hole', { kind: 'blackhole' }],
      ['responses cut mid-body', { kind: 'truncate', afterBytes: 20 }],
    ];
    const perFault: string[] = [];
    try {
      for (const [label, mode] of faults) {
        await sleep(500);
        const before = { ...counts };
        await proxy.setMode(mode);
        await sleep(FAULT_MS);
        await proxy.setMode({ kind: 'pass' });
        await sleep(1_500);
        perFault.push(`${label}: ${counts.acked - before.acked} acked, ${counts.refused - before.refused} refused with 503`);
      }
    } finally {
      stop = true;
      await proxy.setMode({ kind: 'pass' });
      await Promise.all(writers);
      await prober;
      await Promise.all(probes);
    }
    console.log(`diskless store faults: ${counts.acked} + ${probesAcked.size} probes acked, ${counts.refused} refused (503), ${counts.waitedOverFaultMs} waited longer than a fault and were acked\n  ${perFault.join('\n  ')}`);
    expect(unexpected).toEqual([]);
    expect(counts.refused, 'some appends were refused with 503 during the faults').toBeGreaterThan(0);
    for (let w = 0; w < WRITERS; w++) expect(acked[w]!.length, `writer ${w} acked appends`).toBeGreaterThan(0);
    await server.stop();
    server = undefined;

    // A fresh node on an empty data directory, straight to the bucket.
    reader = await startTestServer({ durability: 'object-store', logLevel: 'silent' }, { objectStore: new S3ObjectStore(storeConfig) });
    const stored = await readToEnd(`${reader.url}/v1/stream/diskless-faults`);
    expect(stored.length % APPEND_BYTES).toBe(0);
    const next = new Array<number>(WRITERS).fill(0);
    const probesStored = new Set<string>();
    for (let at = 0; at < stored.length; at += APPEND_BYTES) {
      const append = stored.subarray(at, at + APPEND_BYTES);
      const w = append[append.length - 1]! - 0x20;
      if (w === WRITERS) {
        const text = append.toString('latin1');
        expect(probesAcked.has(text) && !probesStored.has(text), `probe ${text.slice(0, 12)} at ${at}: acknowledged, and stored once`).toBe(true);
        probesStored.add(text);
        continue;
      }
      const expected = acked[w]?.[next[w]!];
      expect(expected === undefined ? `unacknowledged append ${append.toString('latin1', 0, 12)} at ${at}` : append.equals(expected), `append at byte ${at}`).toBe(true);
      next[w]!++;
    }
    expect(next, 'every acknowledged append present').toEqual(acked.map((list) => list.length));
    expect(probesStored.size, 'every acknowledged probe present').toBe(probesAcked.size);
  }, 300_000);
}
