/**
 * `cairn serve --workers N` (DESIGN.md "Scale-out", "One machine, many cores"; README "Workers"):
 * N node processes on one machine and one client port (node:cluster shares the listening socket,
 * and each worker accepts its own connections: see `runWorkersPrimary`),
 * streams sharded over them by slot with a static map the primary holds (no etcd). Each worker is
 * a whole node with its own data directory `<data-dir>/workers/<i>/` (WAL, checkpoints, node id)
 * over one object store (`<data-dir>/objects/` for the fs store); a request reaching the wrong
 * worker is forwarded to the slot's owner over its loopback peer listener. The primary restarts a
 * crashed worker on its own data directory; its slots wait for it (503 + Retry-After meanwhile).
 */
import cluster, { type Worker } from 'node:cluster';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { systemClock } from '../clock.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT, WORKER_RESTART_DELAY_MS } from '../config/limits.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import { rendezvousAssignment } from '../cluster/slots.ts';
import type { NodeInfo, SlotOwner } from '../cluster/slot-table.ts';
import { StaticCoordinator, type SlotMapMessage, type WorkerJoinMessage } from '../cluster/static-coordinator.ts';
import type { RunningServer } from '../server.ts';
import { CliError, EXIT_ERROR } from './exit-codes.ts';

const WORKER_INDEX_ENV = 'CAIRN_WORKER_INDEX';
const WORKER_COUNT_FILE = 'count';

/** True in a process node:cluster forked as a worker of `--workers`. */
export function isWorkerProcess(): boolean {
  return cluster.isWorker && process.env[WORKER_INDEX_ENV] !== undefined;
}

/**
 * Records the worker count in `<data-dir>/workers/count`, refusing a change: the slot map comes
 * from the count, and the unsealed tails of moved slots would stay in the old owners' WALs.
 * @throws CliError naming what to do.
 */
async function checkWorkerCount(dataDir: string, count: number): Promise<void> {
  const dir = path.join(dataDir, 'workers');
  const file = path.join(dir, WORKER_COUNT_FILE);
  const recorded = await readFile(file, 'utf8').then(
    (text) => Number(text.trim()),
    () => undefined,
  );
  const singleNodeWal = await stat(path.join(dataDir, 'wal')).then(
    () => true,
    () => false,
  );
  const previous = recorded ?? (singleNodeWal ? 1 : undefined);
  if (previous !== undefined && previous !== count) {
    throw new CliError(
      EXIT_ERROR,
      `${dataDir} was served with --workers ${previous}; changing the number of workers moves streams between ` +
        `write-ahead logs, which needs every stream sealed first and is not supported yet. Start with --workers ${previous}.`,
    );
  }
  await mkdir(dir, { recursive: true });
  if (recorded === undefined) await writeFile(file, `${count}\n`);
}

/**
 * The primary: forks the workers, holds the slot map, restarts crashed workers, and stops them
 * all on SIGTERM/SIGINT. Resolves when every worker has stopped after a signal.
 */
export async function runWorkersPrimary(config: ServeConfig, logger: Logger): Promise<void> {
  const count = config.workers;
  await checkWorkerCount(config.dataDir, count);
  // Workers accept from the shared socket themselves. Under node:cluster's default round-robin the
  // primary accepts and hands each connection to a worker; a worker killed before it took one
  // leaves that connection open in the primary and unanswered for ever (its client hangs), and a
  // connection queued while every worker is down stays with a listener nobody serves again.
  // Here a killed worker's connections are reset by the kernel, and clients retry.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const joined = new Map<number, WorkerJoinMessage>();
  const workers = new Map<number, Worker>();
  let owners: SlotOwner[] | undefined;
  let revision = 0;
  let stopping = false;
  let announced = false;

  const publish = () => {
    if (owners === undefined) return;
    revision++;
    const nodes: NodeInfo[] = [...joined.values()].map(({ nodeId, advertiseUrl, peerSocketPath }) => ({ nodeId, advertiseUrl, ...(peerSocketPath === undefined ? {} : { peerSocketPath }) }));
    const message: SlotMapMessage = { cairn: 'slot-map', revision, owners, nodes };
    for (const worker of workers.values()) if (worker.isConnected()) worker.send(message);
  };

  const onJoin = (message: WorkerJoinMessage) => {
    const before = joined.get(message.index);
    joined.set(message.index, message);
    if (owners === undefined) {
      if (joined.size < count) return;
      const assignment = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, [...joined.values()].map((node) => node.nodeId));
      owners = assignment.map((nodeId) => ({ nodeId, epoch: 1 }));
    } else if (before === undefined) {
      // A restarted worker: same node id (its data directory), same slots, a new epoch.
      owners = owners.map((owner) => (owner.nodeId === message.nodeId ? { nodeId: owner.nodeId, epoch: owner.epoch + 1 } : owner));
    }
    publish();
    if (!announced) {
      announced = true;
      logger.info({ url: message.url, workers: count, dataDir: config.dataDir }, 'cairn listening');
    }
  };

  const fork = (index: number) => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    workers.set(index, worker);
    worker.on('message', (message: unknown) => {
      if (typeof message === 'object' && message !== null && (message as { cairn?: unknown }).cairn === 'worker-join') onJoin(message as WorkerJoinMessage);
    });
    worker.on('exit', (code, signal) => {
      workers.delete(index);
      joined.delete(index);
      if (stopping) return;
      logger.error({ worker: index, code, signal }, 'worker exited; starting it again on its own data directory');
      publish();
      systemClock.setTimeout(() => fork(index), WORKER_RESTART_DELAY_MS);
    });
  };

  for (let index = 0; index < count; index++) fork(index);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`cairn: ${signal} received, stopping ${workers.size} workers\n`);
      if (workers.size === 0) resolve();
      for (const worker of workers.values()) {
        worker.once('exit', () => {
          if (workers.size === 0) resolve();
        });
        worker.process.kill('SIGTERM');
      }
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

/** A worker: a node over `<data-dir>/workers/<i>/` joined to the primary's static slot map. */
export async function startWorker(config: ServeConfig, logger: Logger): Promise<RunningServer> {
  const index = Number(process.env[WORKER_INDEX_ENV]);
  const { startServer } = await import('../server.ts');
  const send = (message: WorkerJoinMessage) => process.send?.(message);
  const server = await startServer(
    // Every worker over the one object store (the fs store's default stays <data-dir>/objects).
    { ...config, dataDir: path.join(config.dataDir, 'workers', String(index)), fsStoreDir: config.fsStoreDir ?? path.join(config.dataDir, 'objects') },
    {
      logger: logger.child({ worker: index }),
      cluster: {
        coordinator: (nodeId) =>
          new StaticCoordinator({
            index,
            nodeId,
            slotCount: CLUSTER_SLOT_COUNT_DEFAULT,
            clock: systemClock,
            channel: { send, onMessage: (handler) => process.on('message', handler) },
          }),
        peerListen: { host: '127.0.0.1', port: 0 },
      },
    },
  );
  // The primary is gone (killed): a worker never serves on alone.
  process.once('disconnect', () => {
    void server.close().finally(() => process.exit(0));
  });
  return server;
}
