/**
 * The elected leader's loop (docs/cluster.md "Moves"): one node at a time, chosen by etcd3's
 * Election, reads the slot map and the registered nodes and writes the next map towards the
 * rendezvous target (etcd-assignment.ts). It is level-triggered (on every watch event and on a
 * timer it compares and converges, so a missed event is harmless) and its writes are
 * transactions on the map's mod revision, so two nodes that both believe they lead (a deposed
 * leader not yet told) cannot interleave their changes: safety never depends on leadership.
 */
import type { Campaign, Election } from 'etcd3';
import type { Clock, Timer } from '../clock.ts';
import { CLUSTER_MOVING_SLOTS_MAX, CLUSTER_RETRY_DELAY_MS } from '../config/limits.ts';
import { planAssignment, type TakeoverMode } from './etcd-assignment.ts';
import type { ClusterStore } from './etcd-map-store.ts';
import type { ClusterLog } from './etcd-log.ts';
import type { SlotMap } from './slot-table.ts';

/** Attempts of one round when other writers keep moving the map under it. */
const ROUND_ATTEMPTS_MAX = 10;

export interface SlotLeaderOptions {
  store: ClusterStore;
  election: Election;
  nodeId: string;
  clock: Clock;
  takeover: TakeoverMode;
  /** Period of the level-triggered check in ms, besides the pokes. */
  tickMs: number;
  log: ClusterLog;
  /** A map this leader wrote (apply it before the watch brings it). */
  onMapWritten: (map: SlotMap) => void;
}

export class SlotLeader {
  readonly #options: SlotLeaderOptions;
  #campaign: Campaign | undefined;
  #leading = false;
  #running = false;
  #again = false;
  #closed = false;
  #tick: Timer | undefined;
  #retry: Timer | undefined;

  constructor(options: SlotLeaderOptions) {
    this.#options = options;
  }

  /** Whether this node won the election (and has not since lost its campaign). */
  get leading(): boolean {
    return this.#leading;
  }

  /** Starts campaigning; on election the loop runs on every poke and tick. */
  start(): void {
    this.#tick = this.#options.clock.setInterval(() => this.poke(), this.#options.tickMs).unref();
    this.#campaignNow();
  }

  /** Something changed (map, nodes): run a round if leading. */
  poke(): void {
    if (!this.#leading || this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    void this.#rounds().finally(() => (this.#running = false));
  }

  /** Stops the loop and resigns (another node is elected at once). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#leading = false;
    this.#tick?.cancel();
    this.#retry?.cancel();
    await this.#campaign?.resign().catch(() => undefined);
  }

  #campaignNow(): void {
    if (this.#closed) return;
    const { election, nodeId, log } = this.#options;
    const campaign = election.campaign(nodeId);
    this.#campaign = campaign;
    campaign.on('elected', () => {
      if (campaign !== this.#campaign || this.#closed) return;
      this.#leading = true;
      log.info({ nodeId }, 'cluster: elected leader; assigning slots');
      this.poke();
    });
    campaign.on('error', (error: Error) => {
      if (campaign !== this.#campaign || this.#closed) return;
      if (this.#leading) log.warn({ nodeId, err: error }, 'cluster: lost the leadership (campaign failed); campaigning again');
      this.#leading = false;
      campaign.resign().catch(() => undefined);
      this.#retry = this.#options.clock.setTimeout(() => this.#campaignNow(), CLUSTER_RETRY_DELAY_MS).unref();
    });
  }

  async #rounds(): Promise<void> {
    do {
      this.#again = false;
      try {
        await this.#round();
      } catch (error) {
        this.#options.log.warn({ err: error }, 'cluster: slot assignment round failed; retrying on the next change or tick');
      }
    } while (this.#again && this.#leading && !this.#closed);
  }

  async #round(): Promise<void> {
    const { store, takeover, onMapWritten, log } = this.#options;
    for (let attempt = 0; attempt < ROUND_ATTEMPTS_MAX && this.#leading && !this.#closed; attempt++) {
      const map = await store.readMap();
      const { nodes } = await store.readNodes();
      const plan = planAssignment(map.owners, nodes, takeover, CLUSTER_MOVING_SLOTS_MAX);
      if (plan.changedSlots.length === 0) return;
      const written = await store.writeMap(plan.owners, map.revision, { absentNodeIds: plan.takenFromNodeIds, presentNodeIds: plan.givenToNodeIds });
      if (written !== undefined) {
        log.info({ revision: written.revision, changedSlots: plan.changedSlots.length, takenFrom: plan.takenFromNodeIds }, 'cluster: slot map updated');
        onMapWritten(written);
        return;
      }
    }
  }
}
