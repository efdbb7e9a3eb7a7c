/**
 * Slots, rendezvous assignment and the write fence of cluster mode (src/cluster; DESIGN.md
 * "Scale-out"), with a manual clock for the lease.
 */
import { describe, expect, it } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { ClusterUnavailableError, SlotNotOwnedError } from '../../src/cluster/errors.ts';
import { SlotTable, type SlotOwner } from '../../src/cluster/slot-table.ts';
import { rendezvousAssignment, slotOf } from '../../src/cluster/slots.ts';
import { MemoryRecordLog, testClock } from '../support/record-log.ts';
import { StreamRegistry } from '../../src/stream/registry.ts';

const SLOTS = 4096;

describe('slotOf', () => {
  it('is the first four bytes of SHA-256 of the path, modulo the slot count', () => {
    // sha256("a") = ca978112…: 0xca978112 % 4096 = 0x112 = 274
    expect(slotOf('a', SLOTS)).toBe(0xca978112 % SLOTS);
    for (const path of ['x', 'chat/42', 'ünïcode/ß', 'a'.repeat(1000)]) {
      const slot = slotOf(path, SLOTS);
      expect(Number.isInteger(slot) && slot >= 0 && slot < SLOTS).toBe(true);
      expect(slotOf(path, SLOTS)).toBe(slot);
    }
  });
});

describe('rendezvousAssignment', () => {
  const count = (owners: string[], node: string) => owners.filter((owner) => owner === node).length;

  it('spreads the slots evenly and the same way for every caller', () => {
    for (const nodes of [['n1', 'n2'], ['n1', 'n2', 'n3'], ['a', 'b', 'c', 'd', 'e']]) {
      const owners = rendezvousAssignment(SLOTS, nodes);
      expect(rendezvousAssignment(SLOTS, [...nodes].reverse())).toEqual(owners);
      for (const node of nodes) {
        const share = count(owners, node) / SLOTS;
        expect(Math.abs(share - 1 / nodes.length)).toBeLessThan(0.05);
      }
    }
  });

  it('moves only the slots of a node that joins or leaves', () => {
    const before = rendezvousAssignment(SLOTS, ['n1', 'n2', 'n3']);
    const joined = rendezvousAssignment(SLOTS, ['n1', 'n2', 'n3', 'n4']);
    const moved = before.filter((owner, slot) => joined[slot] !== owner);
    expect(moved.length).toBe(count(joined, 'n4'));
    joined.forEach((owner, slot) => {
      if (owner !== 'n4') expect(owner).toBe(before[slot]);
    });
    const left = rendezvousAssignment(SLOTS, ['n1', 'n3']);
    left.forEach((owner, slot) => {
      if (before[slot] !== 'n2') expect(owner).toBe(before[slot]);
    });
  });

  it('gives every slot no owner when there are no nodes', () => {
    expect(new Set(rendezvousAssignment(8, []))).toEqual(new Set(['']));
  });
});

describe('SlotTable', () => {
  const path = 'orders/1';
  function table(options: { leaseMs?: number } = {}) {
    const clock = manualClock(1_000);
    const slots = new SlotTable({ nodeId: 'me', slotCount: SLOTS, clock, leaseSafeUntilMs: () => options.leaseMs ?? Infinity });
    const setOwner = (owner: SlotOwner, revision: number) => {
      const owners: SlotOwner[] = Array.from({ length: SLOTS }, () => ({ nodeId: 'other', epoch: 1 }));
      owners[slots.slotOf(path)] = owner;
      slots.setMap({ slotCount: SLOTS, owners, revision });
    };
    return { slots, clock, setOwner };
  }

  it('admits writes while this node owns the slot, with the slot epoch', () => {
    const { slots, setOwner } = table();
    setOwner({ nodeId: 'me', epoch: 7 }, 1);
    expect(slots.writeEpoch(path)).toBe(7);
    expect(() => slots.confirmEpoch(path, 7)).not.toThrow();
    expect(slots.route(path).self).toBe(true);
  });

  it('refuses writes for another owner, a slot moving away, and a changed epoch', () => {
    const { slots, setOwner } = table();
    setOwner({ nodeId: 'other', epoch: 3 }, 1);
    expect(() => slots.writeEpoch(path)).toThrow(SlotNotOwnedError);
    setOwner({ nodeId: 'me', epoch: 4, movingTo: 'other' }, 2);
    expect(() => slots.writeEpoch(path)).toThrow(SlotNotOwnedError);
    // A write admitted before the move was marked is still acknowledged: it is sealed with the slot.
    expect(() => slots.confirmEpoch(path, 4)).not.toThrow();
    setOwner({ nodeId: 'me', epoch: 5 }, 3);
    expect(() => slots.confirmEpoch(path, 4)).toThrow(SlotNotOwnedError);
  });

  it('ignores a map older than the one it has', () => {
    const { slots, setOwner } = table();
    setOwner({ nodeId: 'me', epoch: 2 }, 5);
    setOwner({ nodeId: 'other', epoch: 1 }, 4);
    expect(slots.writeEpoch(path)).toBe(2);
  });

  it('refuses writes once the lease is no longer certainly held', () => {
    const { slots, clock, setOwner } = table({ leaseMs: 500 });
    setOwner({ nodeId: 'me', epoch: 1 }, 1);
    expect(slots.writeEpoch(path)).toBe(1);
    clock.advance(600);
    expect(() => slots.writeEpoch(path)).toThrow(ClusterUnavailableError);
    expect(() => slots.confirmEpoch(path, 1)).toThrow(ClusterUnavailableError);
  });
});

describe('the registry behind a write fence', () => {
  it('logs nothing the fence refuses, and does not acknowledge what it refuses once durable', async () => {
    const log = new MemoryRecordLog();
    let admit = true;
    let confirm = true;
    const registry = new StreamRegistry({
      log,
      clock: testClock(),
      writeFence: {
        admit: () => {
          if (!admit) throw new SlotNotOwnedError(1, 'other', 'test');
          return 1;
        },
        confirm: () => {
          if (!confirm) throw new ClusterUnavailableError('test');
        },
      },
    });
    await registry.create({ path: 's', contentType: 'text/plain', body: Buffer.alloc(0), closed: false, ttlSeconds: undefined, expiresAtMs: undefined });
    admit = false;
    await expect(registry.append({ path: 's', contentType: 'text/plain', body: Buffer.from('x'), close: false, producer: undefined, streamSeq: undefined })).rejects.toThrow(SlotNotOwnedError);
    expect(log.records.filter((record) => record.t === 'append')).toHaveLength(0);
    admit = true;
    confirm = false;
    await expect(registry.append({ path: 's', contentType: 'text/plain', body: Buffer.from('y'), close: false, producer: undefined, streamSeq: undefined })).rejects.toThrow(ClusterUnavailableError);
    expect(log.records.filter((record) => record.t === 'append')).toHaveLength(1);
  });
});
