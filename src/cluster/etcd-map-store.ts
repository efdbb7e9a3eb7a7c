/**
 * Reads and transactions on a cluster's keys in etcd (docs/cluster.md "Keys"): the identity,
 * the slot map (changed only by a transaction comparing its mod revision, so every change is
 * made against the version it was computed from) and the node registrations.
 */
import type { Etcd3 } from 'etcd3';
import { decodeIdentity, decodeNode, decodeSlotMap, emptySlotMap, encodeIdentity, encodeSlotMap, type ClusterKeys, type NodeRecord } from './etcd-keys.ts';
import type { SlotMap, SlotOwner } from './slot-table.ts';
import { INCARNATIONS_PER_MS } from '../config/limits.ts';

/** Conditions on node registrations that a map change depends on. */
export interface MapWriteConditions {
  /** Nodes that must not be registered (their lease expired): slots taken from them. */
  absentNodeIds?: readonly string[];
  /** Nodes that must be registered: slots given to them. */
  presentNodeIds?: readonly string[];
}

/** The cluster exists in etcd with another slot count (or a damaged identity): the node must not start. */
export class ClusterIdentityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterIdentityError';
  }
}

export class ClusterStore {
  readonly client: Etcd3;
  readonly keys: ClusterKeys;

  constructor(client: Etcd3, keys: ClusterKeys) {
    this.client = client;
    this.keys = keys;
  }

  /**
   * Creates the cluster's identity and an empty slot map if the cluster is new (one transaction:
   * two nodes starting together create it once); otherwise checks the stored slot count.
   * @throws ClusterIdentityError when the cluster exists with another slot count.
   */
  async ensureIdentity(slotCount: number): Promise<void> {
    const { keys, client } = this;
    const result = await client
      .if(keys.identity, 'Version', '==', 0)
      .and(keys.slots, 'Version', '==', 0)
      .then(client.put(keys.identity).value(encodeIdentity(slotCount)), client.put(keys.slots).value(encodeSlotMap(emptySlotMap(slotCount))))
      .commit();
    if (result.succeeded) return;
    const stored = await this.readIdentity();
    if (stored === undefined) throw new ClusterIdentityError(`cluster ${keys.prefix} has a slot map but no identity key; restore ${keys.identity} (e.g. {"slotCount":${slotCount}})`);
    if (stored.slotCount !== slotCount) {
      throw new ClusterIdentityError(
        `cluster ${keys.prefix} has ${stored.slotCount} slots, this node is configured with ${slotCount}: the slot count never changes (set --cluster-slot-count ${stored.slotCount}, or use another --cluster-name)`,
      );
    }
  }

  /**
   * The index of `nodeId` in this cluster: allocated once (a transaction on the counter), then
   * the same for every later start. Incarnations a node creates are ≡ its index (mod
   * INCARNATIONS_PER_MS), so two nodes never create the same one (docs/storage-layout.md
   * "Incarnations"). @throws ClusterIdentityError when every index is taken.
   */
  async nodeIndex(nodeId: string): Promise<number> {
    const { keys, client } = this;
    for (;;) {
      const stored = await client.get(keys.nodeIndex(nodeId)).string();
      if (stored !== null) return Number(stored);
      const next = await client.get(keys.nodeIndexNext).exec();
      const counter = next.kvs[0];
      const index = counter === undefined ? 0 : Number(counter.value.toString());
      if (index >= INCARNATIONS_PER_MS) {
        throw new ClusterIdentityError(`cluster ${keys.prefix} has allocated all ${INCARNATIONS_PER_MS} node indexes (one per node id ever started): use another --cluster-name`);
      }
      const result = await client
        .if(keys.nodeIndexNext, 'Mod', '==', counter === undefined ? 0 : Number(counter.mod_revision))
        .and(keys.nodeIndex(nodeId), 'Version', '==', 0)
        .then(client.put(keys.nodeIndexNext).value(String(index + 1)), client.put(keys.nodeIndex(nodeId)).value(String(index)))
        .commit();
      if (result.succeeded) return index;
    }
  }

  /** The stored identity, or undefined when the cluster does not exist. */
  async readIdentity(): Promise<{ slotCount: number } | undefined> {
    const text = await this.client.get(this.keys.identity).string();
    return text === null ? undefined : decodeIdentity(text);
  }

  /** The slot map now (linearizable read); revision = its mod revision. @throws Error when absent. */
  async readMap(): Promise<SlotMap> {
    const response = await this.client.get(this.keys.slots).exec();
    const kv = response.kvs[0];
    if (kv === undefined) throw new Error(`cluster ${this.keys.prefix} has no slot map`);
    return { ...decodeSlotMap(kv.value.toString('utf8')), revision: Number(kv.mod_revision) };
  }

  /** The registered nodes now, and the store revision they were read at. */
  async readNodes(): Promise<{ nodes: Map<string, NodeRecord>; revision: number }> {
    const response = await this.client.getAll().prefix(this.keys.nodesPrefix).exec();
    const nodes = new Map<string, NodeRecord>();
    for (const kv of response.kvs) {
      const record = decodeNode(kv.value.toString('utf8'));
      if (record !== undefined && this.keys.nodeIdOf(kv.key.toString('utf8')) === record.nodeId) nodes.set(record.nodeId, record);
    }
    return { nodes, revision: Number(response.header.revision) };
  }

  /**
   * Writes `owners` as the new slot map if the map is still at `expectedRevision` and every
   * condition holds.
   * @returns the new map (its revision the transaction's), or undefined when a comparison failed.
   */
  async writeMap(owners: readonly SlotOwner[], expectedRevision: number, conditions: MapWriteConditions = {}): Promise<SlotMap | undefined> {
    const { keys, client } = this;
    let txn = client.if(keys.slots, 'Mod', '==', expectedRevision);
    for (const nodeId of new Set(conditions.absentNodeIds ?? [])) txn = txn.and(keys.node(nodeId), 'Version', '==', 0);
    for (const nodeId of new Set(conditions.presentNodeIds ?? [])) txn = txn.and(keys.node(nodeId), 'Version', '>', 0);
    const map = { slotCount: owners.length, owners: [...owners] };
    const result = await txn.then(client.put(keys.slots).value(encodeSlotMap(map))).commit();
    if (!result.succeeded) return undefined;
    return { ...map, revision: Number(result.header.revision) };
  }
}
