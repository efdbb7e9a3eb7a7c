/**
 * Subscriptions in the object store (docs/storage-layout.md "Subscriptions"): the stored format
 * (keys, encode/decode, refusal of corrupt or newer objects), the version chain (n+1 only after n,
 * older versions deleted, a lost answer retried with the same bytes, another writer fences,
 * tombstone then purge), the flush budgets, and the signing-key vault (encrypted, wrong secret,
 * another node's rotation adopted), and reconciliation at start (load, finish a delete, purge,
 * mark behind, prune).
 */
import { describe, expect, test } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { FaultInjectingObjectStore, injectedUnavailable, listAll, MemoryObjectStore, type ObjectStore } from '../../src/object-store/index.ts';
import type { StreamRegistry } from '../../src/stream/registry.ts';
import type { SubscriptionRecord, SubscriptionSnapshot } from '../../src/subscriptions/records.ts';
import { SigningKeys } from '../../src/subscriptions/signing-keys.ts';
import { SigningKeysUnreadableError, SigningKeyVault } from '../../src/subscriptions/signing-key-vault.ts';
import { reconcileStored } from '../../src/subscriptions/store-reconcile.ts';
import { StoreSync } from '../../src/subscriptions/store-sync.ts';
import {
  decodeStoredSubscription,
  encodeStoredSubscription,
  parseSubscriptionKey,
  StoredSubscriptionCorruptError,
  subscriptionKey,
  type StoredSubscription,
} from '../../src/subscriptions/stored-format.ts';
import { SubscriptionStore, SubscriptionStoreFencedError } from '../../src/subscriptions/subscription-store.ts';
import { snapshotOf, SubscriptionTable } from '../../src/subscriptions/subscription-table.ts';

function snapshot(id: string, acked: string | null = null): SubscriptionSnapshot {
  return {
    id,
    config: { type: 'pull-wake', pattern: 'orders/*', streams: [], webhookUrl: null, wakeStream: 'wake/pool', leaseTtlMs: 30_000, description: null },
    hash: 'h'.repeat(64),
    createdAtMs: 1_000,
    origin: 'http://127.0.0.1:4437',
    links: [['orders/a', { explicit: false, acked }]],
    generation: 3,
    wake: null,
    attempt: 0,
    nextAttemptAtMs: null,
  };
}

async function keysIn(store: ObjectStore, prefix = '_cairn/'): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of listAll(store, prefix)) keys.push(object.key);
  return keys;
}

describe('stored format', () => {
  test('keys are zero-padded per id, and parse back; ids . and .. make valid keys', () => {
    expect(subscriptionKey('orders', 7)).toBe('_cairn/subscriptions/sub-orders/00000000000000000007.json');
    expect(parseSubscriptionKey(subscriptionKey('a.b~c', 12))).toEqual({ id: 'a.b~c', version: 12 });
    expect(parseSubscriptionKey('_cairn/subscriptions/sub-x/7.json')).toBeUndefined();
    expect(subscriptionKey('..', 1)).toBe('_cairn/subscriptions/sub-../00000000000000000001.json');
  });

  test('a version round-trips; equal states encode to equal bytes', () => {
    const stored: StoredSubscription = { format: 1, id: 'orders', version: 2, nodeId: 'n1', storedAtMs: 5, state: snapshot('orders', '0000000000000001_0000000000000010'), ended: null };
    const key = subscriptionKey('orders', 2);
    expect(decodeStoredSubscription(key, encodeStoredSubscription(stored))).toEqual(stored);
    expect(Buffer.from(encodeStoredSubscription(stored))).toEqual(Buffer.from(encodeStoredSubscription(structuredClone(stored))));
  });

  test.each([
    ['not JSON', () => Buffer.from('{'), /not JSON/],
    ['a newer format', () => Buffer.from(JSON.stringify({ format: 2 })), /format 2 is newer/],
    ['another id than its key', () => encodeStoredSubscription({ format: 1, id: 'other', version: 1, nodeId: 'n', storedAtMs: 0, state: snapshot('other'), ended: null }), /differs from its key/],
    ['neither state nor tombstone', () => encodeStoredSubscription({ format: 1, id: 'orders', version: 1, nodeId: 'n', storedAtMs: 0, state: null, ended: null }), /exactly one/],
    ['a missing field', () => Buffer.from(JSON.stringify({ format: 1, id: 'orders', version: 1 })), /unreadable/],
  ])('%s is refused as corrupt', (_name, body, message) => {
    const decode = () => decodeStoredSubscription(subscriptionKey('orders', 1), body());
    expect(decode).toThrow(StoredSubscriptionCorruptError);
    expect(decode).toThrow(message);
  });
});

