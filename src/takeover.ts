/**
 * Diskless takeover (docs/cluster.md "Diskless takeover"; issue: automatic takeover needs
 * diskless durability): when the slot map gives this node slots whose owner is dead (its lease
 * expired; the leader moved them with `--cluster-takeover automatic`, or an operator with
 * `cairn cluster reassign`), the dead node's acknowledged but unsealed appends are in ITS
 * write-ahead log chain in the object store. This node:
 *
 * 1. marks the slots recovering, synchronously in the map listener: their writes, stores and
 *    lookups answer 503 + Retry-After until step 4 (a lookup now would serve the sealed history
 *    without the unsealed tail, and install it);
 * 2. reads the dead node's chain from its newest checkpoint on, fencing its generations (a paused
 *    process acknowledges nothing more: object-wal-recovery.ts), into a scratch registry;
 * 3. adopts the streams whose host slot it took, as durable, into its own registry;
 * 4. stores a checkpoint of its own, so its own chain holds them, and only then ends recovery.
 * A failed attempt (the store unreachable) is retried with a growing pause, the slots staying
 * recovering. Moves a live node hands over itself (it seals first) are not takeovers.
 */
import type { Clock } from './clock.ts';
import type { SlotMap, SlotTable } from './cluster/slot-table.ts';
import type { ObjectStore } from './object-store/index.ts';
import type { Logger } from 'pino';
import { snapshotWhere, StreamRegistry, type RegistrySnapshot } from './stream/registry.ts';
import type { StreamRecord } from './stream/records.ts';
import { isSubscriptionRecord } from './subscriptions/index.ts';
import { readChainForTakeover, storedChainNodeId } from './wal/index.ts';

/** Longest pause between attempts to recover a takeover, ms. */
const TAKEOVER_RETRY_MS_MAX = 10_000;

export interface DisklessTakeoverOptions {
  store: ObjectStore;
  registry: StreamRegistry;
  table: SlotTable;
  clock: Clock;
  logger: Logger;
  /** Stores a checkpoint that includes every stream adopted before the call (the server's, after any running one). */
  checkpointAfter: () => Promise<void>;
}

export class DisklessTakeover {
  readonly #o: DisklessTakeoverOptions;
  #closed = false;
  readonly #running = new Set<Promise<void>>();

  constructor(options: DisklessTakeoverOptions) {
    this.#o = options;
  }

  /** The slot table's change listener: starts a recovery for each dead node slots were taken from. */
  onMapChange(previous: SlotMap): void {
    const { table } = this.#o;
    const self = table.nodeId;
    const owners = table.map.owners;
    const takenFrom = new Map<string, number[]>();
    previous.owners.forEach((before, slot) => {
      if (owners[slot]?.nodeId !== self || before.nodeId === '' || before.nodeId === self || before.movingTo === self) return;
      // A live node hands its slots over itself, after sealing them: nothing to recover.
      if (table.nodes.has(before.nodeId)) return;
      let slots = takenFrom.get(before.nodeId);
      if (slots === undefined) takenFrom.set(before.nodeId, (slots = []));
      slots.push(slot);
    });
    for (const [fromNodeId, slots] of takenFrom) {
      table.markRecovering(slots, fromNodeId);
      const run = this.#recover(fromNodeId, slots);
      this.#running.add(run);
      void run.finally(() => this.#running.delete(run));
    }
  }

  /** Stops retrying; waits for attempts in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
  }

  async #recover(fromNodeId: string, slots: number[]): Promise<void> {
    const { table, registry, logger, clock } = this.#o;
    const startedMs = clock.monotonicMs();
    for (let attempt = 1; !this.#closed; attempt++) {
      try {
        const taken = new Set(slots);
        const state = await this.#stateOf(fromNodeId);
        // Only what this node still owns (the map may have moved on meanwhile).
        const mine = snapshotWhere(state.snapshot, (hostPath) => taken.has(table.slotOf(hostPath)) && table.route(hostPath).self);
        // The dead node's own streams name their objects by its id, not this node's.
        const streams = mine.streams.map((s) => (s.objectNodeId === undefined ? { ...s, objectNodeId: state.objectNodeId } : s));
        const adopted = registry.adopt({ ...mine, streams });
        await this.#o.checkpointAfter();
        table.recovered(slots);
        const unsealedBytes = adopted.reduce((sum, stream) => sum + stream.tailOffset - stream.sealedOffset, 0);
        logger.info(
          { fromNodeId, slots: slots.length, streams: adopted.length, unsealedBytes, durationMs: Math.round(clock.monotonicMs() - startedMs) },
          "slots taken over: the dead node's unsealed appends recovered from its write-ahead log",
        );
        return;
      } catch (error) {
        const retryMs = Math.min(1_000 * attempt, TAKEOVER_RETRY_MS_MAX);
        logger.warn({ err: error, fromNodeId, slots: slots.length, attempt, retryMs }, 'taking over slots failed; their requests answer 503 until it succeeds');
        await clock.sleep(retryMs);
      }
    }
  }

  /**
   * The registry state `fromNodeId`'s chain holds (its checkpoint plus the records after it), and
   * the node id its objects are named by.
   */
  async #stateOf(fromNodeId: string): Promise<{ snapshot: RegistrySnapshot; objectNodeId: string }> {
    const objectNodeId = await storedChainNodeId(this.#o.store, fromNodeId);
    if (objectNodeId === undefined) throw new Error(`node ${fromNodeId} has no write-ahead log chain in the object store (was it diskless?)`);
    const read = await readChainForTakeover(this.#o.store, fromNodeId);
    const scratch = new StreamRegistry({
      log: {
        append: () => {
          throw new Error('a takeover replay never writes');
        },
      },
      clock: this.#o.clock,
    });
    if (read.checkpoint !== undefined) scratch.restore(read.checkpoint as RegistrySnapshot);
    for await (const record of read.replay()) {
      if (!isSubscriptionRecord(record)) scratch.apply(record as StreamRecord);
    }
    return { snapshot: scratch.snapshot(), objectNodeId };
  }
}
