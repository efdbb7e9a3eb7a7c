/**
 * A cluster under test as users would run it: `cairn serve` child processes joined through a real
 * etcd (./etcd.ts), sharing one filesystem object store, and a front (a plain HTTP proxy in this
 * process) that sends every request to a node picked at random, as a load balancer without
 * stickiness would (skipping a node that refuses the connection). Stops what it started by PID.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import { rendezvousAssignment } from '../../src/cluster/slots.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT } from '../../src/config/limits.ts';
import { afterAll, beforeAll } from 'vitest';
import { startEtcd, type EtcdCluster } from './etcd.ts';

export interface ClusterUnderTest {
  nodes: ChildServer[];
  nodeIds: string[];
  /** The front's base URL (`http://127.0.0.1:<port>`). */
  url: string;
  /** Resolves when every running node owns exactly its rendezvous share of the slots among the running nodes (moves done). */
  converged(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Owned slots of a node, from its /metrics (undefined while it does not answer). */
async function ownedSlots(port: number): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const match = /^cairn_cluster_owned_slots (\d+)$/m.exec(text);
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

export async function startClusterUnderTest(
  etcd: EtcdCluster,
  options: {
    size: number;
    name: string;
    extraArgs?: string[];
    /** Nodes started at once (the first ones); default all. */
    initial?: number;
    /** With auth on: the readiness probe's `Authorization` (ChildServerOptions.probeAuthorization). */
    probeAuthorization?: string;
  },
): Promise<ClusterUnderTest> {
  const root = await mkdtemp(path.join(tmpdir(), 'cairn-cluster-'));
  const nodeIds = Array.from({ length: options.size }, (_, i) => `n${i + 1}`);
  const nodes: ChildServer[] = [];
  for (const nodeId of nodeIds) {
    const port = await freePort();
    nodes.push(
      new ChildServer({
        port,
        dataDir: path.join(root, nodeId),
        args: [
          '--cluster-etcd-endpoints',
          etcd.endpoints.join(','),
          '--cluster-name',
          options.name,
          '--node-id',
          nodeId,
          '--fs-store-dir',
          path.join(root, 'objects'),
          ...(options.extraArgs ?? []),
        ],
        probeAuthorization: options.probeAuthorization,
      }),
    );
  }
  await Promise.all(nodes.slice(0, options.initial ?? nodes.length).map((node) => node.start(120_000)));

  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  // Like a load balancer with passive health checks: a node that refuses the connection (down,
  // restarting) is skipped for another; the body is kept to send again (test bodies are small).
  const front = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      const order = [...nodes].sort(() => Math.random() - 0.5);
      const attempt = (index: number): void => {
        const node = order[index];
        if (node === undefined) {
          response.writeHead(502).end('no node accepted the connection');
          return;
        }
        const upstream = http.request(
          { host: '127.0.0.1', port: node.port, method: request.method, path: request.url, headers: request.headers, agent },
          (answer) => {
            response.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(response);
          },
        );
        upstream.on('error', (error: NodeJS.ErrnoException) => {
          // Refused: try the next node. Cut mid-request (the node died): cut the client too, so it
          // sees the network error it would see talking to the node itself, and retries.
          if (error.code === 'ECONNREFUSED' && !response.headersSent) attempt(index + 1);
          else response.destroy();
        });
        response.on('close', () => upstream.destroy());
        upstream.end(body);
      };
      attempt(0);
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;

  return {
    nodes,
    nodeIds,
    url,
    async converged(timeoutMs = 180_000) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const running = nodes.map((node, i) => (node.running ? (nodeIds[i] as string) : undefined)).filter((id) => id !== undefined);
        const target = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, running);
        const share = (nodeId: string) => target.filter((owner) => owner === nodeId).length;
        const counts = await Promise.all(nodes.map((node) => (node.running ? ownedSlots(node.port) : Promise.resolve(0))));
        if (counts.every((count, i) => count === share(nodeIds[i] as string))) return;
        if (performance.now() > deadline) throw new Error(`slots did not converge: owned ${counts.join(', ')}, target ${nodeIds.map(share).join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async stop() {
      // The nodes first (SIGKILL), then the front: its close waits for open connections (a
      // long-poll of a tailer that is still running), which once left the nodes running.
      await Promise.all(nodes.map((node) => node.stop()));
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      front.closeAllConnections();
      agent.destroy();
      await closed;
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Registers the suite hooks of a cluster test: a 3-member etcd and a cluster of `size` nodes,
 * started and converged before the tests, stopped after them.
 * @returns a getter of the running cluster (and its etcd), for use inside the tests.
 */
export function useClusterUnderTest(options: Parameters<typeof startClusterUnderTest>[1]): () => { cluster: ClusterUnderTest; etcd: EtcdCluster } {
  let etcd: EtcdCluster | undefined;
  let cluster: ClusterUnderTest | undefined;
  beforeAll(async () => {
    etcd = await startEtcd(3);
    cluster = await startClusterUnderTest(etcd, options);
    await cluster.converged();
  }, 300_000);
  afterAll(async () => {
    if (cluster !== undefined) for (const node of cluster.nodes) node.signal('SIGCONT');
    await cluster?.stop();
    await etcd?.stop();
  }, 120_000);
  return () => {
    if (cluster === undefined || etcd === undefined) throw new Error('the cluster is not running (its beforeAll failed)');
    return { cluster, etcd };
  };
}
