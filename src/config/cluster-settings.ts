/**
 * The settings of cluster mode (docs/cluster.md, DESIGN.md "Scale-out"), one table spread into
 * `serveSettings` (serve-config.ts) so they share its flags, `CAIRN_*` variables, validation and
 * `cairn config print` (the etcd password is redacted there). Cluster mode is off until
 * `--cluster-etcd-endpoints` names etcd; `cairn cluster status|reassign` read the same settings.
 */
import { z } from 'zod';
import { CLUSTER_LEASE_TTL_MS_DEFAULT, CLUSTER_SLOT_COUNT_DEFAULT, CLUSTER_SLOT_COUNT_LIMIT } from './limits.ts';
import { setting } from './settings.ts';

const whole = (min: number, max: number) => {
  const message = `expected a whole number from ${min} to ${max}`;
  return z.int({ error: message }).min(min, { error: message }).max(max, { error: message });
};

const path = () => z.string().min(1, { error: 'expected a path' }).optional();

/** `--cluster-etcd-endpoints`: comma-separated http(s) URLs (text, or a list from a file). Output: the URLs. */
export const etcdEndpointsSchema = z
  .union([z.string(), z.array(z.string())], { error: 'expected a comma-separated list of etcd URLs' })
  .transform((value, context): string[] => {
    const items = (typeof value === 'string' ? value.split(',') : value).map((item) => item.trim()).filter((item) => item.length > 0);
    if (items.length === 0) {
      context.issues.push({ code: 'custom', input: value, message: 'expected at least one etcd URL' });
      return z.NEVER;
    }
    for (const item of items) {
      if (!/^https?:\/\/[^/]+\/?$/i.test(item)) {
        context.issues.push({ code: 'custom', input: value, message: `"${item}" is not an etcd client URL (http(s)://host:port)` });
        return z.NEVER;
      }
    }
    return items;
  });

/** Node ids go into etcd keys and object keys: letters, digits, `.`, `_`, `-`. */
const nodeIdSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected 1–64 letters, digits, ".", "_" or "-"' });

