/**
 * EtcdCoordinator against a real 3-member etcd (test/support/etcd.ts): coordinators in this
 * process, each with its own client, as separate nodes would be. Convergence to the rendezvous
 * target, moves through `movingTo` and the release handler with epoch + 1 exactly on moved slots,
 * leave, the fence on lost keep-alives and on quorum loss, one member lost, takeover, and the
 * operator's reassign. Every wait is bounded generously; the only time bounds asserted are the
 * protocol's (the fence shuts before etcd expires the lease).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { reassignSlots, readClusterStatus, ClusterAdminError } from '../../src/cluster/etcd-admin.ts';
import { EtcdCoordinator, type EtcdCoordinatorOptions } from '../../src/cluster/etcd-coordinator.ts';
import { ClusterIdentityError } from '../../src/cluster/etcd-map-store.ts';
import { ClusterUnavailableError, SlotNotOwnedError } from '../../src/cluster/errors.ts';
import type { SlotOwner } from '../../src/cluster/slot-table.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';
import { etcdAvailable, isEtcdLeader, startEtcd, startTcpRelay, type EtcdCluster } from '../support/etcd.ts';

/** Enough that a join moves more than CLUSTER_MOVING_SLOTS_MAX slots: the move goes in batches. */
const SLOTS = 1024;
/** 6 s: the fence opens for 4 s after a keep-alive is sent, ample for an etcd leader election (~1–2 s). */
const TTL_MS = 6_000;
const WAIT_MS = 60_000;

const run = etcdAvailable();
const execFileAsync = promisify(execFile);
const MAIN = path.resolve('src/cli/main.ts');

/** Runs `cairn cluster …` against the test etcd; resolves with its exit code and output. */
async function cairnCluster(clusterName: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [MAIN, 'cluster', ...args, '--cluster-etcd-endpoints', etcd.endpoints.join(','), '--cluster-name', clusterName];
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, argv);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}
let etcd: EtcdCluster;
let clusterCounter = 0;
const coordinators: EtcdCoordinator[] = [];

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function node(clusterName: string, nodeId: string, extra: Partial<EtcdCoordinatorOptions> = {}): EtcdCoordinator {
  const coordinator = new EtcdCoordinator({
    etcd: { endpoints: etcd.endpoints },
    clusterName,
    nodeId,
    advertiseUrl: `http://${nodeId}.test:4437`,
    slotCount: SLOTS,
    leaseTtlMs: TTL_MS,
    clock: systemClock,
    ...extra,
  });
  coordinators.push(coordinator);
  return coordinator;
}

function freshCluster(): string {
  return `c${++clusterCounter}-${process.pid}`;
}

function ownersAre(coordinator: EtcdCoordinator, target: string[]): boolean {
  return coordinator.table.map.owners.every((owner, slot) => owner.nodeId === target[slot] && owner.movingTo === undefined);
}

async function settled(nodes: EtcdCoordinator[], ids: string[]): Promise<void> {
  const target = rendezvousAssignment(SLOTS, ids);
  await waitFor(`map = rendezvous over ${ids.join(',')}`, () => nodes.every((n) => ownersAre(n, target) && n.table.nodes.size === ids.length));
}

/** A stream path whose slot `coordinator` owns. */
function ownedPath(coordinator: EtcdCoordinator): string {
  for (let i = 0; ; i++) {
    const path = `stream-${i}`;
    if (coordinator.table.route(path).self) return path;
  }
}

