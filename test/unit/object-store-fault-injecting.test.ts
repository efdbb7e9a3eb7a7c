import { describe, expect, test } from 'vitest';
import {
  FaultInjectingObjectStore,
  injectedUnavailable,
  MemoryObjectStore,
  ObjectNotFoundError,
  ObjectStoreUnavailableError,
  type ObjectStoreCall,
} from '../../src/object-store/index.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function setup() {
  const memory = new MemoryObjectStore();
  const sleeps: number[] = [];
  const faults = new FaultInjectingObjectStore(memory, { sleep: async (ms) => void sleeps.push(ms) });
  return { memory, faults, sleeps };
}

describe('FaultInjectingObjectStore', () => {
  test('passes calls through when no rule matches', async () => {
    const { memory, faults } = setup();
    faults.inject({ when: (c) => c.key === 'other', action: { kind: 'fail', error: injectedUnavailable } });
    await faults.put('k', bytes('v'));
    expect((await faults.get('k')).body).toEqual(bytes('v'));
    expect(memory.objectCount).toBe(1);
    expect(faults.description).toBe('memory');
  });

  test('fail before: the inner store is not touched', async () => {
    const { memory, faults } = setup();
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: injectedUnavailable } });
    await expect(faults.put('k', bytes('v'))).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    await expect(memory.get('k')).rejects.toBeInstanceOf(ObjectNotFoundError);
  });

  test('fail after: the operation takes effect and the answer is lost', async () => {
    const { memory, faults } = setup();
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: injectedUnavailable, phase: 'after' } });
    await expect(faults.put('k', bytes('v'))).rejects.toBeInstanceOf(ObjectStoreUnavailableError);
    expect((await memory.get('k')).body).toEqual(bytes('v'));
  });

  test('predicates see the call; times limits a rule; the first matching rule applies; remove stops it', async () => {
    const { memory, faults } = setup();
    await memory.put('seg/1', bytes('1'));
    const seen: ObjectStoreCall[] = [];
    faults.inject({ when: (c) => (seen.push(c), false), action: { kind: 'hang' } }); // records, never matches
    const first = faults.inject({
      when: (c) => c.key.startsWith('seg/'),
      action: { kind: 'fail', error: () => new Error('first') },
      times: 2,
    });
    const second = faults.inject({ when: (c) => c.key.startsWith('seg/'), action: { kind: 'fail', error: () => new Error('second') } });
    await expect(faults.get('seg/1', { startByte: 0, endByte: 1 })).rejects.toThrow('first');
    await expect(faults.head('seg/1')).rejects.toThrow('first');
    await expect(faults.head('seg/1')).rejects.toThrow('second');
    expect(seen[0]).toMatchObject({ operation: 'get', key: 'seg/1', range: { startByte: 0, endByte: 1 } });
    expect(first.hitCount).toBe(2);
    expect(second.hitCount).toBe(1);
    second.remove();
    expect((await faults.head('seg/1')).sizeBytes).toBe(1);
    await faults.deleteMany(['seg/1']);
    expect(seen.at(-1)).toMatchObject({ operation: 'deleteMany', key: '', keys: ['seg/1'] });
    faults.clearFaults();
  });

  test('delay waits with the injected sleep, then proceeds', async () => {
    const { faults, sleeps } = setup();
    faults.inject({ when: (c) => c.operation === 'list', action: { kind: 'delay', delayMs: 250 } });
    await faults.put('a', bytes('a'));
    expect((await faults.list({ prefix: '' })).objects).toHaveLength(1);
    expect(sleeps).toEqual([250]);
  });

  test('hang holds calls until releaseHung', async () => {
    const { faults } = setup();
    faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'hang' } });
    let settled = false;
    const pending = faults.put('k', bytes('v')).finally(() => (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false);
    expect(faults.hungCount).toBe(1);
    faults.clearFaults();
    faults.releaseHung();
    await pending;
    expect(faults.hungCount).toBe(0);
    expect((await faults.get('k')).body).toEqual(bytes('v'));
  });
});
