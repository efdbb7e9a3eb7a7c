/**
 * The filesystem store's fsyncs (power loss): an existing object met by a create-if-absent put
 * is fsynced before the refusal is answered (so adopting it is safe), every directory's entry
 * is fsynced by each racing put, and a failed fsync is not retryable and stops later writes.
 * Run on the simulated page cache of the power-loss tests.
 */
import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/clock.ts';
import { FsObjectStore } from '../../src/object-store/fs-store.ts';
import { ObjectAlreadyExistsError, ObjectStoreRequestError } from '../../src/object-store/object-store.ts';
import { RetryingObjectStore } from '../../src/object-store/retrying-store.ts';
import { SimulatedMachine } from '../fault/support/simulated-disk.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const KEY = 'ab/stream-1/3/0000-0100.seg';
const FILE = '/data/objects/ab~/stream-1~/3~/0000-0100.seg';

function machineWithDataDir(): SimulatedMachine {
  const machine = new SimulatedMachine();
  machine.mkdirs('/data');
  machine.sync(machine.root, '/');
  return machine;
}

describe('FsObjectStore durability', () => {
  test('a stored object survives a power loss, directories included', async () => {
    const machine = machineWithDataDir();
    const store = new FsObjectStore({ rootDir: '/data/objects', fs: machine.startProcess().storeFs });
    await store.put(KEY, bytes('segment'));
    const after = machine.powerLoss(seededRandom(1), false);
    const reopened = new FsObjectStore({ rootDir: '/data/objects', fs: after.startProcess().storeFs });
    expect(Buffer.from((await reopened.get(KEY)).body).toString()).toBe('segment');
  });

  test('EEXIST: the existing object and its directories are fsynced before the refusal (adoption is safe)', async () => {
    const machine = machineWithDataDir();
    // A writer that died before any fsync: the object is only in the page cache.
    const dead = machine.startProcess();
    await dead.storeFs.mkdir('/data/objects/ab~/stream-1~/3~', { recursive: true });
    const handle = await dead.storeFs.open(FILE, 'wx');
    await handle.writeFile(bytes('segment'));
    machine.killProcess();
    const store = new RetryingObjectStore(new FsObjectStore({ rootDir: '/data/objects', fs: machine.startProcess().storeFs }), {
      random: seededRandom(1),
      clock: { nowMs: () => 0 },
    });
    await expect(store.put(KEY, bytes('segment'))).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
    const after = machine.powerLoss(seededRandom(1), false);
    const reopened = new FsObjectStore({ rootDir: '/data/objects', fs: after.startProcess().storeFs });
    expect(Buffer.from((await reopened.get(KEY)).body).toString(), 'the refused put made the existing object durable').toBe('segment');
  });

  test('a put racing another that created the directories still fsyncs their entries', async () => {
    const machine = machineWithDataDir();
    // Another process created the directories and died before fsyncing them.
    await machine.startProcess().storeFs.mkdir('/data/objects/ab~/stream-1~/3~', { recursive: true });
    machine.killProcess();
    const store = new FsObjectStore({ rootDir: '/data/objects', fs: machine.startProcess().storeFs });
    await store.put(KEY, bytes('segment'));
    const after = machine.powerLoss(seededRandom(1), false);
    const reopened = new FsObjectStore({ rootDir: '/data/objects', fs: after.startProcess().storeFs });
    expect(Buffer.from((await reopened.get(KEY)).body).toString()).toBe('segment');
  });

  test('a failed fsync is not retried and fails every later write', async () => {
    const machine = machineWithDataDir();
    let retries = 0;
    const inner = new FsObjectStore({ rootDir: '/data/objects', fs: machine.startProcess().storeFs });
    const store = new RetryingObjectStore(inner, { random: seededRandom(1), clock: { nowMs: () => 0 }, sleep: async () => {}, onRetry: () => retries++ });
    await store.put('warm/up', bytes('x')); // creates the root and .tmp
    machine.failNextSync = 1;
    const error = await store.put(KEY, bytes('segment')).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreRequestError);
    expect(error).toMatchObject({ storeCode: 'FSYNC_FAILED', retryable: false });
    expect(retries, 'not retried').toBe(0);
    await expect(store.put('other/key', bytes('y'))).rejects.toMatchObject({ storeCode: 'FSYNC_FAILED' });
    await expect(store.delete('warm/up')).rejects.toMatchObject({ storeCode: 'FSYNC_FAILED' });
  });
});
