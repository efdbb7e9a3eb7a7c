/**
 * The object store goes away and comes back (issue 3 §5): appends keep landing in the WAL and the
 * hot tails until the hot-tail budget is used, then get 503 with Retry-After; cold reads get 503;
 * when the store returns, sealing catches up and every acknowledged byte reads back exactly once.
 */
import { expect, test } from 'vitest';
import { SEAL_TASKS_MAX } from '../../src/config/limits.ts';
import { FaultInjectingObjectStore, injectedUnavailable, MemoryObjectStore } from '../../src/object-store/index.ts';
import { startTestServer } from '../support/server.ts';
import { readToEnd, waitFor } from '../support/streams.ts';

const BUDGET_BYTES = 64 * 1024;

test('store outage: backpressure at the budget, 503 on cold reads, catch-up after, nothing lost', async () => {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  const server = await startTestServer(
    { sealIdleMs: 0, segmentSizeBytes: 4096, hotTailBudgetBytes: BUDGET_BYTES, liveReadersPerClientMax: 2, logLevel: 'error' },
    { objectStore: store, retryPolicy: { attemptsMax: 2, backoffBaseMs: 5, backoffMaxMs: 20, elapsedMsMax: 200 } },
  );
  try {
    const url = `${server.url}/v1/stream/outage`;
    expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
    const acked: Buffer[] = [];
    const appendOnce = async (i: number): Promise<Response> => {
      const body = Buffer.alloc(1024, i % 251);
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body });
      if (response.status === 204) acked.push(body);
      return response;
    };

    // Healthy: 8 KiB sealed.
    for (let i = 0; i < 8; i++) expect((await appendOnce(i)).status).toBe(204);
    await waitFor(() => server.registry.get('outage', { touch: false }).sealedOffset === 8192);

    // Outage: every object-store call fails.
    const outage = store.inject({ when: () => true, action: { kind: 'fail', error: injectedUnavailable } });
    const cold = await fetch(`${url}?offset=-1`);
    expect(cold.status).toBe(503);
    expect(cold.headers.get('retry-after')).toMatch(/^\d+$/);
    // SSE from history fails before its 200, and gives its per-client live slot back each time
    // (--live-readers-per-client-max 2 here: a leak would turn the third into "too many live readers").
    for (let i = 0; i < 3; i++) {
      const sse = await fetch(`${url}?offset=-1&live=sse`);
      expect(sse.status).toBe(503);
      expect(await sse.text()).not.toContain('too many live readers');
    }
    let refused: Response | undefined;
    for (let i = 8; i < 8 + 200 && refused === undefined; i++) {
      const response = await appendOnce(i);
      if (response.status !== 204) refused = response;
    }
    expect(refused?.status).toBe(503);
    expect(refused?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused?.text()).toContain('hot-tail budget');
    expect(server.registry.hotTailBytes).toBeLessThanOrEqual(BUDGET_BYTES);
    expect(acked.length).toBeGreaterThan(8 + 40);
    expect(server.tiering.stats().failures).toBeGreaterThan(0);

    // The store returns: sealing catches up and appends are accepted again.
    outage.remove();
    await waitFor(() => server.registry.hotTailBytes < BUDGET_BYTES / 2, 60_000);
    for (let i = 1000; i < 1010; i++) expect((await appendOnce(i)).status).toBe(204);

    expect((await readToEnd(url)).equals(Buffer.concat(acked))).toBe(true);
  } finally {
    await server.stop();
  }
}, 90_000);


test('a manifest put that landed but whose answer was lost is adopted on the next attempt, not fenced', async () => {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  const server = await startTestServer(
    { sealIdleMs: 0, segmentSizeBytes: 1 << 20, logLevel: 'error' },
    { objectStore: store, retryPolicy: { attemptsMax: 1 } },
  );
  try {
    const lost = store.inject({
      when: (call) => call.operation === 'put' && call.key.endsWith('.json'),
      action: { kind: 'fail', error: injectedUnavailable, phase: 'after' },
      times: 1,
    });
    const url = `${server.url}/v1/stream/lost`;
    expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'first' })).status).toBe(204);
    await waitFor(() => lost.hitCount === 1);
    expect((await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: ' second' })).status).toBe(204);
    await waitFor(() => server.registry.get('lost', { touch: false }).sealedOffset === 12, 20_000);
    const stats = server.tiering.stats();
    expect(stats.segmentsAdopted).toBe(1);
    expect(stats.failures).toBe(1);
    expect(await (await fetch(`${url}?offset=-1`)).text()).toBe('first second');
  } finally {
    await server.stop();
  }
}, 30_000);

test('many streams due at once: at most SEAL_TASKS_MAX seals run, the rest queue, and all are sealed', async () => {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  // Manifest writes hang until released: every running seal stops after its segment upload.
  const manifests = store.inject({ when: (call) => call.operation === 'put' && call.key.includes('/manifest-'), action: { kind: 'hang' } });
  const server = await startTestServer({ sealIdleMs: 0, logLevel: 'error' }, { objectStore: store });
  try {
    const streamCount = SEAL_TASKS_MAX * 3;
    for (let i = 0; i < streamCount; i++) {
      const response = await fetch(`${server.url}/v1/stream/due-${i}`, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: `stream ${i}` });
      expect(response.status).toBe(201);
    }
    await waitFor(() => store.hungCount === SEAL_TASKS_MAX);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the sealer checks every 100 ms: nothing more starts
    expect(store.hungCount).toBe(SEAL_TASKS_MAX);
    expect(server.tiering.stats().objectStore.put.requestCount).toBeLessThanOrEqual(2 * SEAL_TASKS_MAX + 2); // segments, manifests, startup probe

    manifests.remove();
    store.releaseHung();
    await waitFor(() => server.tiering.stats().segmentsWritten === streamCount, 30_000);
    for (let i = 0; i < streamCount; i += 37) {
      expect(await (await fetch(`${server.url}/v1/stream/due-${i}?offset=-1`)).text()).toBe(`stream ${i}`);
    }
  } finally {
    await server.stop();
  }
}, 60_000);
