/**
 * Diskless takeover (docs/cluster.md "Diskless takeover"): with `--cluster-takeover automatic`
 * the leader moves a dead node's slots (its lease expired) to live nodes, naming the dead node in
 * each slot's `recoverFrom`; its acknowledged but unsealed appends are in ITS write-ahead log
 * chain in the object store. The new owner, for every slot it owns that carries `recoverFrom`:
 *
 * 1. marks the slot recovering, synchronously in the map listener: its writes, stores and lookups
 *    answer 503 + Retry-After until step 5 (a lookup now would serve the sealed history without
 *    the unsealed tail, and install it);
 * 2. reads each chain named (newest first) from its newest checkpoint on, fencing its generations
 *    (a paused process acknowledges nothing more: object-wal-recovery.ts), into a scratch registry;
 * 3. adopts the streams of the slot, as durable, into its own registry (a path adopted from a
 *    newer chain is not taken again from an older one);
 * 4. stores a checkpoint of its own, so that its own chain holds them;
 * 5. clears `recoverFrom` in the map (an etcd transaction), and only then ends recovery.
 *
 * The node's own chain, when named (it came back and got the slot again), is not read: its start
 * replayed it, and a read would fence its own generation.
 *
 * Level-triggered on the map: a taker that dies before step 5 leaves `recoverFrom` in place (it
 * acknowledged nothing for the slot), the next takeover appends the taker to it, and the next
 * owner reads every chain named. A failed attempt (the store or etcd unreachable) is retried
 * with a growing pause, the slots staying recovering.
 */
import type { Clock } from './clock.ts';
import type { SlotTable } from './cluster/slot-table.ts';
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
  /** Clears `recoverFrom` of the slots this node owns in the map (the coordinator's transaction). */
  clearRecoverFrom: (slots: readonly number[]) => Promise<void>;
}

export class DisklessTakeover {
  readonly #o: DisklessTakeoverOptions;
  #closed = false;
  /** Slots with a recovery running. */
  readonly #active = new Set<number>();
  readonly #running = new Set<Promise<void>>();

  constructor(options: DisklessTakeoverOptions) {
    this.#o = options;
  }

  /** The slot table's change listener: starts a recovery for owned slots that carry `recoverFrom`, grouped by its chains. */
  onMapChange(): void {
    const { table } = this.#o;
    const groups = new Map<string, { from: readonly string[]; slots: number[] }>();
    table.map.owners.forEach((owner, slot) => {
      if (owner.nodeId !== table.nodeId || owner.recoverFrom === undefined || this.#active.has(slot)) return;
      const key = owner.recoverFrom.join('\n');
      let group = groups.get(key);
      if (group === undefined) groups.set(key, (group = { from: owner.recoverFrom, slots: [] }));
      group.slots.push(slot);
    });
    for (const { from, slots } of groups.values()) {
      for (const slot of slots) this.#active.add(slot);
      table.markRecovering(slots, from.join(', '));
      const run = this.#recover(from, slots).finally(() => {
        for (const slot of slots) this.#active.delete(slot);
        table.recovered(slots);
      });
      this.#running.add(run);
      void run.finally(() => this.#running.delete(run));
    }
  }

  /** Stops retrying; waits for attempts in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#running]);
  }

  async #recover(from: readonly string[], slots: number[]): Promise<void> {
    const { table, registry, logger, clock } = this.#o;
    const startedMs = clock.monotonicMs();
    for (let attempt = 1; !this.#closed; attempt++) {
      // Only what this node still owns with the same chains to read (the map may have moved on).
      const pending = slots.filter((slot) => {
        const owner = table.map.owners[slot];
        return owner?.nodeId === table.nodeId && owner.recoverFrom?.join('\n') === from.join('\n');
      });
      if (pending.length === 0) return;
      try {
        const taken = new Set(pending);
        const adopted = [];
        for (const fromNodeId of [...from].reverse()) {
          // This node's own chain (it died, came back, and got the slot again): its start replayed
          // it and kept those streams; reading it now would fence this very process.
          if (fromNodeId === table.nodeId) continue;
          const state = await this.#stateOf(fromNodeId);
          if (state === undefined) continue;
          const mine = snapshotWhere(state.snapshot, (hostPath) => taken.has(table.slotOf(hostPath)));
          // The dead node's own streams name their objects by its id, not this node's.
          const streams = mine.streams.map((s) => (s.objectNodeId === undefined ? { ...s, objectNodeId: state.objectNodeId } : s));
          adopted.push(...registry.adopt({ ...mine, streams }));
        }
        await this.#o.checkpointAfter();
        await this.#o.clearRecoverFrom(pending);
        const unsealedBytes = adopted.reduce((sum, stream) => sum + stream.tailOffset - stream.sealedOffset, 0);
        logger.info(
          { from, slots: pending.length, streams: adopted.length, unsealedBytes, durationMs: Math.round(clock.monotonicMs() - startedMs) },
          "slots taken over: the dead node's unsealed appends recovered from its write-ahead log",
        );
        return;
      } catch (error) {
        const retryMs = Math.min(1_000 * attempt, TAKEOVER_RETRY_MS_MAX);
        logger.warn({ err: error, from, slots: pending.length, attempt, retryMs }, 'taking over slots failed; their requests answer 503 until it succeeds');
        await clock.sleep(retryMs);
      }
    }
  }

  /**
   * The registry state `fromNodeId`'s chain holds (its checkpoint plus the records after it), and
   * the node id its objects are named by; undefined when it has no chain (it never ran diskless,
   * so it holds nothing to recover).
   */
  async #stateOf(fromNodeId: string): Promise<{ snapshot: RegistrySnapshot; objectNodeId: string } | undefined> {
    const objectNodeId = await storedChainNodeId(this.#o.store, fromNodeId);
    if (objectNodeId === undefined) {
      this.#o.logger.warn({ fromNodeId }, 'taking over slots: the dead node has no write-ahead log chain in the object store (it never ran diskless); nothing to replay');
      return undefined;
    }
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
