/**
 * The diskless WAL (src/wal/object-wal-*.ts) against the memory store, with faults injected
 * around it: what is acknowledged is replayed by the next start, once and in order; a paused
 * older process is fenced; a put with an unknown outcome is resolved by reading it back; a
 * store outage refuses new appends and never acknowledges before the object is stored.
 */
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import {
  FaultInjectingObjectStore,
  MemoryObjectStore,
  ObjectStoreUnavailableError,
  listAll,
  type ObjectStore,
} from '../../src/object-store/index.ts';
import { RetryingObjectStore } from '../../src/object-store/retrying-store.ts';
import { seededRandom } from '../../src/clock.ts';
import {
  WalChainClaimedError,
  WalFencedError,
  WalObjectStoreUnavailableError,
  openObjectWal,
  type OpenedObjectWal,
} from '../../src/wal/index.ts';
import { walObjectKey } from '../../src/wal/object-wal-keys.ts';

const CHAIN = 'test';

async function open(store: ObjectStore, options: { flushMs?: number; objectBytesMax?: number; retryDelayMs?: number } = {}): Promise<OpenedObjectWal> {
  return openObjectWal({ store, chain: CHAIN, flushMs: options.flushMs ?? 1, objectBytesMax: options.objectBytesMax ?? 1024 * 1024, retryDelayMs: options.retryDelayMs ?? 5 });
}

async function replayAll(opened: OpenedObjectWal): Promise<unknown[]> {
  const records: unknown[] = [];
  for await (const record of opened.replay()) records.push(record);
  return records;
}

async function keysOf(store: ObjectStore): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of listAll(store, '_cairn/wal/')) keys.push(info.key);
  return keys;
}

