/**
 * Graceful scale from 1 to 3 nodes and back to 1 under load (issue 14): one `cairn serve` node over
 * a real 3-member etcd, then a second and a third join (slots move to them, sealed and handed over),
 * then they leave with SIGTERM (their slots move first), while the load of
 * ./support/kill-under-load.ts runs through a front that skips nodes not running. No client sees
 * an error other than retried 503s (the producers' retrying fetch reports none), and nothing
 * acknowledged is lost or duplicated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClusterUnderTest, type ClusterUnderTest } from '../support/cluster-front.ts';
import { startEtcd, type EtcdCluster } from '../support/etcd.ts';
import { Rng } from './support/crash-model.ts';
import { runKillUnderLoad } from './support/kill-under-load.ts';

const SEED = Math.floor(Math.random() * 2 ** 31);
let etcd: EtcdCluster | undefined;
let cluster: ClusterUnderTest | undefined;

beforeAll(async () => {
  etcd = await startEtcd(3);
  cluster = await startClusterUnderTest(etcd, {
    size: 3,
    initial: 1,
    name: `scale-${process.pid}`,
    extraArgs: ['--cluster-lease-ttl-ms', '3000', '--segment-size-bytes', '4096', '--seal-idle-ms', '0', '--long-poll-timeout-ms', '2000'],
  });
  await cluster.converged();
}, 300_000);

afterAll(async () => {
  await cluster?.stop();
  await etcd?.stop();
}, 120_000);

describe('a cluster scaled from 1 to 3 nodes and back to 1 under load', () => {
  it(`loses nothing acknowledged and shows clients only retried 503s (seed ${SEED})`, async () => {
    const { nodes } = cluster as ClusterUnderTest;
    const steps = [
      () => nodes[1]!.start(120_000),
      () => nodes[2]!.start(120_000),
      async () => {
        nodes[2]!.signal('SIGTERM');
        await nodes[2]!.waitExit();
      },
      async () => {
        nodes[1]!.signal('SIGTERM');
        await nodes[1]!.waitExit();
      },
    ];
    let step = 0;
    const load = runKillUnderLoad({
      base: `${(cluster as ClusterUnderTest).url}/v1/stream/cluster-scale/`,
      rng: new Rng(SEED),
      kills: steps.length,
      kill: async () => {
        await steps[step++]!();
        await (cluster as ClusterUnderTest).converged();
      },
    });
    await load.catch((error: unknown) => {
      for (const [i, node] of nodes.entries()) process.stderr.write(`--- node ${i + 1} log tail ---\n${node.stderrTail}\n`);
      throw error;
    });
    // Graceful stops: each leaving node exited 0 after handing its slots over.
    expect(nodes[2]!.lastExit?.code).toBe(0);
    expect(nodes[1]!.lastExit?.code).toBe(0);
  }, 600_000);
});
