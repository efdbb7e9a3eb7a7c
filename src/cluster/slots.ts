/**
 * Slots (DESIGN.md "Scale-out"): a stream path hashes to one of a fixed number of slots, the
 * unit of ownership. The slot count is part of a cluster's identity and never changes (every node
 * must hash alike), so the hash is fixed here: the first four bytes of SHA-256 of the path's
 * UTF-8 bytes, big-endian, modulo the slot count.
 */
import { createHash } from 'node:crypto';

/**
 * The slot of stream `path` (the path as the routes see it, without `/v1/stream/`).
 * @returns an integer in [0, slotCount).
 */
export function slotOf(path: string, slotCount: number): number {
  return createHash('sha256').update(path).digest().readUInt32BE(0) % slotCount;
}

/** A 32-bit score of (slot, node) for rendezvous hashing: FNV-1a over the node id, then a murmur3 finaliser mixing in the slot. */
function rendezvousScore(slot: number, nodeId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < nodeId.length; i++) hash = Math.imul(hash ^ nodeId.charCodeAt(i), 0x01000193);
  hash ^= Math.imul(slot + 1, 0x9e3779b1);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

/**
 * Rendezvous (highest-random-weight) assignment: each slot goes to the node with the highest
 * score for it. Balanced in expectation over any set of nodes, and a node joining or leaving
 * moves only the slots it wins or held (about 1/n of them), with no coordination beyond the
 * node list. Ties (astronomically rare) go to the smaller node id, so every node computes the
 * same map.
 * @returns for each slot, the id of its node; empty ids when `nodeIds` is empty.
 */
export function rendezvousAssignment(slotCount: number, nodeIds: readonly string[]): string[] {
  const owners = new Array<string>(slotCount).fill('');
  if (nodeIds.length === 0) return owners;
  const sorted = [...nodeIds].sort();
  for (let slot = 0; slot < slotCount; slot++) {
    let best = '';
    let bestScore = -1;
    for (const nodeId of sorted) {
      const score = rendezvousScore(slot, nodeId);
      if (score > bestScore) {
        best = nodeId;
        bestScore = score;
      }
    }
    owners[slot] = best;
  }
  return owners;
}
