import { describe, expect, test } from 'vitest';
import { seededRandom, type WallClock } from '../../src/clock.ts';
import {
  FaultInjectingObjectStore,
  injectedUnavailable,
  MemoryObjectStore,
  MeteredObjectStore,
  putBody,
  RetryingObjectStore,
} from '../../src/object-store/index.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('MeteredObjectStore', () => {
  test('counts requests, errors by code and body bytes per operation', async () => {
    const store = new MeteredObjectStore(new MemoryObjectStore());
    await store.put('a', bytes('hello'));
    await store.put('b', bytes('hi'));
    await store.put('a', bytes('again')).catch(() => {});
    await store.get('a');
    await store.get('a', { startByte: 1, endByte: 3 });
    await store.get('missing').catch(() => {});
    await store.head('b');
    await store.list({ prefix: '' });
    await store.delete('b');
    await store.deleteMany(['a', 'zzz']);
    const s = store.snapshot();
    expect(s.put).toMatchObject({ requestCount: 3, errorCount: 1, errorCountByCode: { OBJECT_ALREADY_EXISTS: 1 }, bodyBytes: 7 });
    expect(s.get).toMatchObject({ requestCount: 3, errorCount: 1, errorCountByCode: { OBJECT_NOT_FOUND: 1 }, bodyBytes: 7 });
    expect(s.head).toMatchObject({ requestCount: 1, errorCount: 0, bodyBytes: 0 });
    expect(s.list.requestCount).toBe(1);
    expect(s.delete.requestCount).toBe(1);
    expect(s.deleteMany.requestCount).toBe(1);
    for (const op of Object.values(s)) expect(op.inFlightCount).toBe(0);
  });

  test('a body in parts travels as parts through the retrying and metered stores to a store that takes them', async () => {
    const received: (readonly Uint8Array[])[] = [];
    const inner = new MemoryObjectStore();
    const partsStore = Object.assign(Object.create(inner) as MemoryObjectStore, {
      putParts: (key: string, parts: readonly Uint8Array[]) => {
        received.push(parts);
        return inner.put(key, Buffer.concat(parts));
      },
    });
    const metered = new MeteredObjectStore(partsStore);
    const store = new RetryingObjectStore(metered, { random: seededRandom(1), clock: { nowMs: () => 0 } });
    const parts = [bytes('seg'), bytes('ment')];
    await putBody(store, 'k', parts);
    expect(received).toHaveLength(1);
    expect(received[0]).toEqual(parts);
    expect(received[0]![0]).toBe(parts[0]); // the caller's buffers, not copies
    expect(metered.snapshot().put).toMatchObject({ requestCount: 1, bodyBytes: 7 });
    // A store without putParts gets the parts joined.
    await putBody(new RetryingObjectStore(new MeteredObjectStore(inner), { random: seededRandom(1), clock: { nowMs: () => 0 } }), 'j', parts);
    expect(new TextDecoder().decode((await inner.get('j')).body)).toBe('segment');
  });

  test('errors without a code count as UNKNOWN', async () => {
    const store = new MeteredObjectStore(new MemoryObjectStore());
    await store.get('k', { startByte: 2, endByte: 1 }).catch(() => {}); // RangeError
    expect(store.snapshot().get.errorCountByCode).toEqual({ UNKNOWN: 1 });
  });

  test('measures latency with the injected clock', async () => {
    let nowMs = 0;
    const clock: WallClock = { nowMs: () => nowMs };
    const faults = new FaultInjectingObjectStore(new MemoryObjectStore(), {
      sleep: async (delayMs) => {
        nowMs += delayMs;
      },
    });
    const delays = [30, 120];
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'delay', delayMs: 30 }, times: 1 });
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'delay', delayMs: 120 }, times: 1 });
    const store = new MeteredObjectStore(faults, { clock });
    await store.put('a', bytes('1'));
    await store.put('b', bytes('2'));
    expect(store.snapshot().put).toMatchObject({ latencyMsTotal: delays[0]! + delays[1]!, latencyMsMax: 120 });
  });

  test('inside retries it counts every attempt; outside, one logical operation ("exactly 1 GET")', async () => {
    const memory = new MemoryObjectStore();
    await memory.put('seg', bytes('data'));
    const inner = new MeteredObjectStore(memory);
    const faults = new FaultInjectingObjectStore(inner);
    faults.inject({ when: (c) => c.operation === 'get', action: { kind: 'fail', error: injectedUnavailable, phase: 'after' }, times: 2 });
    const retrying = new RetryingObjectStore(faults, { random: seededRandom(1), clock: { nowMs: () => 0 }, sleep: async () => {} });
    const outer = new MeteredObjectStore(retrying);
    await outer.get('seg');
    expect(outer.snapshot().get).toMatchObject({ requestCount: 1, errorCount: 0, bodyBytes: 4 });
    expect(inner.snapshot().get).toMatchObject({ requestCount: 3, errorCount: 0, bodyBytes: 12 });
  });

  test('snapshot is a copy; reset zeroes the counters but keeps calls in flight', async () => {
    const faults = new FaultInjectingObjectStore(new MemoryObjectStore());
    faults.inject({ when: (c) => c.operation === 'head', action: { kind: 'hang' } });
    const store = new MeteredObjectStore(faults);
    await store.put('a', bytes('x'));
    const before = store.snapshot();
    const pending = store.head('a');
    expect(store.snapshot().head.inFlightCount).toBe(1);
    expect(before.head.requestCount).toBe(0);
    before.put.requestCount = 99;
    expect(store.snapshot().put.requestCount).toBe(1);
    store.reset();
    expect(store.snapshot().put.requestCount).toBe(0);
    expect(store.snapshot().head).toMatchObject({ requestCount: 0, inFlightCount: 1 });
    faults.releaseHung();
    await pending;
    expect(store.snapshot().head.inFlightCount).toBe(0);
  });
});
