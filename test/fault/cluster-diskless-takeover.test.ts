/**
 * Diskless takeover (issue 15): a 3-node cluster over a real 3-member etcd with
 * `--durability object-store --cluster-takeover automatic`, the load of ./support/kill-under-load.ts
 * through a front that sends each request to a random node. Random nodes are killed with SIGKILL
 * and stay down: their slots move to the live nodes once their leases expire, and the new owners
 * replay the dead node's write-ahead log from the object store before serving them (requests
 * wait meanwhile). The dead node's data directory is deleted; once the other two own
 * every slot it is started again on an empty disk and gets its share back. The checks: every
 * producer message once and in order, every acknowledged plain append once in order, tailers saw
 * exactly the stream. `CRASH_SEED` replays a run; `CRASH_CYCLES` sets the kills.
 */
import { mkdir, rm } from 'node:fs/promises';
import { describe, it } from 'vitest';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { envInteger } from './support/crash-cycles.ts';
import { Rng } from './support/crash-model.ts';
import { killRandomNode, runKillUnderLoad } from './support/kill-under-load.ts';

const SEED = envInteger('CRASH_SEED', Math.floor(Math.random() * 2 ** 31), 0, 2 ** 31);
const KILLS = envInteger('CRASH_CYCLES', 2, 1, 1000);
const LEASE_TTL_MS = 3_000;
/** Waits until a HEAD of every stream of the load answers 200 on every node (no slot still recovering). */
async function recovered(base: string): Promise<void> {
  const names = ['producer-0', 'producer-1', 'producer-2', 'plain-0', 'plain-1'];
  const { nodes } = running().cluster;
  const deadline = performance.now() + 180_000;
  for (;;) {
    const statuses = await Promise.all(
      nodes.filter((node) => node.running).flatMap((node) =>
        names.map(async (name) => {
          try {
            return (await fetch(`http://127.0.0.1:${node.port}${new URL(base).pathname}${name}`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })).status;
          } catch {
            return 0;
          }
        }),
      ),
    );
    if (statuses.every((status) => status === 200)) return;
    if (performance.now() > deadline) throw new Error(`streams not recovered: HEAD statuses ${statuses.join(',')}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const running = useClusterUnderTest({
  size: 3,
  name: `takeover-${process.pid}`,
  extraArgs: [
    '--durability', 'object-store',
    '--cluster-takeover', 'automatic',
    '--cluster-lease-ttl-ms', String(LEASE_TTL_MS),
    '--segment-size-bytes', '4096',
    '--seal-idle-ms', '0',
    '--long-poll-timeout-ms', '2000',
  ],
});

describe('a diskless 3-node cluster with nodes killed under load and their slots taken over', () => {
  it(`loses and duplicates nothing acknowledged (seed ${SEED}, ${KILLS} kills)`, async () => {
    const rng = new Rng(SEED);
    const { cluster } = running();
    const { nodes } = cluster;
    /** Per kill: ms from the kill until every stream answered on every live node (lease TTL + replay). */
    const servedAfterMs: number[] = [];
    try {
      await runKillUnderLoad({
        base: `${cluster.url}/v1/stream/takeover/`,
        rng,
        kills: KILLS,
        kill: async () => {
          const victim = await killRandomNode(nodes, rng);
          const killedAt = performance.now();
          // The machine is gone: nothing of its disk is left.
          await rm(victim.dataDir, { recursive: true, force: true });
          await mkdir(victim.dataDir);
          // Its slots move to the live nodes after its lease expires (automatic takeover), and
          // they replay its log: until then its streams' requests wait. Only then is it started
          // again (a node restarted while its log is still being replayed is fenced by the reader
          // and must restart once more: docs/cluster.md "Diskless takeover").
          await cluster.converged();
          await recovered(`${cluster.url}/v1/stream/takeover/`);
          servedAfterMs.push(Math.round(performance.now() - killedAt));
          await victim.start(120_000);
          await cluster.converged();
        },
      });
    } catch (error) {
      // The nodes' warnings say where a takeover or a hand-over got stuck.
      for (const [i, node] of nodes.entries()) console.log(`node ${cluster.nodeIds[i]} log tail:\n${node.stderrTail.slice(-6_000)}`);
      throw error;
    }
    console.log(
      `diskless takeover test (seed ${SEED}): ${servedAfterMs.length} nodes killed, their disks deleted; every stream served again ${servedAfterMs.join(', ')} ms after the kill (lease TTL ${LEASE_TTL_MS} ms)`,
    );
  }, 900_000);
});
