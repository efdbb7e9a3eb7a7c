/**
 * Split brain in diskless mode (issues 14 and 15): a 3-node cluster over a real 3-member etcd with
 * `--durability object-store --cluster-takeover automatic`; the owner of a stream is paused
 * (SIGSTOP) past its lease with appends in flight and an unsealed tail (large segments: nothing is
 * sealed), the leader moves its slots and the new owner replays its log from the object store,
 * writes go on there, and the old owner is resumed. ./support/split-brain.ts checks it
 * acknowledged nothing for the slots it lost, and the append history (which includes the tail
 * that only the paused node's log held).
 */
import { describe, expect, it } from 'vitest';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { clusterCli, runSplitBrain } from './support/split-brain.ts';

const CLUSTER_NAME = `diskless-split-brain-${process.pid}`;

const running = useClusterUnderTest({
  size: 3,
  name: CLUSTER_NAME,
  extraArgs: ['--durability', 'object-store', '--cluster-takeover', 'automatic', '--cluster-lease-ttl-ms', '3000'],
});

describe('a diskless owner paused past its lease, its slots taken over automatically, then resumed', () => {
  it('acknowledges nothing for the slots it lost; the history checker passes', async () => {
    await runSplitBrain({
      cluster: running().cluster,
      sealFirst: false,
      // Once etcd expired its lease, the leader moves its slots; their owners replay its log.
      takeOver: async (victimNodeId) => {
        let status: { nodes: Array<{ nodeId: string; slotCount: number; recoveringSlotCount: number }> } = { nodes: [] };
        for (let attempt = 0; attempt < 240; attempt++) {
          const read = await clusterCli(running().etcd.endpoints, CLUSTER_NAME, 'status', '--json');
          try {
            if (read.code === 0) status = JSON.parse(read.output) as typeof status;
          } catch {
            // a warning printed with it: asked again
          }
          const victim = status.nodes.find((node) => node.nodeId === victimNodeId);
          if ((victim === undefined || victim.slotCount === 0) && status.nodes.every((node) => node.recoveringSlotCount === 0)) return;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        expect.fail(`the paused node's slots were not taken over: ${JSON.stringify(status)}`);
      },
    });
  }, 300_000);
});
