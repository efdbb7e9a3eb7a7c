/**
 * `cairn cluster status` and `cairn cluster reassign` (docs/cluster.md "Operations"): they read
 * and change the cluster's keys in etcd directly (the `--cluster-*` settings, as for serve), so
 * they work while nodes are down.
 */
import { Command, Option } from 'commander';
import { systemClock } from '../clock.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import { CliError, EXIT_ERROR, EXIT_UNAVAILABLE, EXIT_USAGE } from './exit-codes.ts';
import { addSettingOptions, resolvedConfig } from './config-options.ts';

async function withEtcd<T>(config: ServeConfig, action: (client: import('etcd3').Etcd3) => Promise<T>): Promise<T> {
  if (config.clusterEtcdEndpoints === undefined) throw new CliError(EXIT_USAGE, 'cluster mode is off: name etcd with --cluster-etcd-endpoints (or CAIRN_CLUSTER_ETCD_ENDPOINTS)');
  const { connectEtcd } = await import('../cluster/etcd-client.ts');
  const { ClusterAdminError } = await import('../cluster/etcd-admin.ts');
  const { isRecoverableError } = await import('etcd3');
  const client = connectEtcd(
    {
      endpoints: config.clusterEtcdEndpoints,
      caFile: config.clusterEtcdCaFile,
      certFile: config.clusterEtcdCertFile,
      keyFile: config.clusterEtcdKeyFile,
      username: config.clusterEtcdUsername,
      password: config.clusterEtcdPassword,
    },
    systemClock,
  );
  try {
    return await action(client);
  } catch (error) {
    if (error instanceof ClusterAdminError) throw new CliError(EXIT_ERROR, error.message);
    // etcd unreachable or without quorum: try again later (exit 6), like an unreachable server.
    const exitCode = isRecoverableError(error as Error) ? EXIT_UNAVAILABLE : EXIT_ERROR;
    throw new CliError(exitCode, `etcd (${config.clusterEtcdEndpoints.join(', ')}): ${(error as Error).message.replace(/\s*Resolution note:\s*$/, '')}`, { cause: error });
  } finally {
    client.close();
  }
}

function statusCommand(): Command {
  const command = new Command('status')
    .description("Show the cluster: nodes (live or not), slots per node (moving, recovering a dead node's log) and their epochs, the leader, the slot map's revision")
    .addOption(new Option('--json', 'print the status as JSON'));
  return addSettingOptions(command).action(async (flags: { json?: boolean }, self: Command) => {
    const config = resolvedConfig(self).config;
    const { readClusterStatus } = await import('../cluster/etcd-admin.ts');
    const status = await withEtcd(config, (client) => readClusterStatus(client, config.clusterName));
    const out = process.stdout;
    if (flags.json === true) {
      out.write(`${JSON.stringify(status, null, 2)}\n`);
      return;
    }
    out.write(`cluster ${status.clusterName}: ${status.slotCount} slots, map revision ${status.mapRevision}, leader ${status.leaderNodeId ?? '(none)'}\n`);
    if (status.unownedSlotCount > 0) out.write(`unowned slots: ${status.unownedSlotCount}\n`);
    const rows = [['node', 'live', 'draining', 'slots', 'moving', 'recovering', 'epochs', 'url']];
    for (const node of status.nodes) {
      const epochs = node.slotCount === 0 ? '-' : node.epochMin === node.epochMax ? String(node.epochMin) : `${node.epochMin}-${node.epochMax}`;
      rows.push([node.nodeId, node.live ? 'yes' : 'NO', node.draining ? 'yes' : 'no', String(node.slotCount), String(node.movingSlotCount), String(node.recoveringSlotCount), epochs, node.advertiseUrl ?? '-']);
    }
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) out.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
  });
}

function reassignCommand(): Command {
  const command = new Command('reassign')
    .description(
      "Move every slot of a dead node (lease expired) to live nodes, each at epoch + 1. What that node had not sealed yet (its local WAL's unsealed tails) is lost: use it only when the node will not come back with its disk",
    )
    .addOption(new Option('--from <nodeId>', 'the dead node').makeOptionMandatory())
    .addOption(new Option('--to <nodeId>', 'the live node to move them to (default: spread over the live nodes)'))
    .addOption(new Option('--accept-unsealed-loss', "required: you accept losing the dead node's unsealed appends"));
  return addSettingOptions(command).action(async (flags: { from: string; to?: string; acceptUnsealedLoss?: boolean }, self: Command) => {
    if (flags.acceptUnsealedLoss !== true) {
      throw new CliError(EXIT_USAGE, `reassigning loses what ${flags.from} had not sealed (its local WAL); pass --accept-unsealed-loss to go ahead`);
    }
    const config = resolvedConfig(self).config;
    const { reassignSlots } = await import('../cluster/etcd-admin.ts');
    const result = await withEtcd(config, (client) => reassignSlots(client, config.clusterName, { fromNodeId: flags.from, toNodeId: flags.to }));
    process.stdout.write(`moved ${result.movedSlotCount} slots of ${flags.from} (map revision ${result.revision})\n`);
  });
}

export function clusterCommand(): Command {
  return new Command('cluster').description('Inspect and operate a cluster through its etcd').addCommand(statusCommand()).addCommand(reassignCommand());
}
