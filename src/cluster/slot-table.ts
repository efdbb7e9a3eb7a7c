/**
 * What a node knows of the cluster (DESIGN.md "Scale-out"): the slot map (slot → owner node and
 * epoch) and the live nodes with the URLs peers reach them at, as last learnt from the
 * coordinator (etcd's watch, or the primary process of `--workers`). The fence lives here: a node
 * acknowledges a write in a slot only while the map names it the owner and its lease is safe.
 */
import type { Clock } from '../clock.ts';
import { SLOT_OF_PATHS_MAX } from '../config/limits.ts';
import { ClusterUnavailableError, SlotNotOwnedError, slotRecoveringError } from './errors.ts';
import { slotOf } from './slots.ts';

/** One slot's entry of the slot map. */
export interface SlotOwner {
  /** The owner node's id ('' while no node owns the slot). */
  nodeId: string;
  /** Grows by one with every change of owner; carried by every object the owner writes for the slot. */
  epoch: number;
  /** Set while the owner hands the slot over to this node: it refuses writes, seals, then releases. */
  movingTo?: string;
  /**
   * Diskless takeover (docs/cluster.md "Diskless takeover"): dead owners, oldest first, whose
   * write-ahead log chains hold this slot's unsealed appends. Set by the leader when it takes the
   * slot from a dead node; the owner acknowledges nothing for the slot until it has replayed them
   * into its own chain and cleared this; a node named here that restarts meanwhile keeps those
   * streams (inert), so its own checkpoints still hold them.
   */
  recoverFrom?: readonly string[];
}

/** A member of the cluster as it registered. */
export interface NodeInfo {
  nodeId: string;
  /** Base URL peers forward requests to, e.g. `http://10.0.0.5:4437`. */
  advertiseUrl: string;
  /** The unix-domain socket of its peer channel (workers of `--workers` on one machine: src/http/peer-channel.ts); absent: HTTP only. */
  peerSocketPath?: string;
}

/** The slot map at one version. */
export interface SlotMap {
  /** Fixed for the cluster's life. */
  slotCount: number;
  /** One entry per slot. */
  owners: readonly SlotOwner[];
  /** A version that grows with every change (etcd's mod revision of the map; the primary's counter). */
  revision: number;
}

/** Where a slot's requests go. */
export interface SlotRoute {
  slot: number;
  owner: SlotOwner;
  /** True when this node is the owner. */
  self: boolean;
  /** The owner's URL; undefined while it is not live (lease expired, not registered). */
  url: string | undefined;
  /** The owner's peer channel socket, when it has one and is live. */
  peerSocketPath: string | undefined;
}

export interface SlotTableOptions {
  nodeId: string;
  slotCount: number;
  clock: Clock;
  /**
   * Monotonic time (ms) until which this node's lease is certainly still held (the last keep-alive
   * answered, plus the TTL, minus the safety margin); Infinity when ownership is not leased
   * (the static map of `--workers`).
   */
  leaseSafeUntilMs: () => number;
}

/** The node's copy of the slot map, the live nodes, and the write fence. */
export class SlotTable {
  readonly nodeId: string;
  readonly slotCount: number;
  readonly #clock: Clock;
  readonly #leaseSafeUntilMs: () => number;
  #map: SlotMap;
  #nodes = new Map<string, NodeInfo>();
  readonly #listeners: Array<(previous: SlotMap) => void> = [];
  /** Slots of paths asked lately, oldest first (a Map in insertion order: lru-cache's bookkeeping cost ~1.7% of a worker's CPU here). */
  readonly #slots = new Map<string, number>();
  /** Owned slots whose streams are still being recovered from a dead owner's log (diskless takeover). */
  readonly #recovering = new Map<number, { from: string; done: Promise<void>; resolve: () => void }>();

  constructor(options: SlotTableOptions) {
    this.nodeId = options.nodeId;
    this.slotCount = options.slotCount;
    this.#clock = options.clock;
    this.#leaseSafeUntilMs = options.leaseSafeUntilMs;
    this.#map = { slotCount: options.slotCount, owners: Array.from({ length: options.slotCount }, () => ({ nodeId: '', epoch: 0 })), revision: 0 };
  }

  get map(): SlotMap {
    return this.#map;
  }

  get nodes(): ReadonlyMap<string, NodeInfo> {
    return this.#nodes;
  }