describe('version chain', () => {
  const clock = manualClock();

  test('each write is the next version; older ones are deleted; loadAll returns the newest', async () => {
    const store = new MemoryObjectStore();
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    await subs.storeState(snapshot('orders'));
    await subs.storeState(snapshot('orders', '0000000000000001_0000000000000004'));
    await subs.storeState(snapshot('mailer'));
    expect(await keysIn(store)).toEqual([subscriptionKey('mailer', 1), subscriptionKey('orders', 2)]);
    const loaded = await new SubscriptionStore({ store, nodeId: 'n2', clock }).loadAll();
    expect(loaded.get('orders')?.version).toBe(2);
    expect(loaded.get('orders')?.state?.links).toEqual([['orders/a', { explicit: false, acked: '0000000000000001_0000000000000004' }]]);
    expect(loaded.get('mailer')?.nodeId).toBe('n1');
  });

  test('a node that loaded the chain continues it, and deletes versions an earlier crash left behind', async () => {
    const store = new MemoryObjectStore();
    const first = new SubscriptionStore({ store, nodeId: 'n1', clock });
    await first.storeState(snapshot('orders'));
    // A crash between storing version 2 and deleting version 1 leaves both.
    await store.put(subscriptionKey('orders', 2), encodeStoredSubscription({ format: 1, id: 'orders', version: 2, nodeId: 'n1', storedAtMs: 0, state: snapshot('orders'), ended: null }));
    const second = new SubscriptionStore({ store, nodeId: 'n2', clock });
    await second.loadAll();
    await second.deleteStaleVersions();
    expect(await keysIn(store)).toEqual([subscriptionKey('orders', 2)]);
    await second.storeState(snapshot('orders', '0000000000000001_0000000000000009'));
    expect(await keysIn(store)).toEqual([subscriptionKey('orders', 3)]);
  });

  test('a put whose answer was lost is retried with the same bytes before the next version', async () => {
    const store = new FaultInjectingObjectStore(new MemoryObjectStore());
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    // Stored, but the caller hears "unavailable".
    store.inject({ when: (call) => call.operation === 'put', action: { kind: 'fail', error: injectedUnavailable, phase: 'after' }, times: 1 });
    await expect(subs.storeState(snapshot('orders', '0000000000000001_0000000000000001'))).rejects.toThrow();
    await subs.storeState(snapshot('orders', '0000000000000001_0000000000000002'));
    expect(await keysIn(store)).toEqual([subscriptionKey('orders', 2)]);
    const newest = (await new SubscriptionStore({ store, nodeId: 'x', clock }).loadAll()).get('orders');
    expect(newest?.state?.links[0]?.[1].acked).toBe('0000000000000001_0000000000000002');
  });

  test('another writer of the same version fences: this process stops storing that subscription', async () => {
    const store = new MemoryObjectStore();
    const mine = new SubscriptionStore({ store, nodeId: 'n1', clock });
    await mine.storeState(snapshot('orders'));
    await store.put(subscriptionKey('orders', 2), encodeStoredSubscription({ format: 1, id: 'orders', version: 2, nodeId: 'n2', storedAtMs: 0, state: snapshot('orders'), ended: null }));
    await expect(mine.storeState(snapshot('orders', '0000000000000001_0000000000000003'))).rejects.toThrow(SubscriptionStoreFencedError);
    await expect(mine.storeState(snapshot('orders', '0000000000000001_0000000000000004'))).rejects.toThrow(SubscriptionStoreFencedError);
    // The other writer's version is untouched, and no version 3 appeared.
    expect((await keysIn(store)).sort()).toEqual([subscriptionKey('orders', 1), subscriptionKey('orders', 2)]);
    // Other subscriptions are not affected.
    await mine.storeState(snapshot('mailer'));
  });

  test('a tombstone is the next version; purge removes every version, the tombstone last', async () => {
    const store = new FaultInjectingObjectStore(new MemoryObjectStore());
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    await subs.storeState(snapshot('orders'));
    // Version 1 outlives the tombstone's write (its delete fails): purge must remove it first.
    store.inject({ when: (call) => call.operation === 'deleteMany', action: { kind: 'fail', error: injectedUnavailable }, times: 1 });
    await subs.storeTombstone('orders', { createdAtMs: 1_000, hash: 'h'.repeat(64) });
    expect(await keysIn(store)).toHaveLength(2);
    const loaded = await new SubscriptionStore({ store, nodeId: 'x', clock }).loadAll();
    expect(loaded.get('orders')).toMatchObject({ version: 2, state: null, ended: { createdAtMs: 1_000 } });
    const deleted: string[] = [];
    const spy = store.inject({
      when: (call) => {
        if (call.operation === 'delete') deleted.push(call.key);
        if (call.operation === 'deleteMany') deleted.push(...(call.keys ?? []));
        return false;
      },
      action: { kind: 'delay', delayMs: 0 },
    });
    await subs.purge('orders');
    spy.remove();
    expect(await keysIn(store)).toEqual([]);
    expect(deleted).toEqual([subscriptionKey('orders', 1), subscriptionKey('orders', 2)]);
    // A re-created subscription of the same id starts a new chain.
    await subs.storeState(snapshot('orders'));
    expect(await keysIn(store)).toEqual([subscriptionKey('orders', 1)]);
  });
});

