/**
 * Split brain (issue 14), local WAL: a 3-node cluster over a real 3-member etcd; the owner of a
 * stream is paused (SIGSTOP) past its lease with appends in flight, an operator reassigns its
 * slots (`cairn cluster reassign --accept-unsealed-loss`; the stream was wholly sealed before the
 * pause, so it loses nothing), then it is resumed: ./support/split-brain.ts checks it
 * acknowledged nothing for the slots it lost, and the append history.
 */
import { describe, expect, it } from 'vitest';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { clusterCli, runSplitBrain } from './support/split-brain.ts';

const LEASE_TTL_MS = 3_000;
const CLUSTER_NAME = `split-brain-${process.pid}`;

const running = useClusterUnderTest({
  size: 3,
  name: CLUSTER_NAME,
  extraArgs: ['--cluster-lease-ttl-ms', String(LEASE_TTL_MS), '--segment-size-bytes', '256', '--seal-idle-ms', '0'],
});

describe('an owner paused past its lease, its slots reassigned, then resumed', () => {
  it('acknowledges nothing for the slots it lost; the history checker passes', async () => {
    await runSplitBrain({
      cluster: running().cluster,
      sealFirst: true,
      // The operator reassigns once etcd has seen the lease expire (refused while the node is live).
      takeOver: async (victimNodeId) => {
        let reassigned = { code: -1, output: '' };
        for (let attempt = 0; attempt < 120; attempt++) {
          reassigned = await clusterCli(running().etcd.endpoints, CLUSTER_NAME, 'reassign', '--from', victimNodeId, '--accept-unsealed-loss');
          if (reassigned.code === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        expect(reassigned.code, reassigned.output).toBe(0);
      },
    });
  }, 300_000);
});
