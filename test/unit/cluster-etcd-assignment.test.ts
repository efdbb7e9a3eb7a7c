/**
 * The leader's next slot map (src/cluster/etcd-assignment.ts) and the etcd value codecs
 * (src/cluster/etcd-keys.ts), without etcd: every rule of the move protocol on small maps.
 */
import { describe, expect, it } from 'vitest';
import { planAssignment, planReassignment } from '../../src/cluster/etcd-assignment.ts';
import { ClusterKeys, decodeNode, decodeSlotMap, emptySlotMap, encodeNode, encodeSlotMap, type NodeRecord } from '../../src/cluster/etcd-keys.ts';
import type { SlotOwner } from '../../src/cluster/slot-table.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';

const SLOTS = 64;

function nodes(...ids: Array<string | [string, 'draining']>): Map<string, NodeRecord> {
  return new Map(
    ids.map((id) => {
      const [nodeId, draining] = typeof id === 'string' ? [id, false] : [id[0], true];
      return [nodeId, { nodeId, advertiseUrl: `http://${nodeId}`, draining }];
    }),
  );
}

/** A map that is exactly the rendezvous target over `ids`, at `epoch`. */
function settled(ids: string[], epoch = 1): SlotOwner[] {
  return rendezvousAssignment(SLOTS, ids).map((nodeId) => ({ nodeId, epoch }));
}

describe('planAssignment', () => {
  it('gives unowned slots straight to their target at epoch 1, and changes nothing once there', () => {
    const plan = planAssignment(emptySlotMap(SLOTS).owners, nodes('a', 'b'), 'manual');
    expect(plan.owners).toEqual(settled(['a', 'b']));
    expect(plan.changedSlots).toHaveLength(SLOTS);
    expect(plan.givenToNodeIds.sort()).toEqual(['a', 'b']);
    expect(planAssignment(plan.owners, nodes('a', 'b'), 'manual').changedSlots).toEqual([]);
  });

  it('marks only the slots a joining node wins, same owner and epoch', () => {
    const before = settled(['a', 'b'], 3);
    const plan = planAssignment(before, nodes('a', 'b', 'c'), 'manual');
    const target = rendezvousAssignment(SLOTS, ['a', 'b', 'c']);
    expect(plan.changedSlots.length).toBeGreaterThan(0);
    for (let slot = 0; slot < SLOTS; slot++) {
      if (target[slot] === 'c') expect(plan.owners[slot]).toEqual({ nodeId: before[slot]!.nodeId, epoch: 3, movingTo: 'c' });
      else expect(plan.owners[slot]).toBe(before[slot]);
    }
    expect(plan.givenToNodeIds).toEqual([]);
  });

  it('marks at most movingSlotsMax slots at once, counting the marks already there, and converges batch by batch', () => {
    let owners = settled(['a', 'b']);
    const target = rendezvousAssignment(SLOTS, ['a', 'b', 'c']);
    const toMove = target.filter((nodeId) => nodeId === 'c').length;
    expect(toMove).toBeGreaterThan(5);
    let batches = 0;
    for (;;) {
      const plan = planAssignment(owners, nodes('a', 'b', 'c'), 'manual', 5);
      expect(plan.owners.filter((owner) => owner.movingTo !== undefined).length).toBeLessThanOrEqual(5);
      // The owners hand the marked slots over (what etcd-release.ts does).
      owners = plan.owners.map((owner) => (owner.movingTo === undefined ? owner : { nodeId: owner.movingTo, epoch: owner.epoch + 1 }));
      if (plan.changedSlots.length === 0) break;
      batches++;
    }
    expect(batches).toBe(Math.ceil(toMove / 5));
    expect(owners.map((owner) => owner.nodeId)).toEqual(target);
  });

  it('moves a draining node\'s slots away and assigns it none', () => {
    const plan = planAssignment(settled(['a', 'b']), nodes('a', ['b', 'draining']), 'manual');
    for (const owner of plan.owners) {
      if (owner.nodeId === 'b') expect(owner.movingTo).toBe('a');
      else expect(owner.movingTo).toBeUndefined();
    }
  });

  it('clears a mark once the owner is the target again', () => {
    const before = settled(['a', 'b']).map((owner) => ({ ...owner, movingTo: 'c' }));
    const plan = planAssignment(before, nodes('a', 'b'), 'manual');
    expect(plan.owners).toEqual(settled(['a', 'b']));
  });

  it('leaves a dead owner its slots (unmarked) in manual mode', () => {
    const before = settled(['a', 'b']).map((owner) => (owner.nodeId === 'b' ? { ...owner, movingTo: 'a' } : owner));
    const plan = planAssignment(before, nodes('a'), 'manual');
    for (const [slot, owner] of plan.owners.entries()) expect(owner).toEqual({ nodeId: before[slot]!.nodeId, epoch: 1 });
    expect(plan.takenFromNodeIds).toEqual([]);
  });

  it('takes a dead owner\'s slots at epoch + 1 in automatic mode, requiring it still absent', () => {
    const before = settled(['a', 'b'], 5);
    const plan = planAssignment(before, nodes('a'), 'automatic');
    for (const [slot, owner] of plan.owners.entries()) {
      if (before[slot]!.nodeId === 'b') expect(owner).toEqual({ nodeId: 'a', epoch: 6, recoverFrom: ['b'] });
      else expect(owner).toBe(before[slot]);
    }
    expect(plan.takenFromNodeIds).toEqual(['b']);
    expect(plan.givenToNodeIds).toEqual(['a']);
  });

  it('keeps recoverFrom until the owner clears it, never marks such a slot to move, and appends a taker that died too', () => {
    // c died; a took its slots and is replaying c's log; b joins, so rendezvous wants some of them on b.
    const before = settled(['a', 'c'], 3).map((owner) => (owner.nodeId === 'c' ? { nodeId: 'a', epoch: 4, recoverFrom: ['c'] } : owner));
    const joined = planAssignment(before, nodes('a', 'b'), 'automatic');
    const targets = rendezvousAssignment(SLOTS, ['a', 'b']);
    let kept = 0;
    for (const [slot, owner] of joined.owners.entries()) {
      if (before[slot]!.recoverFrom === undefined) continue;
      expect(owner).toBe(before[slot]); // neither marked towards b nor stripped
      if (targets[slot] === 'b') kept++;
    }
    expect(kept).toBeGreaterThan(0);
    // a dies before clearing it: b takes the slot and must read c's chain and then a's.
    const taken = planAssignment(before, nodes('b'), 'automatic');
    for (const [slot, owner] of taken.owners.entries()) {
      expect(owner.nodeId).toBe('b');
      if (before[slot]!.recoverFrom !== undefined) expect(owner).toEqual({ nodeId: 'b', epoch: 5, recoverFrom: ['c', 'a'] });
      else expect(owner).toEqual({ nodeId: 'b', epoch: 4, recoverFrom: ['a'] });
    }
    // Cleared by the owner, the slot moves as usual (a mark without recoverFrom).
    const cleared = before.map((owner) => ({ nodeId: owner.nodeId, epoch: owner.epoch }));
    const marked = planAssignment(cleared, nodes('a', 'b'), 'automatic');
    expect(marked.owners.some((owner) => owner.movingTo === 'b')).toBe(true);
    expect(marked.owners.every((owner) => owner.recoverFrom === undefined)).toBe(true);
  });

  it('encodes and decodes recoverFrom, and refuses a malformed one', () => {
    const map = { slotCount: 2, owners: [{ nodeId: 'a', epoch: 2, recoverFrom: ['c', 'b'] }, { nodeId: 'b', epoch: 1 }] };
    expect(decodeSlotMap(encodeSlotMap(map))).toEqual(map);
    expect(() => decodeSlotMap(JSON.stringify({ slotCount: 1, owners: [{ nodeId: 'a', epoch: 1, recoverFrom: 'c' }] }))).toThrow(/recoverFrom/);
  });

  it('with no assignable node drops only marks towards nodes that cannot take them', () => {
    const before: SlotOwner[] = [
      { nodeId: 'a', epoch: 2, movingTo: 'b' },
      { nodeId: 'a', epoch: 2 },
    ];
    const plan = planAssignment(before, nodes(['a', 'draining']), 'manual');
    expect(plan.owners).toEqual([
      { nodeId: 'a', epoch: 2 },
      { nodeId: 'a', epoch: 2 },
    ]);
  });
});

