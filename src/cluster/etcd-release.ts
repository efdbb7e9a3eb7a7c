/**
 * The owner's half of a graceful move (docs/cluster.md "Moves"). The leader only marks a slot
 * `movingTo: <target>`; the owner, seeing its slots marked, has its server seal and publish their
 * hot tails (the ReleaseHandler; writes are already refused: the fence refuses a marked slot),
 * then itself writes the hand-over, `{nodeId: target, epoch: epoch + 1}`, in a transaction on
 * the map's mod revision that also requires the target registered.
 *
 * The owner writes the hand-over (not the leader after a "released" marker) because only the owner
 * knows when its seal finished and that no write was acknowledged after it: one transaction
 * instead of two, and no marker to clean up when a leader changes mid-move.
 *
 * A slot is handed over only if this node's table never showed it writable (owned, unmarked)
 * from the start of its release: a mark cleared and set again while sealing could let a write be
 * acknowledged after the seal. Such a slot is released again on the next round.
 */
import type { Clock, Timer } from '../clock.ts';
import { CLUSTER_RETRY_DELAY_MS } from '../config/limits.ts';
import type { ReleaseHandler } from './coordinator.ts';
import type { NodeRecord } from './etcd-keys.ts';
import type { ClusterLog } from './etcd-log.ts';
import type { ClusterStore } from './etcd-map-store.ts';
import type { SlotMap, SlotOwner, SlotTable } from './slot-table.ts';

/** Hand-over attempts after one release when other writers keep moving the map. */
const HANDOVER_ATTEMPTS_MAX = 10;

export interface SlotReleaserOptions {
  table: SlotTable;
  store: ClusterStore;
  clock: Clock;
  log: ClusterLog;
  /** The server's handler (undefined: nothing to seal, e.g. in tests of coordination alone). */
  handler: () => ReleaseHandler | undefined;
  /** Registered nodes as last seen by the watch. */
  nodes: () => ReadonlyMap<string, NodeRecord>;
  /** A map this node wrote (apply it before the watch brings it). */
  onMapWritten: (map: SlotMap) => void;
}

export class SlotReleaser {
  readonly #options: SlotReleaserOptions;
  #running = false;
  #again = false;
  #closed = false;
  #retry: Timer | undefined;
  /** Slots being released, with the epoch they were marked at. */
  #releasing = new Map<number, number>();
  /** Of those, the ones the table showed writable since their release began. */
  #dirty = new Set<number>();

  constructor(options: SlotReleaserOptions) {
    this.#options = options;
    options.table.onChange(() => this.#noteWritable());
  }

  /** The map or the nodes changed: release and hand over whatever is marked. */
  poke(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#rounds().finally(() => (this.#running = false));
  }

  close(): void {
    this.#closed = true;
    this.#retry?.cancel();
  }

  #noteWritable(): void {
    const { table } = this.#options;
    for (const slot of this.#releasing.keys()) {
      const owner = table.map.owners[slot] as SlotOwner;
      if (owner.nodeId === table.nodeId && owner.movingTo === undefined) this.#dirty.add(slot);
    }
  }

  /** Slots this node owns that are marked towards a registered, non-draining node, with their epochs. */
  #marked(): Map<number, number> {
    const { table, nodes } = this.#options;
    const live = nodes();
    const marked = new Map<number, number>();
    table.map.owners.forEach((owner, slot) => {
      if (owner.nodeId !== table.nodeId || owner.movingTo === undefined) return;
      const target = live.get(owner.movingTo);
      if (target !== undefined && !target.draining) marked.set(slot, owner.epoch);
    });
    return marked;
  }

  async #rounds(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#round();
      } catch (error) {
        this.#options.log.warn({ err: error }, 'cluster: releasing moving slots failed; retrying');
        this.#retryLater();
      }
    } while (this.#again && !this.#closed);
  }

  #retryLater(): void {
    this.#retry?.cancel();
    this.#retry = this.#options.clock.setTimeout(() => this.poke(), CLUSTER_RETRY_DELAY_MS).unref();
  }

  async #round(): Promise<void> {
    const marked = this.#marked();
    if (marked.size === 0 || this.#closed) return;
    const { table, store, log, handler, onMapWritten } = this.#options;
    this.#releasing = marked;
    this.#dirty = new Set();
    try {
      await handler()?.([...marked.keys()]);
      for (let attempt = 0; attempt < HANDOVER_ATTEMPTS_MAX && !this.#closed; attempt++) {
        const map = await store.readMap();
        table.setMap(map);
        const owners = [...map.owners];
        const targets = new Set<string>();
        let moved = 0;
        for (const [slot, epoch] of marked) {
          const owner = owners[slot] as SlotOwner;
          if (this.#dirty.has(slot) || owner.nodeId !== table.nodeId || owner.epoch !== epoch || owner.movingTo === undefined) continue;
          owners[slot] = { nodeId: owner.movingTo, epoch: epoch + 1 };
          targets.add(owner.movingTo);
          moved++;
        }
        if (moved === 0) break;
        const written = await store.writeMap(owners, map.revision, { presentNodeIds: [...targets] });
        if (written !== undefined) {
          log.info({ revision: written.revision, handedOverSlots: moved, to: [...targets] }, 'cluster: slots handed over');
          onMapWritten(written);
          break;
        }
      }
    } finally {
      const dirty = this.#dirty.size > 0;
      this.#releasing = new Map();
      this.#dirty = new Set();
      // Slots released again (dirty) or still marked (a hand-over lost to other writers) go round again.
      if (dirty || this.#marked().size > 0) this.#retryLater();
    }
  }
}