describe('object WAL', () => {
  it('replays every acknowledged record once, in order, after a restart that never closed the writer', async () => {
    const store = new MemoryObjectStore();
    const first = await open(store);
    expect(await replayAll(first)).toEqual([]);
    const acks: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) acks.push(first.writer.enqueue({ i }));
    await Promise.all(acks);
    // A second batch after the first was stored: a second object.
    await first.writer.enqueue({ i: 50 });
    expect(first.writer.storedObjectCount).toBeGreaterThanOrEqual(2);

    const second = await open(store);
    expect(second.summary.generation).toBe(2);
    expect(await replayAll(second)).toEqual(Array.from({ length: 51 }, (_, i) => ({ i })));
    await second.writer.enqueue({ i: 51 });
    const third = await open(store);
    expect(await replayAll(third)).toEqual(Array.from({ length: 52 }, (_, i) => ({ i })));
  });

  it('a checkpoint bounds replay and deletes the objects it covers, keeping fences and claims', async () => {
    const store = new MemoryObjectStore();
    const first = await open(store);
    await replayAll(first);
    await first.writer.enqueue({ i: 0 });
    const second = await open(store); // fences generation 1 after object 0
    await replayAll(second);
    await second.writer.enqueue({ i: 1 });
    await second.writer.checkpoint({ state: 'after 1' });
    await second.writer.enqueue({ i: 2 });
    const keys = await keysOf(store);
    expect(keys.filter((key) => key.endsWith('.ckpt'))).toHaveLength(1);
    // Generation 1's object 0 is gone, its fence (object 1, empty) stays; generation 2's object 0 is gone.
    expect(keys).not.toContain(walObjectKey(CHAIN, 1, 0));
    expect(keys).toContain(walObjectKey(CHAIN, 1, 1));
    expect(keys).not.toContain(walObjectKey(CHAIN, 2, 0));
    expect(keys).toContain(walObjectKey(CHAIN, 2, 1));

    const third = await open(store);
    expect(third.checkpoint).toEqual({ state: 'after 1' });
    expect(await replayAll(third)).toEqual([{ i: 2 }]);
  });

  it('a second checkpoint with nothing logged since the first is stored too, and the next start reads the newer one', async () => {
    const store = new MemoryObjectStore();
    const first = await open(store);
    await replayAll(first);
    await first.writer.enqueue({ i: 0 });
    await first.writer.checkpoint({ state: 'first' });
    // State changed without a record (slots taken over from a dead node): a checkpoint at the same position.
    await first.writer.checkpoint({ state: 'second' });
    await first.writer.checkpoint({ state: 'third' });
    expect((await keysOf(store)).filter((key) => key.endsWith('.ckpt'))).toHaveLength(1);
    await first.writer.enqueue({ i: 1 });
    const second = await open(store);
    expect(second.checkpoint).toEqual({ state: 'third' });
    expect(await replayAll(second)).toEqual([{ i: 1 }]);
  });

  it('fences a paused older process: its next object is refused and it acknowledges nothing more', async () => {
    const store = new MemoryObjectStore();
    const old = await open(store);
    await replayAll(old);
    await old.writer.enqueue({ i: 0 });
    const fresh = await open(store);
    expect(await replayAll(fresh)).toEqual([{ i: 0 }]);
    expect(fresh.summary.fencedGenerations).toBe(1);
    // The old process wakes up and appends: refused, never acknowledged.
    await expect(old.writer.enqueue({ i: 'late' })).rejects.toBeInstanceOf(WalFencedError);
    expect(() => old.writer.enqueue({ i: 'later' })).toThrow(WalFencedError);
    await fresh.writer.enqueue({ i: 1 });
    expect(await replayAll(await open(store))).toEqual([{ i: 0 }, { i: 1 }]);
  });

  it('an object the old process stored after the new start listed the chain is read, and the fence moves past it', async () => {
    const inner = new MemoryObjectStore();
    const old = await open(inner);
    await replayAll(old);
    await old.writer.enqueue({ i: 0 });
    // The new start lists; right after the listing, the old process stores object 1 (and acknowledges it).
    let lateAck: Promise<void> | undefined;
    const listedThenLate = new Proxy(inner, {
      get(target, property, receiver) {
        if (property === 'list') {
          return async (...args: Parameters<ObjectStore['list']>) => {
            const page = await target.list(...args);
            lateAck ??= old.writer.enqueue({ i: 1 });
            await lateAck;
            return page;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const fresh = await open(listedThenLate);
    expect(await replayAll(fresh)).toEqual([{ i: 0 }, { i: 1 }]);
    expect(lateAck).toBeDefined();
    await expect(old.writer.enqueue({ i: 2 })).rejects.toBeInstanceOf(WalFencedError);
  });

  it('two starts at once on one chain: one of them fails with WalChainClaimedError', async () => {
    const store = new MemoryObjectStore();
    const results = await Promise.allSettled([open(store), open(store)]);
    const refused = results.filter((result) => result.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toBeInstanceOf(WalChainClaimedError);
  });

  it('a put whose response was lost is read back and counted as stored (no second key, no fence)', async () => {
    const inner = new MemoryObjectStore();
    const faults = new FaultInjectingObjectStore(inner);
    const store = new RetryingObjectStore(faults, { random: seededRandom(1), clock: systemClock, policy: { attemptsMax: 1 } });
    const wal = await open(store);
    await replayAll(wal);
    faults.inject({
      when: (call) => call.operation === 'put' && call.key.endsWith('.wal'),
      action: { kind: 'fail', phase: 'after', error: (call) => new ObjectStoreUnavailableError('put', call.key, 'connection reset after the body was stored') },
      times: 1,
    });
    const ack = wal.writer.enqueue({ i: 0 });
    await ack;
    expect(wal.writer.failure).toBeUndefined();
    await wal.writer.enqueue({ i: 1 });
    const keys = (await keysOf(inner)).filter((key) => key.endsWith('.wal'));
    expect(keys).toEqual([walObjectKey(CHAIN, 1, 0), walObjectKey(CHAIN, 1, 1)]);
    expect(await replayAll(await open(inner))).toEqual([{ i: 0 }, { i: 1 }]);
  });

  it('while the store refuses WAL objects, queued appends wait and new ones get 503; nothing is acknowledged before it is stored', async () => {
    const inner = new MemoryObjectStore();
    const faults = new FaultInjectingObjectStore(inner);
    const wal = await open(faults, { retryDelayMs: 5 });
    await replayAll(wal);
    const outage = faults.inject({
      when: (call) => call.operation === 'put' && call.key.endsWith('.wal'),
      action: { kind: 'fail', error: (call) => new ObjectStoreUnavailableError('put', call.key, 'SlowDown') },
    });
    let acknowledged = false;
    const waiting = wal.writer.enqueue({ i: 0 }).then(() => {
      acknowledged = true;
    });
    await expect.poll(() => wal.writer.unavailable, { timeout: 10_000 }).toBeInstanceOf(WalObjectStoreUnavailableError);
    expect(() => wal.writer.enqueue({ i: 'refused' })).toThrow(WalObjectStoreUnavailableError);
    await expect.poll(() => outage.hitCount, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(acknowledged).toBe(false);
    expect((await keysOf(inner)).filter((key) => key.endsWith('.wal'))).toEqual([]);
    outage.remove();
    await waiting;
    expect(wal.writer.unavailable).toBeUndefined();
    await wal.writer.enqueue({ i: 1 });
    expect(await replayAll(await open(inner))).toEqual([{ i: 0 }, { i: 1 }]);
  });

  it('acknowledges in sequence order even when a later object is stored first', async () => {
    const inner = new MemoryObjectStore();
    const faults = new FaultInjectingObjectStore(inner);
    const wal = await open(faults, { objectBytesMax: 64 });
    await replayAll(wal);
    const slow = faults.inject({ when: (call) => call.key === walObjectKey(CHAIN, 1, 0), action: { kind: 'hang' }, times: 1 });
    const order: number[] = [];
    const first = wal.writer.enqueue({ pad: 'x'.repeat(80), i: 0 }).then(() => order.push(0));
    const second = wal.writer.enqueue({ pad: 'y'.repeat(80), i: 1 }).then(() => order.push(1));
    await expect.poll(async () => (await keysOf(inner)).includes(walObjectKey(CHAIN, 1, 1)), { timeout: 10_000 }).toBe(true);
    expect(order).toEqual([]);
    expect(slow.hitCount).toBe(1);
    faults.releaseHung();
    await Promise.all([first, second]);
    expect(order).toEqual([0, 1]);
  });

  it('a crash with a later object stored and an earlier one missing replays neither (neither was acknowledged)', async () => {
    const store = new MemoryObjectStore();
    const wal = await open(store);
    await replayAll(wal);
    await wal.writer.enqueue({ i: 0 });
    // Object 1 never arrived; object 2 did (a put in flight when the process died).
    const { encodeFrame } = await import('../../src/wal/record-codec.ts');
    await store.put(walObjectKey(CHAIN, 1, 2), encodeFrame({ i: 'never acknowledged' }));
    expect(await replayAll(await open(store))).toEqual([{ i: 0 }]);
  });
});