describe('planReassignment', () => {
  it('moves every slot of the dead node, epoch + 1, to the named node or spread over the live ones', () => {
    const before = settled(['a', 'b', 'c'], 4);
    const toOne = planReassignment(before, 'c', ['a', 'b'], 'b');
    for (const [slot, owner] of toOne.owners.entries()) {
      expect(owner).toEqual(before[slot]!.nodeId === 'c' ? { nodeId: 'b', epoch: 5 } : before[slot]);
    }
    const spread = planReassignment(before, 'c', ['a', 'b']);
    expect(spread.movedSlots).toEqual(toOne.movedSlots);
    expect(new Set(spread.movedSlots.map((slot) => spread.owners[slot]!.nodeId))).toEqual(new Set(['a', 'b']));
    expect(() => planReassignment(before, 'c', ['c'])).toThrow(RangeError);
  });
});

describe('etcd values', () => {
  it('round-trip the slot map and node records, and refuse malformed ones', () => {
    const map = { slotCount: 3, owners: [{ nodeId: 'a', epoch: 1 }, { nodeId: 'b', epoch: 2, movingTo: 'a' }, { nodeId: '', epoch: 0 }] };
    expect(decodeSlotMap(encodeSlotMap(map))).toEqual(map);
    expect(() => decodeSlotMap('{"slotCount":2,"owners":[{"nodeId":"a","epoch":1}]}')).toThrow(/malformed/);
    expect(() => decodeSlotMap('{"slotCount":1,"owners":[{"nodeId":"a","epoch":-1}]}')).toThrow(/malformed/);
    const record = { nodeId: 'a', advertiseUrl: 'http://a:1', draining: true };
    expect(decodeNode(encodeNode(record))).toEqual(record);
    expect(decodeNode('nope')).toBeUndefined();
  });

  it('puts every key under /<cluster-name>/', () => {
    const keys = new ClusterKeys('prod');
    expect([keys.identity, keys.slots, keys.node('n1')]).toEqual(['/prod/identity', '/prod/slots', '/prod/nodes/n1']);
    expect(keys.nodeIdOf('/prod/nodes/n1')).toBe('n1');
    expect(() => new ClusterKeys('a/b')).toThrow(RangeError);
  });
});
