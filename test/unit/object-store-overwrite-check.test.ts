import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/clock.ts';
import {
  FaultInjectingObjectStore,
  FsObjectStore,
  injectedUnavailable,
  MemoryObjectStore,
  ObjectAlreadyExistsError,
  ObjectStoreOverwriteUnsafeError,
  ObjectStoreUnavailableError,
  verifyStoreRefusesOverwrite,
  type PutOptions,
} from '../../src/object-store/index.ts';

const random = () => seededRandom(5);

describe('verifyStoreRefusesOverwrite', () => {
  test('passes on a store that refuses overwrites, and removes its probe', async () => {
    const store = new MemoryObjectStore();
    await expect(verifyStoreRefusesOverwrite(store, { random: random() })).resolves.toEqual({ enforced: true });
    expect(store.objectCount).toBe(0);
  });

  test('passes on the filesystem store', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-probe-'));
    try {
      const store = new FsObjectStore({ rootDir: dir });
      await expect(verifyStoreRefusesOverwrite(store, { random: random() })).resolves.toEqual({ enforced: true });
      expect((await store.list({ prefix: '' })).objects).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('refuses a store that silently overwrites, naming the store and the override flag', async () => {
    const store = new MemoryObjectStore({ enforceCreateIfAbsent: false, description: 's3://lax-bucket/ at http://fake:1' });
    const error = await verifyStoreRefusesOverwrite(store, { random: random() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreOverwriteUnsafeError);
    const message = (error as Error).message;
    expect(message).toContain('s3://lax-bucket/ at http://fake:1');
    expect(message).toContain('accepted an overwrite');
    expect(message).toContain('--unsafe-allow-overwrites');
    expect(error).toMatchObject({ code: 'OBJECT_STORE_OVERWRITE_UNSAFE', retryable: false, storeDescription: 's3://lax-bucket/ at http://fake:1' });
    expect(store.objectCount).toBe(0);
  });

  test('with unsafeAllowOverwrites it reports instead of throwing', async () => {
    const store = new MemoryObjectStore({ enforceCreateIfAbsent: false });
    await expect(verifyStoreRefusesOverwrite(store, { random: random(), unsafeAllowOverwrites: true })).resolves.toEqual({
      enforced: false,
    });
    expect(store.objectCount).toBe(0);
  });

  test('refuses a store that answers 412 yet changes the object', async () => {
    class RefusesButWrites extends MemoryObjectStore {
      override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
        const existed = await this.head(key).then(() => true, () => false);
        await super.put(key, body, { ...options, overwrite: true });
        if (existed && !options?.overwrite) throw new ObjectAlreadyExistsError(key);
      }
    }
    const store = new RefusesButWrites();
    await expect(verifyStoreRefusesOverwrite(store, { random: random() })).rejects.toThrow(/changed the object anyway/);
    expect(store.objectCount).toBe(0);
  });

  test('an unreachable store fails the check with its own retryable error and leaves nothing behind', async () => {
    const memory = new MemoryObjectStore();
    const store = new FaultInjectingObjectStore(memory);
    store.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: injectedUnavailable }, times: 1 });
    await expect(verifyStoreRefusesOverwrite(store, { random: random() })).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    // The second put failing transiently proves nothing either; the probe is still removed.
    let puts = 0;
    store.inject({ when: (c) => c.operation === 'put' && ++puts === 2, action: { kind: 'fail', error: injectedUnavailable } });
    await expect(verifyStoreRefusesOverwrite(store, { random: random() })).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    expect(puts).toBe(2);
    expect(memory.objectCount).toBe(0);
  });

  test('never deletes an object it did not create', async () => {
    const memory = new MemoryObjectStore();
    const store = new FaultInjectingObjectStore(memory);
    // The first probe put meets an existing object (someone else's key).
    store.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: (c) => new ObjectAlreadyExistsError(c.key) }, times: 1 });
    const deletes = store.inject({ when: (c) => c.operation === 'delete', action: { kind: 'delay', delayMs: 0 } });
    await expect(verifyStoreRefusesOverwrite(store, { random: random() })).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
    expect(deletes.hitCount).toBe(0);
  });
});

describe('putCreateIfAbsent (the one read-back-and-compare)', () => {
  test('created, matched by identical bytes, refused over other bytes', async () => {
    const { putCreateIfAbsent } = await import('../../src/object-store/overwrite-check.ts');
    const store = new MemoryObjectStore();
    const body = new TextEncoder().encode('segment bytes');
    expect(await putCreateIfAbsent(store, 'k', body)).toBe('created');
    expect(await putCreateIfAbsent(store, 'k', body.slice())).toBe('matched');
    await expect(putCreateIfAbsent(store, 'k', new TextEncoder().encode('segment bytez'))).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
    expect(new TextDecoder().decode((await store.get('k')).body)).toBe('segment bytes');
  });
});
