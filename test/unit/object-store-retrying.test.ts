import { describe, expect, test } from 'vitest';
import { seededRandom, type RandomSource, type WallClock } from '../../src/clock.ts';
import {
  FaultInjectingObjectStore,
  injectedUnavailable,
  MemoryObjectStore,
  MeteredObjectStore,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectStoreUnavailableError,
  RetryingObjectStore,
  type RetryEvent,
  type RetryPolicy,
} from '../../src/object-store/index.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A retrying store over fault injection over metrics over memory, with a fake clock that sleeps advance. */
function setup(policy: Partial<RetryPolicy> = {}, random: RandomSource = seededRandom(42)) {
  const memory = new MemoryObjectStore();
  const metered = new MeteredObjectStore(memory);
  const faults = new FaultInjectingObjectStore(metered);
  let nowMs = 1_000_000;
  const clock: WallClock = { nowMs: () => nowMs };
  const sleeps: number[] = [];
  const events: RetryEvent[] = [];
  const store = new RetryingObjectStore(faults, {
    random,
    clock,
    policy,
    sleep: async (delayMs) => {
      sleeps.push(delayMs);
      nowMs += delayMs;
    },
    onRetry: (event) => events.push(event),
  });
  return { memory, metered, faults, store, sleeps, events, advance: (ms: number) => (nowMs += ms) };
}

const failing = (operation: string, times?: number) => ({
  when: (call: { operation: string }) => call.operation === operation,
  action: { kind: 'fail' as const, error: injectedUnavailable },
  times,
});

describe('RetryingObjectStore', () => {
  test('succeeds after transient failures, sleeping between attempts', async () => {
    const { memory, metered, faults, store, sleeps, events } = setup();
    const fault = faults.inject(failing('put', 3));
    await store.put('k', bytes('v'));
    expect(fault.hitCount).toBe(3);
    expect(sleeps).toHaveLength(3);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(events[0]!.error).toBeInstanceOf(ObjectStoreUnavailableError);
    expect(metered.snapshot().put.requestCount).toBe(1); // the three failures never reached the inner store
    expect(Buffer.from((await memory.get('k')).body).toString()).toBe('v');
  });

  test('retries every operation kind', async () => {
    const { memory, faults, store } = setup();
    await memory.put('a', bytes('a'));
    for (const operation of ['get', 'head', 'list', 'delete', 'deleteMany']) faults.inject(failing(operation, 1));
    expect((await store.get('a')).body).toEqual(bytes('a'));
    expect((await store.head('a')).sizeBytes).toBe(1);
    expect((await store.list({ prefix: '' })).objects).toHaveLength(1);
    await store.delete('a');
    await store.deleteMany(['a']);
  });

  test('gives up after attemptsMax attempts and throws the last error', async () => {
    const { faults, store, sleeps } = setup({ attemptsMax: 4 });
    const fault = faults.inject(failing('get'));
    const error = await store.get('k').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreUnavailableError);
    expect(fault.hitCount).toBe(4);
    expect(sleeps).toHaveLength(3);
  });

  test('gives up when the next sleep would end past elapsedMsMax', async () => {
    // random 0.999: each sleep is almost its cap: 99, 199, 399, 799 … ms.
    const { faults, store, sleeps } = setup(
      { attemptsMax: 100, backoffBaseMs: 100, backoffMaxMs: 100_000, elapsedMsMax: 1_000 },
      { next: () => 0.999 },
    );
    const fault = faults.inject(failing('head'));
    await expect(store.head('k')).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    expect(sleeps).toEqual([99, 199, 399]); // 697 ms slept; the next (799) would end at 1496 > 1000
    expect(fault.hitCount).toBe(4);
  });

  test('time spent inside attempts counts against elapsedMsMax', async () => {
    const { faults, store, sleeps, advance } = setup(
      { attemptsMax: 100, backoffBaseMs: 10, backoffMaxMs: 10, elapsedMsMax: 1_000 },
      { next: () => 0.5 },
    );
    faults.inject({ when: () => true, action: { kind: 'fail', error: (call) => (advance(300), injectedUnavailable(call)) } });
    await expect(store.head('k')).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    expect(sleeps).toEqual([5, 5, 5]); // after the 4th attempt, 1215 ms have passed
  });

  test('backoff is full jitter over a doubling, capped window, drawn from the injected random source', async () => {
    const draws = [0.5, 0.25, 0.999, 0, 0.5];
    const { faults, store, sleeps } = setup(
      { attemptsMax: 6, backoffBaseMs: 100, backoffMaxMs: 250, elapsedMsMax: 60_000 },
      { next: () => draws.shift()! },
    );
    faults.inject(failing('get'));
    await expect(store.get('k')).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    // caps 100, 200, 250 (400 capped), 250, 250
    expect(sleeps).toEqual([50, 50, 249, 0, 125]);
    expect(draws).toEqual([]);
  });

  test('the same seed replays the same sleeps', async () => {
    const run = async (seed: number) => {
      const { faults, store, sleeps } = setup({ attemptsMax: 6 }, seededRandom(seed));
      faults.inject(failing('get'));
      await store.get('k').catch(() => {});
      return sleeps;
    };
    const first = await run(7);
    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
  });

  test('never retries a create-if-absent conflict', async () => {
    const { memory, metered, store, sleeps } = setup();
    await memory.put('seg', bytes('theirs'));
    await expect(store.put('seg', bytes('ours'))).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
    expect(metered.snapshot().put.requestCount).toBe(1);
    expect(sleeps).toEqual([]);
  });

  test('does not retry other non-retryable errors', async () => {
    const { metered, store, sleeps } = setup();
    await expect(store.get('missing')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await expect(store.get('x', { startByte: 3, endByte: 1 })).rejects.toBeInstanceOf(RangeError);
    expect(metered.snapshot().get.requestCount).toBe(2);
    expect(sleeps).toEqual([]);
  });

  test('a put whose response was lost, then refused as existing, succeeds if the stored bytes are ours', async () => {
    const { memory, faults, store } = setup();
    // The first put takes effect but its answer is lost; the retry meets its own object.
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: injectedUnavailable, phase: 'after' }, times: 1 });
    await store.put('seg', bytes('ours'));
    expect(Buffer.from((await memory.get('seg')).body).toString()).toBe('ours');
  });

  test('after an ambiguous failure, a conflicting object with other bytes is still a conflict', async () => {
    const { memory, faults, store } = setup();
    faults.inject({
      when: (c) => c.operation === 'put',
      // Fails, and meanwhile another writer stores different bytes.
      action: { kind: 'fail', error: (call) => (void memory.put('seg', bytes('theirs')), injectedUnavailable(call)) },
      times: 1,
    });
    await expect(store.put('seg', bytes('ours'))).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
    expect(Buffer.from((await memory.get('seg')).body).toString()).toBe('theirs');
  });

  test('rejects a policy without attempts', () => {
    expect(() => new RetryingObjectStore(new MemoryObjectStore(), { random: seededRandom(1), clock: { nowMs: () => 0 }, policy: { attemptsMax: 0 } })).toThrow(RangeError);
  });
});
