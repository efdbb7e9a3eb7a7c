/**
 * The etcd key layout of a cluster (docs/cluster.md "Keys"), all under `/<cluster-name>/`, and
 * the JSON codecs of their values. Values are JSON so `etcdctl get` shows them as they are.
 *
 *   /<name>/identity          {"slotCount":4096}                      created once, never changed
 *   /<name>/slots             {"slotCount":4096,"owners":[{"nodeId":"a","epoch":3,"movingTo":"b"},{"nodeId":"b","epoch":5,"recoverFrom":["c"]},…]}
 *                             changed only by transactions comparing its mod revision
 *   /<name>/nodes/<nodeId>    {"nodeId":"a","advertiseUrl":"http://…","draining":false}
 *                             under the node's lease: present exactly while the node is live
 *   /<name>/node-index/<nodeId> 7                                  allocated once per node id (incarnation residue)
 *   /<name>/node-index-next   8                                       the next index to allocate
 *   /<name>/election/leader/… etcd3's Election (the leader that computes assignments)
 */
import type { NodeInfo, SlotOwner } from './slot-table.ts';

/** Keys of one cluster. */
export class ClusterKeys {
  readonly prefix: string;
  constructor(clusterName: string) {
    if (clusterName.length === 0 || clusterName.includes('/')) throw new RangeError(`cluster name must be non-empty and without "/": ${JSON.stringify(clusterName)}`);
    this.prefix = `/${clusterName}/`;
  }
  get identity(): string {
    return `${this.prefix}identity`;
  }
  get slots(): string {
    return `${this.prefix}slots`;
  }
  get nodesPrefix(): string {
    return `${this.prefix}nodes/`;
  }
  node(nodeId: string): string {
    return `${this.nodesPrefix}${nodeId}`;
  }
  /** The node id of a key under `nodesPrefix`. */
  nodeIdOf(key: string): string {
    return key.slice(this.nodesPrefix.length);
  }
  /** A node id's index (a decimal number, allocated once, never changed): its incarnation residue. */
  nodeIndex(nodeId: string): string {
    return `${this.prefix}node-index/${nodeId}`;
  }
  /** The next node index to allocate. */
  get nodeIndexNext(): string {
    return `${this.prefix}node-index-next`;
  }
  /** Namespace (relative to the cluster prefix) of the leader election. */
  readonly electionName = 'leader';
}

/** A node's registration, as stored under its lease. */
export interface NodeRecord extends NodeInfo {
  /** Set by a leaving node: the leader moves its slots away and assigns it none. */
  draining: boolean;
}

/** The slot map as stored (its revision is the key's mod revision, not stored). */
export interface StoredSlotMap {
  slotCount: number;
  owners: SlotOwner[];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`${what} is not JSON: ${(error as Error).message}`, { cause: error });
  }
}

export function encodeIdentity(slotCount: number): string {
  return JSON.stringify({ slotCount });
}

/** @throws Error when the value is not an identity. */
export function decodeIdentity(text: string): { slotCount: number } {
  const value = parse(text, 'cluster identity');
  if (!isObject(value) || !Number.isSafeInteger(value.slotCount) || (value.slotCount as number) < 1) throw new Error(`cluster identity is malformed: ${text.slice(0, 200)}`);
  return { slotCount: value.slotCount as number };
}

export function encodeSlotMap(map: StoredSlotMap): string {
  const owners = map.owners.map((owner) => {
    const entry: SlotOwner = { nodeId: owner.nodeId, epoch: owner.epoch };
    if (owner.movingTo !== undefined) entry.movingTo = owner.movingTo;
    if (owner.recoverFrom !== undefined && owner.recoverFrom.length > 0) entry.recoverFrom = owner.recoverFrom;
    return entry;
  });
  return JSON.stringify({ slotCount: map.slotCount, owners });
}

/** @throws Error when the value is not a slot map (every entry checked: a bad map must never be applied). */
export function decodeSlotMap(text: string): StoredSlotMap {
  const value = parse(text, 'slot map');
  if (!isObject(value) || !Number.isSafeInteger(value.slotCount) || !Array.isArray(value.owners) || value.owners.length !== value.slotCount) {
    throw new Error('slot map is malformed (slotCount and owners disagree)');
  }
  const owners = value.owners.map((entry: unknown, slot): SlotOwner => {
    if (!isObject(entry) || typeof entry.nodeId !== 'string' || !Number.isSafeInteger(entry.epoch) || (entry.epoch as number) < 0) {
      throw new Error(`slot map entry ${slot} is malformed`);
    }
    if (entry.movingTo !== undefined && typeof entry.movingTo !== 'string') throw new Error(`slot map entry ${slot} has a malformed movingTo`);
    const { recoverFrom } = entry;
    if (recoverFrom !== undefined && !(Array.isArray(recoverFrom) && recoverFrom.every((nodeId) => typeof nodeId === 'string'))) {
      throw new Error(`slot map entry ${slot} has a malformed recoverFrom`);
    }
    const owner: SlotOwner = { nodeId: entry.nodeId, epoch: entry.epoch as number };
    if (typeof entry.movingTo === 'string') owner.movingTo = entry.movingTo;
    if (recoverFrom !== undefined && recoverFrom.length > 0) owner.recoverFrom = recoverFrom as string[];
    return owner;
  });
  return { slotCount: value.slotCount as number, owners };
}

export function encodeNode(record: NodeRecord): string {
  return JSON.stringify({ nodeId: record.nodeId, advertiseUrl: record.advertiseUrl, draining: record.draining });
}

/** @returns undefined for a value that is not a node record (ignored: a node never registers one). */
export function decodeNode(text: string): NodeRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(value) || typeof value.nodeId !== 'string' || typeof value.advertiseUrl !== 'string') return undefined;
  return { nodeId: value.nodeId, advertiseUrl: value.advertiseUrl, draining: value.draining === true };
}

/** An empty map: every slot unowned at epoch 0. */
export function emptySlotMap(slotCount: number): StoredSlotMap {
  return { slotCount, owners: Array.from({ length: slotCount }, () => ({ nodeId: '', epoch: 0 })) };
}