describe('flush budgets', () => {
  test('a definition change is stored within its budget, a cursor change within its own; one write per subscription however many changes', async () => {
    const clock = manualClock();
    const store = new MemoryObjectStore();
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    let acked = 0;
    const sync = new StoreSync({
      store: subs,
      clock,
      definitionFlushMs: 1_000,
      cursorFlushMs: 10_000,
      stateOf: (id) => snapshot(id, `0000000000000001_${String(acked).padStart(16, '0')}`),
      onBackgroundError: () => {},
    });
    sync.changed('orders', 'cursor');
    for (acked = 1; acked <= 5; acked++) sync.changed('orders', 'cursor');
    clock.advance(9_999);
    sync.tick();
    expect(subs.putCount).toBe(0);
    clock.advance(1);
    sync.tick();
    await sync.drain();
    expect(subs.putCount).toBe(1);
    sync.changed('orders', 'cursor');
    sync.changed('orders', 'definition');
    clock.advance(1_000);
    sync.tick();
    await sync.drain();
    expect(subs.putCount).toBe(2);
    expect(sync.dirtyCount).toBe(0);
  });

  test('a failed write stays due and is retried', async () => {
    const clock = manualClock();
    const store = new FaultInjectingObjectStore(new MemoryObjectStore());
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    const errors: unknown[] = [];
    const sync = new StoreSync({ store: subs, clock, definitionFlushMs: 0, cursorFlushMs: 0, stateOf: (id) => snapshot(id), onBackgroundError: (error) => errors.push(error) });
    store.inject({ when: (call) => call.operation === 'put', action: { kind: 'fail', error: injectedUnavailable }, times: 1 });
    sync.changed('orders', 'definition');
    sync.tick();
    await sync.drain();
    expect(errors).toHaveLength(1);
    expect(sync.dirtyCount).toBe(1);
    clock.advance(1_000);
    sync.tick();
    await sync.drain();
    expect(await keysIn(store)).toEqual([subscriptionKey('orders', 1)]);
  });
});

