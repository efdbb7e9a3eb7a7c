/**
 * `/metrics`, `/readyz` and request ids on a real server (issue 6): exact counter values after
 * known traffic, scraped over HTTP and parsed as Prometheus text.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, test } from 'vitest';
import { FaultInjectingObjectStore, injectedUnavailable, MemoryObjectStore } from '../../src/object-store/index.ts';
import { scrape, sampleValue, type Sample } from '../support/prometheus-text.ts';
import { startTestServer } from '../support/server.ts';
import { readToEnd, waitFor } from '../support/streams.ts';

const OCTETS = { 'content-type': 'application/octet-stream' };

function requestCount(samples: Sample[], operation: string, status: number): number {
  return sampleValue(samples, 'cairn_http_request_duration_seconds_count', { operation, status: String(status) });
}

test('appends, seals, cold reads: exact counters', async () => {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  const server = await startTestServer({ sealIdleMs: 0, logLevel: 'error' }, { objectStore: store });
  try {
    const url = `${server.url}/v1/stream/metered`;
    expect((await fetch(url, { method: 'PUT', headers: OCTETS })).status).toBe(201);
    const APPENDS = 25;
    const BYTES = 100;
    const bodies: Buffer[] = [];
    for (let i = 0; i < APPENDS; i++) {
      const body = Buffer.alloc(BYTES, i);
      bodies.push(body);
      expect((await fetch(url, { method: 'POST', headers: OCTETS, body })).status).toBe(204);
    }
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${server.url}/v1/stream/absent`, { method: 'HEAD' })).status).toBe(404);

    let samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_append_bytes_total')).toBe(APPENDS * BYTES);
    expect(requestCount(samples, 'append', 204)).toBe(APPENDS);
    expect(requestCount(samples, 'create', 201)).toBe(1);
    expect(requestCount(samples, 'head', 200)).toBe(1);
    expect(requestCount(samples, 'head', 404)).toBe(1);
    expect(sampleValue(samples, 'cairn_streams')).toBe(1);
    // Every append is one WAL record; some batches may hold several.
    expect(sampleValue(samples, 'cairn_wal_batch_records_sum')).toBeGreaterThanOrEqual(APPENDS + 1);
    expect(sampleValue(samples, 'cairn_wal_fsync_duration_seconds_count')).toBe(sampleValue(samples, 'cairn_wal_batch_records_count'));
    expect(sampleValue(samples, 'process_cpu_seconds_total')).toBeGreaterThan(0);

    // Sealing (idle 0): everything moves to segments.
    await waitFor(() => server.registry.get('metered', { touch: false }).sealedOffset === APPENDS * BYTES);
    await waitFor(() => server.registry.hotTailBytes === 0);
    const segmentCount = server.registry.get('metered', { touch: false }).segments.length;
    samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_sealed_bytes_total')).toBe(APPENDS * BYTES);
    expect(sampleValue(samples, 'cairn_segments_written_total')).toBe(segmentCount);
    expect(sampleValue(samples, 'cairn_hot_tail_bytes')).toBe(0);
    expect(sampleValue(samples, 'cairn_seal_lag_seconds')).toBe(0);
    // A segment and a manifest per seal.
    expect(sampleValue(samples, 'cairn_object_store_requests_total', { operation: 'put' })).toBeGreaterThanOrEqual(2 * segmentCount);
    const getsBefore = sampleValue(samples, 'cairn_object_store_requests_total', { operation: 'get' });
    const missesBefore = sampleValue(samples, 'cairn_segment_cache_misses_total');
    expect(sampleValue(samples, 'cairn_segment_cache_hits_total')).toBe(0);

    // First cold read: one miss (one GET) per segment; the second: one hit per segment.
    expect((await readToEnd(url)).equals(Buffer.concat(bodies))).toBe(true);
    samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_segment_cache_misses_total') - missesBefore).toBe(segmentCount);
    expect(sampleValue(samples, 'cairn_object_store_requests_total', { operation: 'get' }) - getsBefore).toBe(segmentCount);
    expect(sampleValue(samples, 'cairn_object_store_body_bytes_total', { operation: 'get' })).toBeGreaterThanOrEqual(APPENDS * BYTES);
    expect(sampleValue(samples, 'cairn_segment_cache_hits_total')).toBe(0);
    expect(sampleValue(samples, 'cairn_segment_cache_bytes')).toBe(APPENDS * BYTES);
    expect(requestCount(samples, 'read', 200)).toBe(1);
    expect((await readToEnd(url)).equals(Buffer.concat(bodies))).toBe(true);
    samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_segment_cache_hits_total')).toBe(segmentCount);
    expect(sampleValue(samples, 'cairn_segment_cache_misses_total') - missesBefore).toBe(segmentCount);
    expect(requestCount(samples, 'read', 200)).toBe(2);
    // The object-store latency histogram saw every request the counters saw.
    for (const operation of ['put', 'get']) {
      expect(sampleValue(samples, 'cairn_object_store_request_duration_seconds_count', { operation })).toBe(
        sampleValue(samples, 'cairn_object_store_requests_total', { operation }),
      );
    }
  } finally {
    await server.stop();
  }
}, 60_000);

test('collapsed concurrent identical reads, object-store errors, readiness while the store is down', async () => {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  const server = await startTestServer({ sealIdleMs: 0, logLevel: 'error' }, { objectStore: store, retryPolicy: { attemptsMax: 1 } });
  try {
    const url = `${server.url}/v1/stream/collapse`;
    const body = Buffer.from('sealed history');
    expect((await fetch(url, { method: 'PUT', headers: OCTETS, body })).status).toBe(201);
    await waitFor(() => server.registry.get('collapse', { touch: false }).sealedOffset === body.length);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);

    // K identical reads while the one segment GET hangs: the first builds, K−1 join it.
    const READERS = 5;
    const hang = store.inject({ when: (call) => call.operation === 'get', action: { kind: 'hang' }, times: 1 });
    const collapsedBefore = sampleValue(await scrape(server.url), 'cairn_collapsed_reads_total');
    const reads = Array.from({ length: READERS }, () => fetch(`${url}?offset=-1`));
    await waitFor(async () => sampleValue(await scrape(server.url), 'cairn_collapsed_reads_total') === collapsedBefore + READERS - 1);
    expect(hang.hitCount).toBe(1);
    store.releaseHung();
    for (const response of await Promise.all(reads)) {
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(body)).toBe(true);
    }
    let samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_collapsed_reads_total')).toBe(collapsedBefore + READERS - 1);
    expect(requestCount(samples, 'read', 200)).toBe(READERS);

    // Store down: /readyz 503 with a reason; errors counted by operation and code.
    const outage = store.inject({ when: () => true, action: { kind: 'fail', error: injectedUnavailable } });
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 503);
    const notReady = await fetch(`${server.url}/readyz`);
    expect(notReady.status).toBe(503);
    const reason = (await notReady.json()) as { ready: boolean; reason: string };
    expect(reason.ready).toBe(false);
    expect(reason.reason).toContain('object store unreachable');
    samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_object_store_errors_total', { operation: 'head', code: 'OBJECT_STORE_UNAVAILABLE' })).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    outage.remove();
    await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200);
    expect(await (await fetch(`${server.url}/readyz`)).json()).toEqual({ ready: true });
  } finally {
    store.releaseHung();
    await server.stop();
  }
}, 60_000);

test('live connections by mode', async () => {
  const server = await startTestServer({ longPollTimeoutMs: 30_000 });
  const abort = new AbortController();
  try {
    const url = `${server.url}/v1/stream/live`;
    const created = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } });
    expect(created.status).toBe(201);
    const tail = created.headers.get('stream-next-offset')!;
    const SSE_READERS = 3;
    const LONG_POLLS = 2;
    const sse = await Promise.all(
      Array.from({ length: SSE_READERS }, () => fetch(`${url}?offset=-1&live=sse`, { signal: abort.signal })),
    );
    for (const response of sse) expect(response.headers.get('content-type')).toBe('text/event-stream');
    const polls = Array.from({ length: LONG_POLLS }, () => fetch(`${url}?offset=${tail}&live=long-poll`));
    await waitFor(async () => sampleValue(await scrape(server.url), 'cairn_live_connections', { mode: 'long-poll' }) === LONG_POLLS);
    const samples = await scrape(server.url);
    expect(sampleValue(samples, 'cairn_live_connections', { mode: 'sse' })).toBe(SSE_READERS);

    // One append answers every long-poll; the SSE readers stay.
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'wake' })).status).toBe(204);
    for (const response of await Promise.all(polls)) expect(response.status).toBe(200);
    const after = await scrape(server.url);
    expect(sampleValue(after, 'cairn_live_connections', { mode: 'long-poll' })).toBe(0);
    expect(sampleValue(after, 'cairn_live_connections', { mode: 'sse' })).toBe(SSE_READERS);
    expect(requestCount(after, 'read_live_long_poll', 200)).toBe(LONG_POLLS);

    abort.abort();
    await waitFor(async () => sampleValue(await scrape(server.url), 'cairn_live_connections', { mode: 'sse' }) === 0);
  } finally {
    abort.abort();
    await server.stop();
  }
}, 60_000);

test('request ids: a sane X-Request-Id is echoed, others are replaced by generated ones', async () => {
  const server = await startTestServer();
  try {
    const url = `${server.url}/v1/stream/ids`;
    const given = await fetch(url, { method: 'HEAD', headers: { 'x-request-id': 'trace-42.a:b_c' } });
    expect(given.headers.get('x-request-id')).toBe('trace-42.a:b_c');
    const insane = await fetch(url, { method: 'HEAD', headers: { 'x-request-id': 'has space\u00e9' } });
    const generated = await fetch(url, { method: 'HEAD' });
    const ids = [insane.headers.get('x-request-id'), generated.headers.get('x-request-id')];
    for (const id of ids) expect(id).toMatch(/^[0-9a-z]{8}-[0-9a-z]+$/);
    expect(ids[0]).not.toBe(ids[1]);
    expect(generated.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-request-id');
  } finally {
    await server.stop();
  }
});

test('log lines carry the request id: refused requests at warn, every request at debug only', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  for (const level of ['info', 'debug'] as const) {
    lines.length = 0;
    // No live reader may wait: a long-poll is refused with 503, which is logged.
    const server = await startTestServer({ liveReadersMax: 0 }, { logger: pino({ level }, sink) });
    try {
      const url = `${server.url}/v1/stream/logged`;
      const created = await fetch(url, { method: 'PUT', headers: OCTETS, body: 'x' });
      expect(created.status).toBe(201);
      const refused = await fetch(`${url}?offset=${created.headers.get('stream-next-offset')}&live=long-poll`, {
        headers: { 'x-request-id': `poll-${level}` },
      });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('x-request-id')).toBe(`poll-${level}`);
      const warning = lines.find((line) => line.msg === 'request refused');
      expect(warning).toMatchObject({ reqId: `poll-${level}`, level: 40, method: 'GET' });
      // Logged when the response finished, which may be just after the client has it.
      if (level === 'debug') await waitFor(() => lines.filter((line) => line.msg === 'request completed').length === 2);
      const completed = lines.filter((line) => line.msg === 'request completed');
      if (level === 'info') expect(completed).toEqual([]);
      else {
        expect(completed.map((line) => line.reqId)).toEqual([created.headers.get('x-request-id'), `poll-${level}`]);
        expect(completed[1]).toMatchObject({ statusCode: 503, method: 'GET' });
      }
    } finally {
      await server.stop();
    }
  }
});
