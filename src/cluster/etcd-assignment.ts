/**
 * What the elected leader writes (docs/cluster.md "Moves"): from the slot map and the registered
 * nodes, the next slot map towards the rendezvous target over the assignable nodes (registered,
 * not draining). Pure, so every rule is unit-tested; level-triggered, so running it again on the
 * map it produced changes nothing.
 *
 * Per slot, with owner `o` and target `t`:
 * - no owner (a new cluster): straight to `t` at epoch + 1 (nobody has written under it);
 * - a live owner (registered, draining or not): `movingTo: t` when `t` differs (same owner, same
 *   epoch: the owner seals, then hands over itself, epoch + 1), and no mark when `t` is the owner;
 * - an owner not registered (its lease expired): with takeover 'automatic', to `t` at epoch + 1
 *   with the dead owner appended to `recoverFrom` (the transaction requires it still
 *   unregistered; the new owner replays its chain, diskless mode); with 'manual', it keeps the slot
 *   (unmarked) until it returns or an operator runs `cairn cluster reassign`;
 * - `recoverFrom` stays with the slot until its owner clears it (a live owner's slot is not
 *   marked to move meanwhile: it could not seal it);
 * - no assignable node at all: nothing changes except marks towards nodes no longer assignable.
 */
import { rendezvousAssignment } from './slots.ts';
import type { NodeRecord } from './etcd-keys.ts';
import type { SlotOwner } from './slot-table.ts';

/** What happens to a slot whose owner's lease expired. */
export type TakeoverMode = 'manual' | 'automatic';

export interface AssignmentPlan {
  /** The next slot map (a new array; entries unchanged are the same objects). */
  owners: SlotOwner[];
  /** Slots whose entry changed. */
  changedSlots: number[];
  /** Owners (not registered) that slots were taken from: the write must require them still absent. */
  takenFromNodeIds: string[];
  /** Nodes that slots were given to directly (new owner, not a mark): the write must require them registered. */
  givenToNodeIds: string[];
}

function sameOwner(a: SlotOwner, b: SlotOwner): boolean {
  return a.nodeId === b.nodeId && a.epoch === b.epoch && a.movingTo === b.movingTo && a.recoverFrom === b.recoverFrom;
}

/** `owner` at `epoch`, keeping its `recoverFrom`, with `movingTo` when given. */
function entryOf(owner: SlotOwner, nodeId: string, epoch: number, movingTo?: string): SlotOwner {
  const entry: SlotOwner = { nodeId, epoch };
  if (movingTo !== undefined) entry.movingTo = movingTo;
  if (owner.recoverFrom !== undefined) entry.recoverFrom = owner.recoverFrom;
  return entry;
}

/**
 * The next map from `owners` given the registered `nodes` (docs above). At most
 * `movingSlotsMax` slots carry a mark at once (marks already there count; new ones go in slot
 * order): a marked slot refuses writes until its owner has sealed it and handed it over, so a
 * join or leave moves slots in batches rather than pausing a large share of streams at once.
 * Direct assignments (unowned slots, takeovers) are not batched: nobody is writing to them.
 */
export function planAssignment(owners: readonly SlotOwner[], nodes: ReadonlyMap<string, NodeRecord>, takeover: TakeoverMode, movingSlotsMax = Infinity): AssignmentPlan {
  const assignable = [...nodes.values()].filter((node) => !node.draining).map((node) => node.nodeId);
  const assignableSet = new Set(assignable);
  const targets = rendezvousAssignment(owners.length, assignable);
  const next: SlotOwner[] = [];
  const changedSlots: number[] = [];
  const takenFrom = new Set<string>();
  const givenTo = new Set<string>();
  // Marks that stay (towards the same or another target) hold their place in the batch first.
  let moving = owners.filter((owner, slot) => owner.movingTo !== undefined && nodes.has(owner.nodeId) && (targets[slot] ?? '') !== '' && targets[slot] !== owner.nodeId).length;
  owners.forEach((owner, slot) => {
    const target = targets[slot] ?? '';
    let entry: SlotOwner = owner;
    if (target === '') {
      // Nowhere to go: only drop a mark towards a node that can no longer take the slot.
      if (owner.movingTo !== undefined && !assignableSet.has(owner.movingTo)) entry = entryOf(owner, owner.nodeId, owner.epoch);
    } else if (owner.nodeId === '') {
      entry = { nodeId: target, epoch: owner.epoch + 1 };
      givenTo.add(target);
    } else if (nodes.has(owner.nodeId)) {
      if (owner.nodeId === target) entry = entryOf(owner, owner.nodeId, owner.epoch);
      else if (owner.recoverFrom !== undefined) {
        // Still being recovered: not movable until its owner clears it.
      } else if (owner.movingTo !== undefined) entry = entryOf(owner, owner.nodeId, owner.epoch, target);
      else if (moving < movingSlotsMax) {
        entry = entryOf(owner, owner.nodeId, owner.epoch, target);
        moving++;
      }
    } else if (takeover === 'automatic') {
      const recoverFrom = (owner.recoverFrom ?? []).filter((nodeId) => nodeId !== owner.nodeId);
      entry = { nodeId: target, epoch: owner.epoch + 1, recoverFrom: [...recoverFrom, owner.nodeId] };
      takenFrom.add(owner.nodeId);
      givenTo.add(target);
    } else {
      entry = entryOf(owner, owner.nodeId, owner.epoch);
    }
    if (sameOwner(entry, owner)) entry = owner;
    else changedSlots.push(slot);
    next.push(entry);
  });
  return { owners: next, changedSlots, takenFromNodeIds: [...takenFrom], givenToNodeIds: [...givenTo] };
}

/**
 * The operator's reassignment of a dead node's slots (`cairn cluster reassign`): every slot of
 * `fromNodeId` to `toNodeId`, or, without one, to the rendezvous target among `liveNodeIds`; each
 * at epoch + 1 with no mark.
 * @returns the next map and the slots moved.
 * @throws RangeError when there is no node to move to.
 */
export function planReassignment(owners: readonly SlotOwner[], fromNodeId: string, liveNodeIds: readonly string[], toNodeId?: string): { owners: SlotOwner[]; movedSlots: number[] } {
  const candidates = toNodeId !== undefined ? [toNodeId] : liveNodeIds.filter((nodeId) => nodeId !== fromNodeId);
  if (candidates.length === 0) throw new RangeError('no live node to move the slots to');
  const targets = rendezvousAssignment(owners.length, candidates);
  const movedSlots: number[] = [];
  const next = owners.map((owner, slot) => {
    if (owner.nodeId !== fromNodeId) return owner;
    movedSlots.push(slot);
    return { nodeId: targets[slot] as string, epoch: owner.epoch + 1 };
  });
  return { owners: next, movedSlots };
}
