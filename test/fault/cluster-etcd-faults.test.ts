/**
 * Faults under the etcd coordinator, with a real 3-member etcd (test/support/etcd.ts,
 * cluster-nodes.ts): a node cut off from etcd shuts its fence before etcd expires its lease and
 * registers again; one member killed (a follower, or the etcd leader) or paused changes nothing;
 * quorum lost shuts every fence, quorum back recovers without restarting anything. The only time
 * bounds asserted are the protocol's, with slack.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ClusterUnavailableError } from '../../src/cluster/errors.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';
import { ClusterTestBed, TEST_LEASE_TTL_MS, TEST_SLOT_COUNT, ownedPath, ownersAre, waitFor, writable } from '../support/cluster-nodes.ts';
import { etcdAvailable, isEtcdLeader, startEtcd, startTcpRelay } from '../support/etcd.ts';

const run = etcdAvailable();
let bed: ClusterTestBed;

describe.runIf(run)('etcd coordinator faults', () => {
  beforeAll(async () => {
    bed = new ClusterTestBed(await startEtcd(3));
  });
  afterEach(async () => {
    await bed.reset();
  });
  afterAll(async () => {
    await bed?.etcd.stop();
  });

  it('a node cut off from etcd refuses writes before etcd expires its lease, then registers again', async () => {
    const name = bed.freshCluster();
    const relay = await startTcpRelay(bed.etcd.endpoints[0]!);
    try {
      const a = bed.node(name, 'a');
      const b = bed.node(name, 'b', { etcd: { endpoints: [relay.url] } });
      await Promise.all([a.start(), b.start()]);
      await bed.settled([a, b], ['a', 'b']);
      const path = ownedPath(b);
      const epoch = b.table.writeEpoch(path);

      const watcher = new Etcd3({ hosts: bed.etcd.endpoints });
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
    const name = bed.freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => bed.node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await bed.settled(nodes, ['a', 'b', 'c']);
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
    const leaders = await Promise.all(bed.etcd.endpoints.map(isEtcdLeader));
    const follower = leaders.indexOf(false);
    await bed.etcd.stopMember(follower, 'SIGKILL');
    const poll = setInterval(writeAll, 20);
    await new Promise((resolve) => setTimeout(resolve, TEST_LEASE_TTL_MS * 1.5));
    clearInterval(poll);
    expect(refusals).toEqual([]);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);

    // A second member: no quorum. Every node refuses within the fence's bound (TTL − margin after
    // the last keep-alive, plus the old etcd leader's election timeout, plus slack).
    const killedAt = performance.now();
    await bed.etcd.stopMember((follower + 1) % 3, 'SIGKILL');
    await waitFor('every node refuses writes', () => nodes.every((n, i) => {
      try {
        n.table.writeEpoch(paths[i]!);
        return false;
      } catch (error) {
        return error instanceof ClusterUnavailableError;
      }
    }), TEST_LEASE_TTL_MS + 10_000);
    expect(performance.now() - killedAt).toBeLessThan(TEST_LEASE_TTL_MS + 10_000);
    expect(nodes.every((n) => !n.status().connected)).toBe(true);

    await bed.etcd.startMember(follower);
    await bed.etcd.startMember((follower + 1) % 3);
    await waitFor('every node writes again', () => nodes.every((n, i) => writable(n, paths[i]!)));
    // Nobody's slots moved.
    const target = rendezvousAssignment(TEST_SLOT_COUNT, ['a', 'b', 'c']);
    expect(nodes.every((n) => ownersAre(n, target))).toBe(true);
  });

  it('one etcd member paused (SIGSTOP: connections accepted, never answered) changes nothing', async () => {
    const name = bed.freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => bed.node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await bed.settled(nodes, ['a', 'b', 'c']);
    const paths = nodes.map(ownedPath);
    const revision = nodes[0]!.table.map.revision;
    const follower = (await Promise.all(bed.etcd.endpoints.map(isEtcdLeader))).indexOf(false);
    const refusals: unknown[] = [];
    bed.etcd.signalMember(follower, 'SIGSTOP');
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
      await new Promise((resolve) => setTimeout(resolve, TEST_LEASE_TTL_MS * 2));
    } finally {
      clearInterval(poll);
      bed.etcd.signalMember(follower, 'SIGCONT');
    }
    expect(refusals).toEqual([]);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);
  });

  it('the etcd leader member killed: no node loses its lease or a slot, writes continue', async () => {
    const name = bed.freshCluster();
    const nodes = ['a', 'b', 'c'].map((id) => bed.node(name, id));
    await Promise.all(nodes.map((n) => n.start()));
    await bed.settled(nodes, ['a', 'b', 'c']);
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
    const before = await leases(bed.etcd.endpoints);
    expect(before).toHaveLength(3);
    const leader = (await Promise.all(bed.etcd.endpoints.map(isEtcdLeader))).indexOf(true);
    expect(leader).toBeGreaterThanOrEqual(0);
    await bed.etcd.stopMember(leader, 'SIGKILL');
    await bed.etcd.waitHealthy((leader + 1) % 3);
    // Past a whole TTL: a lease not renewed across the election would have expired by now.
    await new Promise((resolve) => setTimeout(resolve, TEST_LEASE_TTL_MS * 1.5));
    await waitFor('every node writes', () => nodes.every((n, i) => writable(n, paths[i]!)));
    expect(await leases(bed.etcd.endpoints.filter((_, i) => i !== leader))).toEqual(before);
    expect(nodes.map((n) => n.table.map.revision)).toEqual([revision, revision, revision]);
  });

});
