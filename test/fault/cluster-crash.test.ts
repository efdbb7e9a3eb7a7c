/**
 * Kill -9 of cluster nodes under load (issue 14): three `cairn serve` nodes over a real 3-member
 * etcd and one object store, the load of ./support/kill-under-load.ts through a front that sends
 * each request to a random node, while random nodes are killed with SIGKILL and started again on
 * their data directories (the slot owner among them: its slots answer 503 until it is back, and
 * the clients retry). `CRASH_SEED` replays a run; `CRASH_CYCLES` sets the kills.
 */
import { describe, it } from 'vitest';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { envInteger } from './support/crash-cycles.ts';
import { Rng } from './support/crash-model.ts';
import { killRandomNode, runKillUnderLoad } from './support/kill-under-load.ts';

const SEED = envInteger('CRASH_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31);
const KILLS = envInteger('CRASH_CYCLES', 3, 1, 1000);
const running = useClusterUnderTest({
  size: 3,
  name: `crash-${process.pid}`,
  extraArgs: ['--cluster-lease-ttl-ms', '3000', '--segment-size-bytes', '4096', '--seal-idle-ms', '0', '--long-poll-timeout-ms', '2000'],
});

describe('a 3-node cluster with nodes killed under load', () => {
  it(`loses and duplicates nothing acknowledged (seed ${SEED}, ${KILLS} kills)`, async () => {
    const rng = new Rng(SEED);
    const { cluster } = running();
    const { nodes } = cluster;
    await runKillUnderLoad({
      base: `${cluster.url}/v1/stream/cluster-crash/`,
      rng,
      kills: KILLS,
      kill: async () => {
        const victim = await killRandomNode(nodes, rng);
        // Down a moment (its slots answer 503 meanwhile), then back on its own disk.
        await new Promise((resolve) => setTimeout(resolve, rng.int(100, 1000)));
        await victim.start(120_000);
      },
    });
  }, 600_000);
});
