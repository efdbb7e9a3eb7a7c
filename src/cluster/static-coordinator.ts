/**
 * The coordinator of `cairn serve --workers N` without etcd (DESIGN.md "Scale-out", "One
 * machine, many cores"): the primary process holds a fixed slot map over its workers (rendezvous
 * assignment over their node ids) and sends it, with each worker's peer URL, over the IPC
 * channel node:cluster gives every worker. A worker owns its slots for as long as the primary
 * lives; a crashed worker is started again on its own data directory and gets the same slots back
 * (epoch + 1), so nothing moves and no lease is needed: the fence is the map alone.
 */
import type { Clock } from '../clock.ts';
import type { Coordinator, CoordinatorStatus, ListeningAddress, ReleaseHandler } from './coordinator.ts';
import { SlotTable, type NodeInfo, type SlotOwner } from './slot-table.ts';

/** A worker announces itself once it listens. */
export interface WorkerJoinMessage {
  cairn: 'worker-join';
  index: number;
  nodeId: string;
  /** Where the other workers forward to (its loopback peer listener). */
  advertiseUrl: string;
  /** The client URL it listens on (the shared port). */
  url: string;
  /** Its peer channel's socket, where the other workers send their forwarded appends. */
  peerSocketPath?: string;
}

/** The primary's map, sent to every worker after each change. */
export interface SlotMapMessage {
  cairn: 'slot-map';
  revision: number;
  owners: SlotOwner[];
  nodes: NodeInfo[];
}

/** The IPC channel of a node:cluster worker (`process.send` / `process.on('message')`). */
export interface WorkerChannel {
  send(message: WorkerJoinMessage): void;
  onMessage(handler: (message: unknown) => void): void;
}

export interface StaticCoordinatorOptions {
  index: number;
  nodeId: string;
  slotCount: number;
  clock: Clock;
  channel: WorkerChannel;
}

export function isSlotMapMessage(message: unknown): message is SlotMapMessage {
  return typeof message === 'object' && message !== null && (message as { cairn?: unknown }).cairn === 'slot-map';
}

export class StaticCoordinator implements Coordinator {
  readonly table: SlotTable;
  readonly #options: StaticCoordinatorOptions;
  #mapped: Promise<void> | undefined;

  constructor(options: StaticCoordinatorOptions) {
    this.#options = options;
    this.table = new SlotTable({ nodeId: options.nodeId, slotCount: options.slotCount, clock: options.clock, leaseSafeUntilMs: () => Infinity });
  }

  /** Announces this worker and resolves when the primary's first map has arrived. */
  start(listening: ListeningAddress): Promise<void> {
    this.#mapped ??= new Promise((resolve) => {
      const { channel } = this.#options;
      channel.onMessage((message) => {
        if (!isSlotMapMessage(message)) return;
        this.table.setNodes(message.nodes);
        this.table.setMap({ slotCount: this.#options.slotCount, owners: message.owners, revision: message.revision });
        resolve();
      });
      const { index, nodeId } = this.#options;
      channel.send({ cairn: 'worker-join', index, nodeId, ...listening });
    });
    return this.#mapped;
  }

  /** Slots never move in a static map: nothing is ever asked to be released. */
  setReleaseHandler(_handler: ReleaseHandler): void {}

  async leave(): Promise<void> {}

  status(): CoordinatorStatus {
    return { kind: 'static', connected: this.table.map.revision > 0, ownedSlots: this.table.ownedSlots().length, mapRevision: this.table.map.revision };
  }

  readonly incarnationResidue = undefined;

  /** Never needed: the static map has no takeovers. */
  async clearRecoverFrom(): Promise<void> {}

  async close(): Promise<void> {}
}