describe('deletes', () => {
  test('no live version follows a tombstone, until the id is created again; a failed tombstone stores the subscription again', async () => {
    const clock = manualClock();
    const store = new FaultInjectingObjectStore(new MemoryObjectStore());
    const subs = new SubscriptionStore({ store, nodeId: 'n1', clock });
    const sync = new StoreSync({ store: subs, clock, definitionFlushMs: 0, cursorFlushMs: 0, stateOf: (id) => snapshot(id), onBackgroundError: () => {} });
    const table = new SubscriptionTable();
    table.restore([snapshot('orders')]);
    const sub = table.get('orders');
    if (sub === undefined) throw new Error('no subscription');
    await sync.storeNow('orders');

    store.inject({ when: (call) => call.operation === 'put', action: { kind: 'fail', error: injectedUnavailable }, times: 1 });
    await expect(sync.storeTombstone(sub, () => true)).rejects.toThrow();
    expect(sync.dirtyCount).toBe(1);
    clock.advance(1_000);
    sync.tick();
    await sync.drain();
    expect((await subs.loadAll()).get('orders')?.state).not.toBeNull();

    await sync.storeTombstone(sub, () => true);
    // Changes after the tombstone (an ack racing the delete) are not stored.
    sync.changed('orders', 'cursor');
    sync.tick();
    await sync.drain();
    const reader = new SubscriptionStore({ store, nodeId: 'x', clock });
    expect((await reader.loadAll()).get('orders')?.state).toBeNull();
    sync.created('orders');
    sync.changed('orders', 'definition');
    sync.tick();
    await sync.drain();
    expect((await reader.loadAll()).get('orders')?.state).not.toBeNull();
  });
});

describe('signing-key vault', () => {
  const clock = manualClock(1_700_000_000_000);

  test('encrypted keys reach a node without the key file, which signs with the same kid', async () => {
    const store = new MemoryObjectStore();
    const secret = 'correct horse battery staple';
    const first = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n1', clock, secret }));
    // Nothing is stored before a subscription needs it.
    expect(await keysIn(store)).toEqual([]);
    await first.ensureStored();
    const [key] = await keysIn(store);
    const stored = JSON.parse(Buffer.from((await store.get(key as string)).body).toString()) as { encryption: string; keys?: unknown };
    expect(stored.encryption).toBe('aes-256-gcm-scrypt');
    expect(stored.keys).toBeUndefined();
    expect(Buffer.from((await store.get(key as string)).body).toString()).not.toContain('PRIVATE KEY');
    const second = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n2', clock, secret }));
    expect(second.activeKid).toBe(first.activeKid);
    // A rotation is stored too.
    const rotated = await second.rotate();
    const third = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n3', clock, secret }));
    expect(third.activeKid).toBe(rotated);
    expect(await keysIn(store)).toHaveLength(1);
  });

  test('another secret, or none, cannot read encrypted keys; without a secret they are stored in the clear', async () => {
    const store = new MemoryObjectStore();
    const keys = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n1', clock, secret: 'the first secret!' }));
    await keys.ensureStored();
    await expect(SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n2', clock, secret: 'another secret!!' }))).rejects.toThrow(SigningKeysUnreadableError);
    await expect(SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'n2', clock }))).rejects.toThrow(/not set/);

    const plainStore = new MemoryObjectStore();
    const plain = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store: plainStore, nodeId: 'n1', clock }));
    await plain.ensureStored();
    const [key] = await keysIn(plainStore);
    expect(Buffer.from((await plainStore.get(key as string)).body).toString()).toContain('PRIVATE KEY');
  });

  test('a node whose rotation loses the race adopts the keys the other node stored', async () => {
    const store = new MemoryObjectStore();
    const a = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'a', clock }));
    await a.ensureStored();
    const b = await SigningKeys.open(undefined, clock, new SigningKeyVault({ store, nodeId: 'b', clock }));
    const winner = await a.rotate();
    await b.rotate();
    expect(b.activeKid).toBe(winner);
  });
});

