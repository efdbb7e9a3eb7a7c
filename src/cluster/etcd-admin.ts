/**
 * Operator actions on a cluster's keys (`cairn cluster status`, `cairn cluster reassign`;
 * docs/cluster.md "Operations"). They talk to etcd directly, not to a Cairn node, so they work
 * while nodes are down.
 */
import type { Etcd3 } from 'etcd3';
import { planReassignment } from './etcd-assignment.ts';
import { ClusterKeys } from './etcd-keys.ts';
import { ClusterStore } from './etcd-map-store.ts';

/** One node as `cluster status` shows it: registered ones, and owners of slots that are not. */
export interface NodeStatus {
  nodeId: string;
  /** Undefined when the node is not registered (its lease expired or it left). */
  advertiseUrl: string | undefined;
  live: boolean;
  draining: boolean;
  /** Slots it owns (moving ones included). */
  slotCount: number;
  /** Of those, slots marked to move to another node. */
  movingSlotCount: number;
  /** Of those, slots taken from dead nodes whose logs it is still replaying (diskless takeover). */
  recoveringSlotCount: number;
  /** Lowest and highest epoch of its slots (0 when it owns none). */
  epochMin: number;
  epochMax: number;
}

export interface ClusterStatusReport {
  clusterName: string;
  slotCount: number;
  /** etcd mod revision of the slot map. */
  mapRevision: number;
  /** The elected leader's node id, if one is elected. */
  leaderNodeId: string | undefined;
  nodes: NodeStatus[];
  /** Slots no node owns (a cluster that never had a live node). */
  unownedSlotCount: number;
}

/** An operator request that would break the cluster's rules. */
export class ClusterAdminError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterAdminError';
  }
}

/** @throws ClusterAdminError when the cluster does not exist. */
export async function readClusterStatus(client: Etcd3, clusterName: string): Promise<ClusterStatusReport> {
  const keys = new ClusterKeys(clusterName);
  const store = new ClusterStore(client, keys);
  const identity = await store.readIdentity();
  if (identity === undefined) throw new ClusterAdminError(`no cluster named ${clusterName} in this etcd`);
  const map = await store.readMap();
  const { nodes } = await store.readNodes();
  const leaderNodeId = await client.namespace(keys.prefix).election(keys.electionName).leader();
  const byNode = new Map<string, NodeStatus>();
  for (const node of nodes.values()) {
    byNode.set(node.nodeId, { nodeId: node.nodeId, advertiseUrl: node.advertiseUrl, live: true, draining: node.draining, slotCount: 0, movingSlotCount: 0, recoveringSlotCount: 0, epochMin: 0, epochMax: 0 });
  }
  let unownedSlotCount = 0;
  for (const owner of map.owners) {
    if (owner.nodeId === '') {
      unownedSlotCount++;
      continue;
    }
    let status = byNode.get(owner.nodeId);
    if (status === undefined) {
      status = { nodeId: owner.nodeId, advertiseUrl: undefined, live: false, draining: false, slotCount: 0, movingSlotCount: 0, recoveringSlotCount: 0, epochMin: 0, epochMax: 0 };
      byNode.set(owner.nodeId, status);
    }
    status.epochMin = status.slotCount === 0 ? owner.epoch : Math.min(status.epochMin, owner.epoch);
    status.epochMax = Math.max(status.epochMax, owner.epoch);
    status.slotCount++;
    if (owner.movingTo !== undefined) status.movingSlotCount++;
    if (owner.recoverFrom !== undefined) status.recoveringSlotCount++;
  }
  return {
    clusterName,
    slotCount: map.slotCount,
    mapRevision: map.revision,
    leaderNodeId: leaderNodeId ?? undefined,
    nodes: [...byNode.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId)),
    unownedSlotCount,
  };
}

export interface ReassignOptions {
  /** The dead node whose slots move. */
  fromNodeId: string;
  /** The node to move them to; default: spread over the live nodes by rendezvous hashing. */
  toNodeId?: string | undefined;
}

/**
 * Moves every slot of a node that is not registered (its lease expired) to live nodes, each at
 * epoch + 1, in one transaction that requires the node still unregistered and the targets
 * registered. What the dead node had not sealed is lost (its local WAL): the caller must have
 * the operator accept that.
 * @returns the number of slots moved and the new map revision.
 * @throws ClusterAdminError when the node is live, owns no slot, the target is not live, or no
 *   node is live; when the map keeps changing under it.
 */
export async function reassignSlots(client: Etcd3, clusterName: string, options: ReassignOptions): Promise<{ movedSlotCount: number; revision: number }> {
  const keys = new ClusterKeys(clusterName);
  const store = new ClusterStore(client, keys);
  const { fromNodeId, toNodeId } = options;
  for (let attempt = 0; attempt < 10; attempt++) {
    const map = await store.readMap();
    const { nodes } = await store.readNodes();
    if (nodes.has(fromNodeId)) throw new ClusterAdminError(`node ${fromNodeId} is live (registered): stop it, or let it leave, instead of reassigning its slots`);
    if (toNodeId !== undefined && !nodes.has(toNodeId)) throw new ClusterAdminError(`node ${toNodeId} is not live`);
    const live = [...nodes.values()].filter((node) => !node.draining).map((node) => node.nodeId);
    if (toNodeId === undefined && live.length === 0) throw new ClusterAdminError('no live node to move the slots to');
    const plan = planReassignment(map.owners, fromNodeId, live, toNodeId);
    if (plan.movedSlots.length === 0) throw new ClusterAdminError(`node ${fromNodeId} owns no slot`);
    const targets = new Set(plan.movedSlots.map((slot) => plan.owners[slot]!.nodeId));
    const written = await store.writeMap(plan.owners, map.revision, { absentNodeIds: [fromNodeId], presentNodeIds: [...targets] });
    if (written !== undefined) return { movedSlotCount: plan.movedSlots.length, revision: written.revision };
  }
  throw new ClusterAdminError('the slot map kept changing; try again');
}
