/**
 * The coordinator interface (DESIGN.md "Scale-out"): keeps a node's `SlotTable` current and runs
 * its part in slot moves. Two implementations: `EtcdCoordinator` (membership by lease, the slot
 * map changed only by etcd transactions and watched) and `StaticCoordinator` (`--workers N`
 * without etcd: the primary process holds a fixed map and sends it to its workers).
 */
import type { SlotTable } from './slot-table.ts';

/**
 * Seals and publishes every hot tail of the streams in `slots` (their writes are already
 * refused: the map marks them moving), so the next owner loads them whole from the object store.
 * Resolves when done; a rejection leaves the slots with this node (the move is retried later).
 */
export type ReleaseHandler = (slots: readonly number[]) => Promise<void>;

/** Where a started node listens. */
export interface ListeningAddress {
  /** Base URL peers forward requests to. */
  advertiseUrl: string;
  /** Base URL clients use. */
  url: string;
  /** The peer channel's unix-domain socket (workers of `--workers`); absent: peers use HTTP only. */
  peerSocketPath?: string;
}

/** A node's view of coordination, for `/readyz`, metrics and `cairn cluster status`. */
export interface CoordinatorStatus {
  /** 'etcd' or 'static'. */
  kind: string;
  /** Whether the coordinator is reachable and this node's registration (lease) is held. */
  connected: boolean;
  /** Slots this node owns. */
  ownedSlots: number;
  /** Revision of the slot map this node has applied. */
  mapRevision: number;
}

export interface Coordinator {
  readonly table: SlotTable;
  /**
   * Registers this node (reachable by peers at `listening.advertiseUrl`, by clients at
   * `listening.url`) and resolves once the first slot map is applied.
   * @throws when the coordinator cannot be reached in time.
   */
  start(listening: ListeningAddress): Promise<void>;
  /**
   * This node's incarnation residue once started (etcd: its node index), or undefined (the static
   * map: a worker's slots never move, so it never holds a stream another worker created).
   * Incarnations it creates are ≡ this (mod INCARNATIONS_PER_MS), unique across the cluster.
   */
  readonly incarnationResidue: number | undefined;
  /** The server's part in a move: set once, before `start`. */
  setReleaseHandler(handler: ReleaseHandler): void;
  /** Graceful leave (SIGTERM): asks for this node's slots to move away and waits (bounded) until it owns none. */
  leave(): Promise<void>;
  status(): CoordinatorStatus;
  /**
   * Diskless takeover: writes the map without `recoverFrom` on those of `slots` this node still
   * owns, once their dead owners' appends are in this node's own log (docs/cluster.md "Diskless
   * takeover"). Retries lost transactions. @throws when etcd cannot be written (the caller retries).
   */
  clearRecoverFrom(slots: readonly number[]): Promise<void>;
  /** Stops watching and keep-alives; the registration ends (lease revoked). */
  close(): Promise<void>;
}