describe('reconciliation at start', () => {
  test('loads, deletes, purges, marks behind and prunes as the stored and held states say', async () => {
    const clock = manualClock();
    const objects = new MemoryObjectStore();
    const writer = new SubscriptionStore({ store: objects, nodeId: 'old', clock });
    const live = (id: string, links: SubscriptionSnapshot['links'] = []): SubscriptionSnapshot => ({ ...snapshot(id), config: { ...snapshot(id).config, pattern: null, streams: ['s/1'] }, links });
    const withWake = { ...live('loaded', [['s/1', { explicit: true, acked: '0000000000000001_0000000000000007' }]]), wake: { gen: 3, wakeId: 'w_x', tokenHash: null, holder: null, leaseUntilMs: null, offered: [] as [string, string][] } };
    await writer.storeState(withWake);
    await writer.storeState(live('deleted'));
    await writer.storeTombstone('deleted', { createdAtMs: 1_000, hash: 'h'.repeat(64) });
    await writer.storeState(live('recreated'));
    await writer.storeTombstone('recreated', { createdAtMs: 1, hash: 'an older life' });
    await writer.storeState(live('purged'));
    await writer.storeTombstone('purged', { createdAtMs: 1_000, hash: 'h'.repeat(64) });
    await writer.storeState(live('same'));

    const table = new SubscriptionTable();
    table.restore([
      live('deleted'),
      live('recreated'),
      live('same'),
      live('unstored', [
        ['gone/x', { explicit: false, acked: '0000000000000001_0000000000000001' }],
        ['unreachable/y', { explicit: false, acked: '0000000000000001_0000000000000001' }],
      ]),
    ]);
    const committed: SubscriptionRecord[] = [];
    const changed: string[] = [];
    const registry = {
      holdsPath: () => false,
      get: () => {
        throw new Error('not held');
      },
      allStreams: () => [][Symbol.iterator](),
    } as unknown as StreamRegistry;
    const finds: string[] = [];
    const store = new SubscriptionStore({ store: objects, nodeId: 'new', clock });
    const result = await reconcileStored({
      store,
      registry,
      finder: {
        find: async (path) => {
          finds.push(path);
          if (path.startsWith('unreachable/')) throw new Error('store down');
        },
      },
      held: (id) => table.get(id),
      allHeld: () => table.all(),
      commit: async (record) => {
        committed.push(record);
        table.apply(record);
      },
      stateOf: (id) => {
        const sub = table.get(id);
        return sub === undefined ? undefined : snapshotOf(sub);
      },
      changed: (id) => changed.push(id),
    });
    expect(result.loaded).toEqual(['loaded']);
    expect(result.deleted).toEqual(['deleted']);
    expect(result.purged).toEqual(['purged']);
    expect(result.behind.sort()).toEqual(['recreated', 'unstored']);
    expect(result.pruned).toEqual(['unstored']);
    expect(changed.sort()).toEqual(['recreated', 'unstored']);
    // The loaded subscription: cursors kept (no stream to lower them to), wake dropped; its streams were looked up.
    const load = committed.find((record) => record.t === 'sub.load');
    expect(load?.t === 'sub.load' && load.snapshot.wake).toBeNull();
    expect(load?.t === 'sub.load' && load.snapshot.links).toEqual(withWake.links);
    expect(finds).toEqual(expect.arrayContaining(['s/1', 'wake/pool', 'gone/x', 'unreachable/y']));
    // Only the glob link whose path was looked up and is absent is pruned.
    expect(committed.filter((record) => record.t === 'sub.prune')).toEqual([{ t: 'sub.prune', id: 'unstored', paths: ['gone/x'] }]);
    expect([...(table.get('unstored')?.links.keys() ?? [])]).toEqual(['unreachable/y']);
    // Tombstoned ids are gone from the store; the deleted one is no longer held.
    expect(table.get('deleted')).toBeUndefined();
    const keys = await keysIn(objects);
    expect(keys.some((key) => key.includes('sub-deleted/') || key.includes('sub-purged/'))).toBe(false);
    expect(keys.filter((key) => key.includes('sub-same/'))).toHaveLength(1);
  });
});