export const clusterSettings = {
  clusterEtcdEndpoints: setting({
    flag: '--cluster-etcd-endpoints <urls>',
    env: 'CAIRN_CLUSTER_ETCD_ENDPOINTS',
    schema: etcdEndpointsSchema.optional(),
    unit: 'URLs',
    description: 'etcd client URLs, comma-separated; setting it turns cluster mode on',
    unsetMeans: 'single node',
  }),
  clusterName: setting({
    flag: '--cluster-name <name>',
    env: 'CAIRN_CLUSTER_NAME',
    schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: 'expected 1–64 letters, digits, ".", "_" or "-"' }),
    default: 'cairn',
    unit: 'name',
    description: 'the cluster\'s keys live under /<name>/ in etcd (several clusters can share one etcd)',
  }),
  clusterSlotCount: setting({
    flag: '--cluster-slot-count <count>',
    env: 'CAIRN_CLUSTER_SLOT_COUNT',
    schema: whole(1, CLUSTER_SLOT_COUNT_LIMIT),
    default: CLUSTER_SLOT_COUNT_DEFAULT,
    unit: 'count',
    description: 'slots of a new cluster; fixed once the cluster exists (a node with another count refuses to start)',
  }),
  nodeId: setting({
    flag: '--node-id <id>',
    env: 'CAIRN_NODE_ID',
    schema: nodeIdSchema.optional(),
    unit: 'id',
    description: 'this node\'s id in the cluster; must stay the same across restarts',
    unsetMeans: 'the data directory\'s node id',
  }),
  advertiseUrl: setting({
    flag: '--advertise-url <url>',
    env: 'CAIRN_ADVERTISE_URL',
    schema: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    unit: 'url',
    description: 'base URL other nodes forward requests to (required in cluster mode)',
    unsetMeans: 'none',
  }),
  clusterLeaseTtlMs: setting({
    flag: '--cluster-lease-ttl-ms <ms>',
    env: 'CAIRN_CLUSTER_LEASE_TTL_MS',
    schema: whole(2_000, 600_000),
    default: CLUSTER_LEASE_TTL_MS_DEFAULT,
    unit: 'ms',
    description: 'lease of a node\'s registration: a crashed node is seen gone after this; writes pause if etcd does not confirm the lease within 2/3 of it',
  }),
  clusterTakeover: setting({
    flag: '--cluster-takeover <mode>',
    env: 'CAIRN_CLUSTER_TAKEOVER',
    schema: z.enum(['manual', 'automatic'], { error: 'expected one of: manual, automatic' }),
    default: 'manual',
    description: 'slots of a node whose lease expired: manual (they wait for it or `cairn cluster reassign`) or automatic (moved at once; only with diskless durability)',
  }),
  clusterEtcdCaFile: setting({
    flag: '--cluster-etcd-ca-file <path>',
    env: 'CAIRN_CLUSTER_ETCD_CA_FILE',
    schema: path(),
    unit: 'path',
    description: 'PEM CA certificate of the etcd members (TLS)',
    unsetMeans: 'system roots',
  }),
  clusterEtcdCertFile: setting({
    flag: '--cluster-etcd-cert-file <path>',
    env: 'CAIRN_CLUSTER_ETCD_CERT_FILE',
    schema: path(),
    unit: 'path',
    description: 'PEM client certificate for etcd (mutual TLS; with --cluster-etcd-key-file)',
    unsetMeans: 'none',
  }),
  clusterEtcdKeyFile: setting({
    flag: '--cluster-etcd-key-file <path>',
    env: 'CAIRN_CLUSTER_ETCD_KEY_FILE',
    schema: path(),
    unit: 'path',
    description: 'PEM private key of --cluster-etcd-cert-file',
    unsetMeans: 'none',
  }),
  clusterEtcdUsername: setting({
    flag: '--cluster-etcd-username <user>',
    env: 'CAIRN_CLUSTER_ETCD_USERNAME',
    schema: z.string().min(1, { error: 'expected a user name' }).optional(),
    unit: 'name',
    description: 'etcd user (password authentication; with --cluster-etcd-password)',
    unsetMeans: 'none',
  }),
  clusterEtcdPassword: setting({
    flag: '--cluster-etcd-password <password>',
    env: 'CAIRN_CLUSTER_ETCD_PASSWORD',
    schema: z.string().min(1, { error: 'expected a password' }).optional(),
    unit: 'secret',
    description: 'password of --cluster-etcd-username (never logged)',
    unsetMeans: 'none',
    secret: true,
  }),
};

/** The settings the rules below read. */
interface ClusterConfig {
  clusterEtcdCertFile?: string | undefined;
  clusterEtcdKeyFile?: string | undefined;
  clusterEtcdUsername?: string | undefined;
  clusterEtcdPassword?: string | undefined;
}

/**
 * The rules between cluster settings, for `serveConfigSchema`'s superRefine. (That serve needs
 * `--advertise-url` in cluster mode is checked when serve starts: `cairn cluster status` reads
 * the same settings and needs no URL of its own.)
 */
export function checkClusterSettings(config: ClusterConfig, context: z.RefinementCtx): void {
  if ((config.clusterEtcdCertFile === undefined) !== (config.clusterEtcdKeyFile === undefined)) {
    const missing = config.clusterEtcdCertFile === undefined ? 'clusterEtcdCertFile' : 'clusterEtcdKeyFile';
    context.addIssue({ code: 'custom', path: [missing], message: 'etcd client TLS needs both --cluster-etcd-cert-file and --cluster-etcd-key-file' });
  }
  if ((config.clusterEtcdUsername === undefined) !== (config.clusterEtcdPassword === undefined)) {
    const missing = config.clusterEtcdUsername === undefined ? 'clusterEtcdUsername' : 'clusterEtcdPassword';
    context.addIssue({ code: 'custom', path: [missing], message: 'etcd authentication needs both --cluster-etcd-username and --cluster-etcd-password' });
  }
}