  /** Takes a newer map (an older or equal revision is ignored). @throws Error on a slot count that differs. */
  setMap(map: SlotMap): void {
    if (map.slotCount !== this.slotCount || map.owners.length !== this.slotCount) {
      throw new Error(`slot map has ${map.owners.length} slots, this cluster has ${this.slotCount}`);
    }
    if (map.revision <= this.#map.revision) return;
    const previous = this.#map;
    this.#map = map;
    for (const listener of this.#listeners) listener(previous);
  }

  /** Replaces the live node list. */
  setNodes(nodes: Iterable<NodeInfo>): void {
    this.#nodes = new Map([...nodes].map((node) => [node.nodeId, node]));
  }

  /** Calls `listener` with the previous map after each change of map. */
  onChange(listener: (previous: SlotMap) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * The slot of `path`, memoised (a SHA-256 per request was ~3% of a forwarded append's CPU); past
   * SLOT_OF_PATHS_MAX paths the oldest remembered is dropped (first in, first out: a dropped hot
   * path costs one hash and comes back).
   */
  slotOf(path: string): number {
    let slot = this.#slots.get(path);
    if (slot === undefined) {
      slot = slotOf(path, this.slotCount);
      if (this.#slots.size >= SLOT_OF_PATHS_MAX) this.#slots.delete(this.#slots.keys().next().value as string);
      this.#slots.set(path, slot);
    }
    return slot;
  }

  /** Where requests for stream `path` go. */
  route(path: string): SlotRoute {
    const slot = this.slotOf(path);
    const owner = this.#map.owners[slot] as SlotOwner;
    const self = owner.nodeId === this.nodeId;
    const node = this.#nodes.get(owner.nodeId);
    return { slot, owner, self, url: node?.advertiseUrl, peerSocketPath: node?.peerSocketPath };
  }

  /**
   * Marks owned `slots` as being recovered from `fromNodeId`'s write-ahead log (a diskless
   * takeover): until `recovered`, the fences refuse writes and stores for them and `recovering`
   * tells the router not to look their streams up yet.
   */
  markRecovering(slots: readonly number[], fromNodeId: string): void {
    const { promise, resolve } = Promise.withResolvers<void>();
    for (const slot of slots) this.#recovering.set(slot, { from: fromNodeId, done: promise, resolve });
  }

  /** Ends `markRecovering` for `slots`; `whenRecovered` promises resolve. */
  recovered(slots: readonly number[]): void {
    for (const slot of slots) {
      this.#recovering.get(slot)?.resolve();
      this.#recovering.delete(slot);
    }
  }

  /**
   * Undefined when slot `slot` is not recovering; else resolves true once it is recovered, or
   * false after `timeoutMs`.
   */
  whenRecovered(slot: number, timeoutMs: number): Promise<boolean> | undefined {
    const done = this.#recovering.get(slot)?.done;
    if (done === undefined) return undefined;
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => resolve(false), timeoutMs);
      void done.then(() => {
        timer.cancel();
        resolve(true);
      });
    });
  }

  /** The node whose log slot `slot`'s streams are being recovered from, or undefined. */
  recovering(slot: number): string | undefined {
    return this.#recovering.get(slot)?.from;
  }

  #refuseRecovering(slot: number): void {
    const from = this.#recovering.get(slot)?.from;
    if (from !== undefined) throw slotRecoveringError(slot, from);
  }

  /** Slots this node owns now (moving ones included). */
  ownedSlots(): number[] {
    const slots: number[] = [];
    this.#map.owners.forEach((owner, slot) => {
      if (owner.nodeId === this.nodeId) slots.push(slot);
    });
    return slots;
  }

  /**
   * The fence (DESIGN.md "Scale-out", "Fencing"): the epoch under which this node may acknowledge
   * a write to stream `path` now. Asked before a write is logged and again before it is
   * acknowledged, so a node paused past its lease (SIGSTOP, a long GC) acknowledges nothing once
   * it resumes.
   * @throws SlotNotOwnedError when another node owns the slot or it is being handed over;
   *   ClusterUnavailableError when the lease is not certainly held, or the slot's streams are
   *   still being recovered from a dead owner's log.
   */
  writeEpoch(path: string): number {
    const slot = this.slotOf(path);
    const owner = this.#map.owners[slot] as SlotOwner;
    if (owner.nodeId !== this.nodeId) throw new SlotNotOwnedError(slot, owner.nodeId || undefined, `owned by ${owner.nodeId || 'no node'}, not ${this.nodeId}`);
    if (owner.movingTo !== undefined) throw new SlotNotOwnedError(slot, owner.movingTo, `moving to ${owner.movingTo}`);
    if (this.#clock.monotonicMs() >= this.#leaseSafeUntilMs()) {
      throw new ClusterUnavailableError(`node ${this.nodeId}: lease not confirmed by etcd within its safety margin; refusing writes`);
    }
    this.#refuseRecovering(slot);
    return owner.epoch;
  }

  /**
   * The fence for storing a slot's objects (segments, manifest versions): the slot's epoch while
   * this node owns it (moving included: a hand-over seals first) and its lease is safe.
   * @throws SlotNotOwnedError, ClusterUnavailableError.
   */
  storeEpoch(path: string): number {
    const slot = this.slotOf(path);
    const owner = this.#map.owners[slot] as SlotOwner;
    if (owner.nodeId !== this.nodeId) throw new SlotNotOwnedError(slot, owner.nodeId || undefined, `owned by ${owner.nodeId || 'no node'}: this node stores nothing for it`);
    if (this.#clock.monotonicMs() >= this.#leaseSafeUntilMs()) throw new ClusterUnavailableError(`node ${this.nodeId}: lease at risk; storing nothing`);
    this.#refuseRecovering(slot);
    return owner.epoch;
  }

  /**
   * The second half of the fence, just before a durable write is acknowledged: this node still
   * owns the slot under `epoch` and its lease is safe. A slot marked moving still counts (its
   * writes in flight are sealed and handed over with it).
   * @throws SlotNotOwnedError, ClusterUnavailableError.
   */
  confirmEpoch(path: string, epoch: number): void {
    const slot = this.slotOf(path);
    const owner = this.#map.owners[slot] as SlotOwner;
    if (owner.nodeId !== this.nodeId || owner.epoch !== epoch) {
      throw new SlotNotOwnedError(slot, owner.nodeId || undefined, `changed owner while the write was made durable (now ${owner.nodeId || 'no node'}, epoch ${owner.epoch}); not acknowledged`);
    }
    if (this.#clock.monotonicMs() >= this.#leaseSafeUntilMs()) {
      throw new ClusterUnavailableError(`node ${this.nodeId}: lease at risk while the write was made durable; not acknowledged`);
    }
  }
}
