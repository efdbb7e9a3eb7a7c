/**
 * EtcdCoordinator against a real 3-member etcd (test/support/etcd.ts, cluster-nodes.ts):
 * convergence to the rendezvous target, moves through `movingTo` and the release handler with
 * epoch + 1 exactly on moved slots (in batches), leave, automatic takeover, `cairn cluster
 * status|reassign`, a failed release, a duplicate node id, the cluster's identity. The fault
 * cases (etcd members lost or paused, a node cut off) are in test/fault/cluster-etcd-faults.test.ts.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reassignSlots, readClusterStatus, ClusterAdminError } from '../../src/cluster/etcd-admin.ts';
import type { EtcdCoordinator } from '../../src/cluster/etcd-coordinator.ts';
import { ClusterIdentityError } from '../../src/cluster/etcd-map-store.ts';
import { SlotNotOwnedError } from '../../src/cluster/errors.ts';
import type { SlotOwner } from '../../src/cluster/slot-table.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';
import { ClusterTestBed, TEST_SLOT_COUNT, ownedPath, waitFor } from '../support/cluster-nodes.ts';
import { etcdAvailable, startEtcd } from '../support/etcd.ts';

const run = etcdAvailable();
const execFileAsync = promisify(execFile);
const MAIN = path.resolve('src/cli/main.ts');
let bed: ClusterTestBed;

/** Runs `cairn cluster …` against the test etcd; resolves with its exit code and output. */
async function cairnCluster(clusterName: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [MAIN, 'cluster', ...args, '--cluster-etcd-endpoints', bed.etcd.endpoints.join(','), '--cluster-name', clusterName];
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, argv);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe.runIf(run)('EtcdCoordinator on a 3-member etcd', () => {
  beforeAll(async () => {
    bed = new ClusterTestBed(await startEtcd(3));
  });
  afterEach(async () => {
    await bed.reset();
  });
  afterAll(async () => {
    await bed?.etcd.stop();
  });

  it('converges to the rendezvous target, balanced, and routes to the live owners', async () => {
    const name = bed.freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => bed.node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await bed.settled(nodes, ['a', 'b', 'c']);
    for (const n of nodes) {
      const owned = n.table.ownedSlots().length;
      expect(owned).toBeGreaterThan(TEST_SLOT_COUNT / 3 - 60);
      expect(owned).toBeLessThan(TEST_SLOT_COUNT / 3 + 60);
      expect(n.status()).toMatchObject({ kind: 'etcd', connected: true, ownedSlots: owned });
    }
    expect(nodes.filter((n) => n.leading)).toHaveLength(1);
    // Each node id got its own index (its incarnation residue), allocated once.
    expect(new Set(nodes.map((n) => n.incarnationResidue))).toEqual(new Set([0, 1, 2]));
    const path = ownedPath(nodes[0]!);
    expect(nodes[0]!.table.writeEpoch(path)).toBeGreaterThan(0);
    expect(nodes[1]!.table.route(path)).toMatchObject({ self: false, url: 'http://a.test:4437' });
    expect(() => nodes[1]!.table.writeEpoch(path)).toThrow(SlotNotOwnedError);
  });

  it('a joining node takes only its slots, each released by its owner first, epoch + 1 exactly on them', async () => {
    const name = bed.freshCluster();
    const released = new Map<string, Set<number>>();
    const withHandler = (id: string): EtcdCoordinator => {
      const n = bed.node(name, id);
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
    await bed.settled([a, b], ['a', 'b']);
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
    await bed.settled([a, b, c], ['a', 'b', 'c']);

    const target = rendezvousAssignment(TEST_SLOT_COUNT, ['a', 'b', 'c']);
    const after = a.table.map.owners;
    for (let slot = 0; slot < TEST_SLOT_COUNT; slot++) {
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
    const name = bed.freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => bed.node(name, id)) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await bed.settled([a, b, c], ['a', 'b', 'c']);
    await c.leave();
    expect(c.table.ownedSlots()).toEqual([]);
    expect(c.status().connected).toBe(false);
    await bed.settled([a, b], ['a', 'b']);
  });

  it('with takeover automatic, a dead node\'s slots go to their targets at epoch + 1', async () => {
    const name = bed.freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => bed.node(name, id, { takeover: 'automatic' })) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await bed.settled([a, b, c], ['a', 'b', 'c']);
    const before = a.table.map.owners.map((owner) => ({ ...owner }));
    await c.close();
    await bed.settled([a, b], ['a', 'b']);
    a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (before[slot]!.nodeId === 'c' ? 1 : 0)));
    // Each slot taken names c's log to replay until its new owner clears that.
    const taken = before.flatMap((owner, slot) => (owner.nodeId === 'c' ? [slot] : []));
    for (const slot of taken) expect(a.table.map.owners[slot]?.recoverFrom).toEqual(['c']);
    await a.clearRecoverFrom(taken);
    await b.clearRecoverFrom(taken);
    // Seen by both through the watch, in its own time.
    for (const node of [a, b]) {
      await expect.poll(() => taken.filter((slot) => node.table.map.owners[slot]?.recoverFrom !== undefined).length, { timeout: 60_000 }).toBe(0);
    }
  });

  it('cluster status and reassign: a dead node keeps its slots until reassigned (refused while it is live)', async () => {
    const name = bed.freshCluster();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => bed.node(name, id)) as [EtcdCoordinator, EtcdCoordinator, EtcdCoordinator];
    await Promise.all([a, b, c].map((n) => n.start()));
    await bed.settled([a, b, c], ['a', 'b', 'c']);
    const admin = new Etcd3({ hosts: bed.etcd.endpoints });
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
      expect(status.slotCount).toBe(TEST_SLOT_COUNT);
      expect(status.nodes.find((n) => n.nodeId === 'c')).toMatchObject({ live: false, slotCount: before.filter((o) => o.nodeId === 'c').length });
      expect(['a', 'b']).toContain(status.leaderNodeId);

      expect((await cairnCluster(name, 'reassign', '--from', 'c')).code).toBe(2); // without --accept-unsealed-loss
      const moved = await cairnCluster(name, 'reassign', '--from', 'c', '--accept-unsealed-loss');
      expect(moved.stdout).toContain(`moved ${before.filter((o) => o.nodeId === 'c').length} slots of c`);
      await bed.settled([a, b], ['a', 'b']);
      a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (before[slot]!.nodeId === 'c' ? 1 : 0)));
      await expect(reassignSlots(admin, name, { fromNodeId: 'c' })).rejects.toThrow(/owns no slot/);
    } finally {
      admin.close();
    }
  });

  it('a failed release is retried; the slots then move once, epoch + 1', async () => {
    const name = bed.freshCluster();
    const a = bed.node(name, 'a');
    let calls = 0;
    a.setReleaseHandler(async () => {
      calls++;
      if (calls === 1) throw new Error('object store down');
    });
    await a.start();
    await bed.settled([a], ['a']);
    const before = a.table.map.owners.map((owner) => ({ ...owner }));
    const b = bed.node(name, 'b');
    await b.start();
    await bed.settled([a, b], ['a', 'b']);
    expect(calls).toBeGreaterThanOrEqual(2);
    const target = rendezvousAssignment(TEST_SLOT_COUNT, ['a', 'b']);
    a.table.map.owners.forEach((owner, slot) => expect(owner.epoch).toBe(before[slot]!.epoch + (target[slot] === 'b' ? 1 : 0)));
  });

  it('a second process with the same node id waits until the first one\'s registration ends', async () => {
    const name = bed.freshCluster();
    const first = bed.node(name, 'a');
    await first.start();
    await bed.settled([first], ['a']);
    const second = bed.node(name, 'a');
    let secondStarted = false;
    const starting = second.start().then(() => (secondStarted = true));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(secondStarted).toBe(false);
    expect(second.status().connected).toBe(false);
    await first.close();
    await starting;
    expect(second.incarnationResidue).toBe(first.incarnationResidue);
    await bed.settled([second], ['a']);
    expect(second.table.writeEpoch(ownedPath(second))).toBe(1);
  });

  it('refuses to start with another slot count than the cluster was created with', async () => {
    const name = bed.freshCluster();
    await bed.node(name, 'a').start();
    await expect(bed.node(name, 'b', { slotCount: TEST_SLOT_COUNT * 2 }).start()).rejects.toThrow(ClusterIdentityError);
  });
});
