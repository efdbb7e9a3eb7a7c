/**
 * The split-brain check shared by the local-WAL and diskless tests (issue 14; issue 15 for
 * diskless): the owner of a stream is paused (SIGSTOP) past its lease with appends in flight, its
 * slots move (`takeOver`: an operator's reassign, or the leader's automatic takeover), writes go
 * on at the new owner, and the old owner is resumed (SIGCONT) while clients still send to it. It
 * must acknowledge nothing for the slots it lost. The append history checker: every acknowledged
 * append's offset is unique, the stream is the acknowledged appends in offset order (plus, at most
 * once each, appends whose answer was lost: a fenced diskless node exits mid-request), and
 * every node reads a prefix of it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { rendezvousAssignment, slotOf } from '../../../src/cluster/slots.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT } from '../../../src/config/limits.ts';
import type { ClusterUnderTest } from '../../support/cluster-front.ts';

const text = { 'content-type': 'text/plain' };
const execFileAsync = promisify(execFile);
const MAIN = path.resolve('src/cli/main.ts');

/** `cairn cluster …` against a test etcd: exit code and output. */
export async function clusterCli(endpoints: readonly string[], clusterName: string, ...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [MAIN, 'cluster', ...args, '--cluster-etcd-endpoints', endpoints.join(','), '--cluster-name', clusterName]);
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

export interface SplitBrainOptions {
  cluster: ClusterUnderTest;
  /** Waits until the paused victim's slots are owned elsewhere (its lease expired meanwhile). */
  takeOver: (victimNodeId: string) => Promise<void>;
  /**
   * Seal the stream wholly before the pause (local WAL: what the paused node had not sealed is
   * lost by the reassignment, so the check needs nothing unsealed); diskless takes the unsealed
   * tail over from the object store, so it need not.
   */
  sealFirst: boolean;
}

export async function runSplitBrain(options: SplitBrainOptions): Promise<void> {
  const { nodes, nodeIds } = options.cluster;
  const owners = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, nodeIds);
  const victimIndex = 2;
  const victim = nodes[victimIndex]!;
  let name = '';
  for (let i = 0; name === ''; i++) if (owners[slotOf(`split/${i}`, CLUSTER_SLOT_COUNT_DEFAULT)] === nodeIds[victimIndex]) name = `split/${i}`;
  const at = (node: number) => `http://127.0.0.1:${nodes[node]!.port}/v1/stream/${name}`;

  /** Acknowledged appends: token, the offset after it, the node that answered, and whether sent after the reassignment. */
  const acknowledged: { token: string; nextOffset: string; node: string; afterReassign: boolean }[] = [];
  /** Appends not acknowledged (an error, a reset, a 503 after the record was logged): each may appear at most once. */
  const unknown = new Set<string>();
  let reassignDone = false;
  const append = async (node: number, token: string, timeoutMs = 30_000): Promise<number> => {
    try {
      const response = await fetch(at(node), { method: 'POST', headers: text, body: token, signal: AbortSignal.timeout(timeoutMs) });
      await response.arrayBuffer();
      if (response.status === 204) {
        acknowledged.push({ token, nextOffset: response.headers.get('stream-next-offset') ?? '', node: response.headers.get('cairn-node') ?? '', afterReassign: reassignDone });
      } else unknown.add(token);
      return response.status;
    } catch {
      unknown.add(token);
      return 0;
    }
  };

  expect((await fetch(at(0), { method: 'PUT', headers: text })).status).toBe(201);
  for (let i = 0; i < 20; i++) expect(await append(i % 3, `before-${i};`)).toBe(204);
  if (options.sealFirst) {
    // Wholly sealed before the pause: the reassignment then loses nothing.
    const sealed = async () => {
      const head = await fetch(at(victimIndex), { method: 'HEAD' });
      return head.headers.get('cairn-sealed-offset') !== null && head.headers.get('cairn-sealed-offset') === head.headers.get('stream-next-offset');
    };
    for (let i = 0; i < 300 && !(await sealed()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await sealed()).toBe(true);
  }

  victim.signal('SIGSTOP');
  // Appends straight to the paused owner: its kernel takes them, the process answers after SIGCONT.
  const inFlight = Array.from({ length: 5 }, (_, i) => append(victimIndex, `paused-${i};`, 120_000));

  await options.takeOver(nodeIds[victimIndex]!);
  reassignDone = true;

  for (let i = 0; i < 10; i++) {
    let status = 0;
    for (let attempt = 0; attempt < 100 && status !== 204; attempt++) {
      status = await append(i % 2, `after-${i};`);
      if (status !== 204) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(status).toBe(204);
  }

  victim.signal('SIGCONT');
  // Held by the paused owner, answered once it resumes: refused, or forwarded to the new owner.
  await Promise.all(inFlight);
  // Clients still sending to the resumed node: answered by the new owner (forwarded) or refused.
  for (let i = 0; i < 5; i++) await append(victimIndex, `resumed-${i};`);

  // The old owner acknowledged nothing once its slots were reassigned.
  const byVictim = acknowledged.filter((entry) => entry.afterReassign && entry.node === nodeIds[victimIndex]);
  expect(byVictim.map((entry) => entry.token), 'acknowledged by the old owner after the reassignment').toEqual([]);
  // The history checker: offsets unique; the stream is the acknowledged appends in offset order.
  const offsets = acknowledged.map((entry) => entry.nextOffset);
  expect(new Set(offsets).size, 'every acknowledged offset is unique').toBe(offsets.length);
  const inOffsetOrder = [...acknowledged].sort((x, y) => (x.nextOffset < y.nextOffset ? -1 : 1));
  const read = await (await fetch(`${at(0)}?offset=-1`)).text();
  const tokens = read.split(';').filter(Boolean).map((token) => `${token};`);
  expect(new Set(tokens).size, 'no append twice').toBe(tokens.length);
  expect(tokens.filter((token) => !unknown.has(token)), 'the stream is the acknowledged appends in offset order').toEqual(inOffsetOrder.map((entry) => entry.token));
  expect(tokens.filter((token) => !unknown.has(token) && !acknowledged.some((entry) => entry.token === token)), 'nothing never sent').toEqual([]);
  for (let node = 0; node < nodes.length; node++) {
    // A diskless node whose log was fenced by the takeover exits (to be restarted): not asked.
    if (!nodes[node]!.running) continue;
    const seen = await (await fetch(`${at(node)}?offset=-1`)).text();
    expect(read.startsWith(seen), `node ${nodeIds[node]} reads a prefix of the history`).toBe(true);
  }
}
