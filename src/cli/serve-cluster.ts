/**
 * `cairn serve --cluster-etcd-endpoints …` (docs/cluster.md; README "Cluster"): the node joins
 * the cluster through the etcd coordinator. The coordinator (and etcd3's gRPC stack) is loaded
 * only when cluster mode is on, so the embedded default never pulls it in.
 */
import type { Logger } from 'pino';
import { systemClock } from '../clock.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import type { ClusterStart } from '../server.ts';
import { CliError, EXIT_USAGE } from './exit-codes.ts';

/** Addresses that mean "every interface": peers cannot reach a node there, so it needs `--advertise-url`. */
const UNSPECIFIED_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

/**
 * How this node joins the cluster, or undefined when cluster mode is off.
 * @throws CliError (exit 2) for a combination cluster mode cannot serve.
 */
export async function etcdClusterStart(config: ServeConfig, logger: Logger): Promise<ClusterStart | undefined> {
  const endpoints = config.clusterEtcdEndpoints;
  if (endpoints === undefined) return undefined;
  if (config.workers > 1) {
    throw new CliError(EXIT_USAGE, '--workers with --cluster-etcd-endpoints is not supported yet: run one cairn process per cluster node');
  }
  if (config.advertiseUrl === undefined && UNSPECIFIED_HOSTS.has(config.host)) {
    throw new CliError(EXIT_USAGE, `--host ${config.host} listens on every interface: give --advertise-url (the URL other nodes reach this one at)`);
  }
  if (config.clusterTakeover === 'automatic' && config.durability !== 'object-store') {
    throw new CliError(
      EXIT_USAGE,
      '--cluster-takeover automatic moves a dead node\'s slots without its local write-ahead log, losing what it had not sealed; it needs --durability object-store (diskless), where the new owner replays the dead node\'s log from the object store. Use manual (and `cairn cluster reassign`), or diskless durability.',
    );
  }
  const { EtcdCoordinator } = await import('../cluster/etcd-coordinator.ts');
  return {
    advertiseUrl: config.advertiseUrl,
    coordinator: (dataNodeId) =>
      new EtcdCoordinator({
        etcd: {
          endpoints,
          caFile: config.clusterEtcdCaFile,
          certFile: config.clusterEtcdCertFile,
          keyFile: config.clusterEtcdKeyFile,
          username: config.clusterEtcdUsername,
          password: config.clusterEtcdPassword,
        },
        clusterName: config.clusterName,
        nodeId: config.nodeId ?? dataNodeId,
        advertiseUrl: config.advertiseUrl,
        slotCount: config.clusterSlotCount,
        leaseTtlMs: config.clusterLeaseTtlMs,
        takeover: config.clusterTakeover,
        clock: systemClock,
        log: logger,
      }),
  };
}
