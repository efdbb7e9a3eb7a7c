/**
 * Errors of cluster mode (DESIGN.md "Scale-out"). Both answer 503 with `Retry-After`: the same
 * request succeeds once the slot has an owner that can acknowledge it (the forwarding node retries
 * once itself; clients retry as they do any 503).
 */
import { CairnError } from '../protocol/error-table.ts';

/**
 * This node does not own the slot of the stream (it moved, or is moving) and so cannot
 * acknowledge a write or serve its hot tail. `ownerNodeId` is the owner this node knows of, if any.
 */
export class SlotNotOwnedError extends CairnError {
  readonly slot: number | undefined;
  readonly ownerNodeId: string | undefined;
  constructor(slot: number | undefined, ownerNodeId: string | undefined, reason: string) {
    // The forwarding node reads the header to tell a moved slot from any other 503 (and retries once).
    super('SLOT_NOT_OWNED', slot === undefined ? reason : `slot ${slot}: ${reason}`, { headers: { 'cairn-slot-owner': ownerNodeId ?? '' } });
    this.slot = slot;
    this.ownerNodeId = ownerNodeId;
  }
}

/**
 * The slot's ownership cannot be trusted right now: this node's lease is at risk (etcd not
 * answering within the keep-alive margin), or the owner is not live. Writes wait for the cluster.
 */
export class ClusterUnavailableError extends CairnError {
  constructor(reason: string, options?: ErrorOptions) {
    super('CLUSTER_UNAVAILABLE', reason, options);
  }
}

/** 503 for a slot whose streams are still being replayed from dead node `fromNodeId`'s write-ahead log here (docs/cluster.md "Diskless takeover"). */
export function slotRecoveringError(slot: number, fromNodeId: string | undefined): ClusterUnavailableError {
  return new ClusterUnavailableError(`slot ${slot}: its streams are being recovered from ${fromNodeId ?? 'a dead node'}'s write-ahead log; retry shortly`);
}
