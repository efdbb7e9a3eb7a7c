/**
 * Readiness: the states that make `/readyz` 503, and the probe cache (one object-store request
 * per READINESS_PROBE_CACHE_MS however many checks, shared by concurrent checks).
 */
import { expect, test } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { READINESS_PROBE_CACHE_MS, READINESS_PROBE_TIMEOUT_MS } from '../../src/config/limits.ts';
import { FaultInjectingObjectStore, injectedUnavailable, MemoryObjectStore, MeteredObjectStore } from '../../src/object-store/index.ts';
import { Readiness } from '../../src/observability/readiness.ts';

function setup() {
  const store = new FaultInjectingObjectStore(new MemoryObjectStore());
  // Counts every probe.
  const metered = new MeteredObjectStore(store);
  const probes = { get hitCount() { return metered.snapshot().head.requestCount; } };
  const clock = manualClock(1_000);
  let walFailure: Error | undefined;
  const readiness = new Readiness({ store: metered, clock, walFailure: () => walFailure });
  return { store, probes, clock, readiness, failWal: (error: Error) => (walFailure = error) };
}

test('not ready before recovery, ready after, not ready once closing', async () => {
  const { readiness } = setup();
  expect(await readiness.check()).toEqual({ ready: false, reason: 'WAL recovery has not finished' });
  readiness.markRecovered();
  expect(await readiness.check()).toEqual({ ready: true });
  readiness.markClosing();
  expect(await readiness.check()).toEqual({ ready: false, reason: 'shutting down' });
});

test('a failed WAL makes it not ready', async () => {
  const { readiness, failWal } = setup();
  readiness.markRecovered();
  failWal(new Error('disk full'));
  expect(await readiness.check()).toEqual({ ready: false, reason: 'WAL failed: disk full' });
});

test('one probe per cache period, shared by concurrent checks; outages seen after the period', async () => {
  const { store, probes, clock, readiness } = setup();
  readiness.markRecovered();
  const results = await Promise.all(Array.from({ length: 10 }, () => readiness.check()));
  expect(results.every((result) => result.ready)).toBe(true);
  expect(probes.hitCount).toBe(1);

  store.inject({ when: () => true, action: { kind: 'fail', error: injectedUnavailable } });
  clock.advance(READINESS_PROBE_CACHE_MS - 1);
  expect(await readiness.check()).toEqual({ ready: true });
  expect(probes.hitCount).toBe(1);
  clock.advance(1);
  const down = await readiness.check();
  expect(down.ready).toBe(false);
  expect(!down.ready && down.reason).toMatch(/^object store unreachable: /);
  expect(probes.hitCount).toBe(2);
});

test('a probe that hangs counts as unreachable after the timeout', async () => {
  const { store, readiness, clock } = setup();
  readiness.markRecovered();
  store.inject({ when: () => true, action: { kind: 'hang' } });
  try {
    const pending = readiness.check();
    clock.advance(READINESS_PROBE_TIMEOUT_MS);
    expect(await pending).toEqual({ ready: false, reason: `object store did not answer within ${READINESS_PROBE_TIMEOUT_MS} ms` });
  } finally {
    store.releaseHung();
  }
});
