/**
 * Cluster nodes for coordination tests: EtcdCoordinators in this process, each with its own etcd
 * client as separate machines would have, over a test etcd (./etcd.ts), with the waits the tests
 * share. Each test takes a fresh cluster name, so tests never see each other's keys.
 */
import { systemClock } from '../../src/clock.ts';
import { EtcdCoordinator, type EtcdCoordinatorOptions } from '../../src/cluster/etcd-coordinator.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';
import type { EtcdCluster } from './etcd.ts';

/** Enough that a join moves more than CLUSTER_MOVING_SLOTS_MAX slots: the move goes in batches. */
export const TEST_SLOT_COUNT = 1024;
/** 6 s: the fence opens for 4 s after a keep-alive is sent, ample for an etcd leader election (~1–2 s). */
export const TEST_LEASE_TTL_MS = 6_000;
const WAIT_MS = 60_000;

/** Polls `condition` every 50 ms until it holds. @throws Error naming `what` after `timeoutMs`. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether `coordinator`'s map is exactly `target` (one node id per slot), with no marks. */
export function ownersAre(coordinator: EtcdCoordinator, target: string[]): boolean {
  return coordinator.table.map.owners.every((owner, slot) => owner.nodeId === target[slot] && owner.movingTo === undefined);
}

/** A stream path whose slot `coordinator` owns. */
export function ownedPath(coordinator: EtcdCoordinator): string {
  for (let i = 0; ; i++) {
    const path = `stream-${i}`;
    if (coordinator.table.route(path).self) return path;
  }
}

/** Whether `coordinator` may acknowledge a write to `path` now. */
export function writable(coordinator: EtcdCoordinator, path: string): boolean {
  try {
    coordinator.table.writeEpoch(path);
    return true;
  } catch {
    return false;
  }
}

export class ClusterTestBed {
  readonly etcd: EtcdCluster;
  readonly #coordinators: EtcdCoordinator[] = [];
  #clusterCount = 0;

  constructor(etcd: EtcdCluster) {
    this.etcd = etcd;
  }

  /** A cluster name no other test uses. */
  freshCluster(): string {
    return `c${++this.#clusterCount}-${process.pid}`;
  }

  /** A coordinator (not started) for `nodeId` in `clusterName`; closed by `closeAll`. */
  node(clusterName: string, nodeId: string, extra: Partial<EtcdCoordinatorOptions> = {}): EtcdCoordinator {
    const coordinator = new EtcdCoordinator({
      etcd: { endpoints: this.etcd.endpoints },
      clusterName,
      nodeId,
      advertiseUrl: `http://${nodeId}.test:4437`,
      slotCount: TEST_SLOT_COUNT,
      leaseTtlMs: TEST_LEASE_TTL_MS,
      clock: systemClock,
      ...extra,
    });
    this.#coordinators.push(coordinator);
    return coordinator;
  }

  /** Waits until every one of `nodes` sees the rendezvous map over `ids` and exactly those nodes registered. */
  async settled(nodes: EtcdCoordinator[], ids: string[]): Promise<void> {
    const target = rendezvousAssignment(TEST_SLOT_COUNT, ids);
    await waitFor(`map = rendezvous over ${ids.join(',')}`, () => nodes.every((n) => ownersAre(n, target) && n.table.nodes.size === ids.length));
  }

  /** Closes every coordinator made here and brings every etcd member back (for afterEach). */
  async reset(): Promise<void> {
    await Promise.all(this.#coordinators.splice(0).map((c) => c.close()));
    for (let i = 0; i < this.etcd.members.length; i++) {
      this.etcd.signalMember(i, 'SIGCONT');
      await this.etcd.startMember(i);
    }
    for (let i = 0; i < this.etcd.members.length; i++) await this.etcd.waitHealthy(i);
  }
}