describe.runIf(run)('EtcdCoordinator on a 3-member etcd', () => {
  beforeAll(async () => {
    etcd = await startEtcd(3);
  });
  afterEach(async () => {
    await Promise.all(coordinators.splice(0).map((c) => c.close()));
    for (let i = 0; i < 3; i++) await etcd.startMember(i);
    for (let i = 0; i < 3; i++) await etcd.waitHealthy(i);
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  it('converges to the rendezvous target, balanced, and routes to the live owners', async () => {
    const name = freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await settled(nodes, ['a', 'b', 'c']);
    for (const n of nodes) {
      const owned = n.table.ownedSlots().length;
      expect(owned).toBeGreaterThan(SLOTS / 3 - 60);
      expect(owned).toBeLessThan(SLOTS / 3 + 60);
      expect(n.status()).toMatchObject({ kind: 'etcd', connected: true, ownedSlots: owned });
    }
    expect(nodes.filter((n) => n.leading)).toHaveLength(1);
    const path = ownedPath(nodes[0]!);
    expect(nodes[0]!.table.writeEpoch(path)).toBeGreaterThan(0);
    expect(nodes[1]!.table.route(path)).toMatchObject({ self: false, url: 'http://a.test:4437' });
    expect(() => nodes[1]!.table.writeEpoch(path)).toThrow(SlotNotOwnedError);
  });

  it('a joining node takes only its slots, each released by its owner first, epoch + 1 exactly on them', async () => {
    const name = freshCluster();
    const released = new Map<string, Set<number>>();
    const withHandler = (id: string): EtcdCoordinator => {
      const n = node(name, id);
      released.set(id, new Set());
      n.setReleaseHandler(async (slots) => {
        for (const slot of slots) {
          // The fence already refuses the slot while it is released.
          expect(n.table.map.owners[slot]).toMatchObject({ nodeId: id });
          expect(n.table.map.owners[slot]!.movingTo).toBeDefined();
          released.get(id)!.add(slot);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      });
      return n;
    };
    const [a, b] = [withHandler('a'), withHandler('b')];
    await Promise.all([a.start(), b.start()]);
    await settled([a, b], ['a', 'b']);
    const before: SlotOwner[] = a.table.map.owners.map((owner) => ({ ...owner }));

    const c = withHandler('c');
    const handedOverBeforeRelease: number[] = [];
    c.table.onChange(() => {
      for (const slot of c.table.ownedSlots()) {
        const from = before[slot]!.nodeId;
        if (from !== 'c' && !released.get(from)!.has(slot)) handedOverBeforeRelease.push(slot);
      }
    });
    await c.start();
    await settled([a, b, c], ['a', 'b', 'c']);

    const target = rendezvousAssignment(SLOTS, ['a', 'b', 'c']);
    const after = a.table.map.owners;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (target[slot] === 'c') {
        expect(after[slot]).toEqual({ nodeId: 'c', epoch: before[slot]!.epoch + 1 });
        expect(released.get(before[slot]!.nodeId)!.has(slot)).toBe(true);
      } else {
        expect(after[slot]).toEqual(before[slot]);
      }
    }
    expect(handedOverBeforeRelease).toEqual([]);
    expect(released.get('c')!.size).toBe(0);
  });

  it('leave() empties the node, which then shows no more', async () => {
    const name = freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(name, id)) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await settled([a, b, c], ['a', 'b', 'c']);
    await c.leave();
    expect(c.table.ownedSlots()).toEqual([]);
    expect(c.status().connected).toBe(false);
    await settled([a, b], ['a', 'b']);
  });

  it('a node cut off from etcd refuses writes before etcd expires its lease, then registers again', async () => {
    const name = freshCluster();
    const relay = await startTcpRelay(etcd.endpoints[0]!);
    try {
      const a = node(name, 'a');
      const b = node(name, 'b', { etcd: { endpoints: [relay.url] } });
      await Promise.all([a.start(), b.start()]);
      await settled([a, b], ['a', 'b']);
      const path = ownedPath(b);
      const epoch = b.table.writeEpoch(path);

      const watcher = new Etcd3({ hosts: etcd.endpoints });
      let expiredAt: number | undefined;
      const watch = await watcher.watch().key(`/${name}/nodes/b`).create();
      watch.on('delete', () => (expiredAt ??= performance.now()));
      let refusedAt: number | undefined;
      const poll = setInterval(() => {
        try {
          b.table.writeEpoch(path);
        } catch (error) {
          expect(error).toBeInstanceOf(ClusterUnavailableError);
          refusedAt ??= performance.now();
        }
      }, 10);
      try {
        relay.cut();
        await waitFor('etcd to expire the lease of b', () => expiredAt !== undefined);
        expect(refusedAt).toBeDefined();
        expect(refusedAt!).toBeLessThan(expiredAt!);
        expect(b.status().connected).toBe(false);
        // Manual takeover: the dead node keeps its slots; peers see no URL for it.
        await waitFor('a sees b gone', () => !a.table.nodes.has('b'));
        expect(a.table.route(path)).toMatchObject({ self: false, url: undefined, owner: { nodeId: 'b', epoch } });
      } finally {
        clearInterval(poll);
        await watch.cancel();
        watcher.close();
      }
      relay.restore();
      await waitFor('b registered again and writing', () => {
        try {
          return b.table.writeEpoch(path) === epoch;
        } catch {
          return false;
        }
      });
      await waitFor('a sees b again', () => a.table.route(path).url === 'http://b.test:4437');
    } finally {
      await relay.close();
    }
  });

  it('one etcd member killed changes nothing; quorum lost refuses writes, quorum back recovers without restart', async () => {
    const name = freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await settled(nodes, ['a', 'b', 'c']);
    const paths = nodes.map(ownedPath);
    const revision = nodes[0]!.table.map.revision;
    const refusals: unknown[] = [];
    const writeAll = (): void => {
      nodes.forEach((n, i) => {
        try {
          n.table.writeEpoch(paths[i]!);
        } catch (error) {
          refusals.push(error);
        }
      });
    };

    // A follower: no election, so not even a pause.
    const leaders = await Promise.all(etcd.endpoints.map(isEtcdLeader));
    const follower = leaders.indexOf(false);
    await etcd.stopMember(follower, 'SIGKILL');
    const poll = setInterval(writeAll, 20);
    await new Promise((resolve) => setTimeout(resolve, TTL_MS * 1.5));
    clearInterval(poll);
    expect(refusals).toEqual([]);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);

    // A second member: no quorum. Every node refuses within the fence's bound (TTL − margin after
    // the last keep-alive, plus the old etcd leader's election timeout, plus slack).
    const killedAt = performance.now();
    await etcd.stopMember((follower + 1) % 3, 'SIGKILL');
    await waitFor('every node refuses writes', () => nodes.every((n, i) => {
      try {
        n.table.writeEpoch(paths[i]!);
        return false;
      } catch (error) {
        return error instanceof ClusterUnavailableError;
      }
    }), TTL_MS + 10_000);
    expect(performance.now() - killedAt).toBeLessThan(TTL_MS + 10_000);
    expect(nodes.every((n) => !n.status().connected)).toBe(true);

    await etcd.startMember(follower);
    await etcd.startMember((follower + 1) % 3);
    await waitFor('every node writes again', () => nodes.every((n, i) => {
      try {
        n.table.writeEpoch(paths[i]!);
        return true;
      } catch {
        return false;
      }
    }));
    // Nobody's slots moved.
    const target = rendezvousAssignment(SLOTS, ['a', 'b', 'c']);
    expect(nodes.every((n) => ownersAre(n, target))).toBe(true);
  });

  it('one etcd member paused (SIGSTOP: connections accepted, never answered) changes nothing', async () => {
    const name = freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await settled(nodes, ['a', 'b', 'c']);
    const paths = nodes.map(ownedPath);
    const revision = nodes[0]!.table.map.revision;
    const follower = (await Promise.all(etcd.endpoints.map(isEtcdLeader))).indexOf(false);
    const refusals: unknown[] = [];
    etcd.signalMember(follower, 'SIGSTOP');
    const poll = setInterval(() => {
      nodes.forEach((n, i) => {
        try {
          n.table.writeEpoch(paths[i]!);
        } catch (error) {
          refusals.push(error);
        }
      });
    }, 20);
    try {
      await new Promise((resolve) => setTimeout(resolve, TTL_MS * 2));
    } finally {
      clearInterval(poll);
      etcd.signalMember(follower, 'SIGCONT');
    }
    expect(refusals).toEqual([]);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);
  });

  it('the etcd leader member killed: no node loses its lease or a slot, writes continue', async () => {
    const name = freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await settled(nodes, ['a', 'b', 'c']);
    const paths = nodes.map(ownedPath);
    const revision = nodes[0]!.table.map.revision;
    const leases = async (hosts: string[]): Promise<string[]> => {
      const admin = new Etcd3({ hosts });
      try {
        const response = await admin.getAll().prefix(`/${name}/nodes/`).exec();
        return response.kvs.map((kv) => `${kv.key.toString()}=${kv.lease}`).sort();
      } finally {
        admin.close();
      }
    };
    const before = await leases(etcd.endpoints);
    expect(before).toHaveLength(3);
    const leader = (await Promise.all(etcd.endpoints.map(isEtcdLeader))).indexOf(true);
    expect(leader).toBeGreaterThanOrEqual(0);
    await etcd.stopMember(leader, 'SIGKILL');
    await etcd.waitHealthy((leader + 1) % 3);
    // Past a whole TTL: a lease not renewed across the election would have expired by now.
    await new Promise((resolve) => setTimeout(resolve, TTL_MS * 1.5));
    await waitFor('every node writes', () => nodes.every((n, i) => {
      try {
        n.table.writeEpoch(paths[i]!);
        return true;
      } catch {
        return false;
      }
    }));
    expect(await leases(etcd.endpoints.filter((_, i) => i !== leader))).toEqual(before);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);
  });

  it('with takeover automatic, a dead node\'s slots go to their targets at epoch + 1', async () => {
    const name = freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(name, id, { takeover: 'automatic' })) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await settled([a, b, c], ['a', 'b', 'c']);
    const before = a.table.map.owners.map((owner) => ({ ...owner }));
    await c.close();
    await settled([a, b], ['a', 'b']);
    a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (before[slot]!.nodeId === 'c' ? 1 : 0)));
  });

  it('cluster status and reassign: a dead node keeps its slots until reassigned (refused while it is live)', async () => {
    const name = freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => node(name, id)) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await settled([a, b, c], ['a', 'b', 'c']);
    const admin = new Etcd3({ hosts: etcd.endpoints });
    try {
      await expect(reassignSlots(admin, name, { fromNodeId: 'c' })).rejects.toThrow(ClusterAdminError);
      const refused = await cairnCluster(name, 'reassign', '--from', 'c', '--accept-unsealed-loss');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/node c is live/);
      const before = a.table.map.owners.map((owner) => ({ ...owner }));
      await c.close();
      await waitFor('c unregistered', () => !a.table.nodes.has('c') && !b.table.nodes.has('c'));
      const status = await readClusterStatus(admin, name);
      const printed = await cairnCluster(name, 'status', '--json');
      expect(JSON.parse(printed.stdout)).toEqual(status);
      expect((await cairnCluster(name, 'status')).stdout).toMatch(/^c\s+NO\s+no\s+\d+/m);
      expect(status.slotCount).toBe(SLOTS);
      expect(status.nodes.find((n) => n.nodeId === 'c')).toMatchObject({ live: false, slotCount: before.filter((o) => o.nodeId === 'c').length });
      expect(['a', 'b']).toContain(status.leaderNodeId);

      expect((await cairnCluster(name, 'reassign', '--from', 'c')).code).toBe(2); // without --accept-unsealed-loss
      const moved = await cairnCluster(name, 'reassign', '--from', 'c', '--accept-unsealed-loss');
      expect(moved.stdout).toContain(`moved ${before.filter((o) => o.nodeId === 'c').length} slots of c`);
      await settled([a, b], ['a', 'b']);
      a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (before[slot]!.nodeId === 'c' ? 1 : 0)));
      await expect(reassignSlots(admin, name, { fromNodeId: 'c' })).rejects.toThrow(/owns no slot/);
    } finally {
      admin.close();
    }
  });

  it('a failed release is retried; the slots then move once, epoch + 1', async () => {
    const name = freshCluster();
    const a = node(name, 'a');
    let calls = 0;
    a.setReleaseHandler(async () => {
      calls++;
      if (calls === 1) throw new Error('object store down');
    });
    await a.start();
    await settled([a], ['a']);
    const before = a.table.map.owners.map((owner) => ({ ...owner }));
    const b = node(name, 'b');
    await b.start();
    await settled([a, b], ['a', 'b']);
    expect(calls).toBeGreaterThanOrEqual(2);
    const target = rendezvousAssignment(SLOTS, ['a', 'b']);
    a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (target[slot] === 'b' ? 1 : 0)));
  });

  it('a second process with the same node id waits until the first one\'s registration ends', async () => {
    const name = freshCluster();
    const first = node(name, 'a');
    await first.start();
    await settled([first], ['a']);
    const second = node(name, 'a');
    let secondStarted = false;
    const starting = second.start().then(() => (secondStarted = true));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(secondStarted).toBe(false);
    expect(second.status().connected).toBe(false);
    await first.close();
    await starting;
    await settled([second], ['a']);
    expect(second.table.writeEpoch(ownedPath(second))).toBe(1);
  });

  it('refuses to start with another slot count than the cluster was created with', async () => {
    const name = freshCluster();
    await node(name, 'a').start();
    await expect(node(name, 'b', { slotCount: SLOTS * 2 }).start()).rejects.toThrow(ClusterIdentityError);
  });
});
