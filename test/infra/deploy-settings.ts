/**
 * Reading a deployment file's Cairn command line and environment the way `cairn serve` does, for
 * the offline tests of infra/cluster and infra/k8s: every flag and `CAIRN_*` variable must be a
 * setting of `serve-config.ts`'s table (or a cluster-mode setting, below), and the values are
 * resolved and validated by the table's own `resolveConfig`.
 */
import { serveConfigSchema, serveSettings, type ServeConfig } from '../../src/config/serve-config.ts';
import { isSwitch, longFlag, resolveConfig, type SettingTable } from '../../src/config/settings.ts';

/**
 * The cluster-mode settings the deployment files use (docs/cluster.md). Named here as well as in
 * the table so that a file is checked the same way before and after they are in the table:
 * a value given for one the table does not hold yet is not validated, only its name is accepted.
 */
export const CLUSTER_FLAGS = [
  '--cluster-etcd-endpoints',
  '--cluster-name',
  '--node-id',
  '--advertise-url',
  '--cluster-lease-ttl-ms',
  '--cluster-etcd-ca-file',
  '--cluster-etcd-cert-file',
  '--cluster-etcd-key-file',
  '--cluster-etcd-username',
  '--cluster-etcd-password',
] as const;

export type ClusterFlag = (typeof CLUSTER_FLAGS)[number];

/** `--cluster-etcd-endpoints` → `CAIRN_CLUSTER_ETCD_ENDPOINTS`: the naming rule of every setting's variable. */
export function envTwin(flag: string): string {
  return `CAIRN_${flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
}

const TABLE: SettingTable = serveSettings;
const ENTRY_BY_FLAG = new Map(Object.entries(TABLE).map(([key, entry]) => [longFlag(entry), { key, entry }]));
for (const [key, entry] of Object.entries(TABLE)) {
  if (entry.formerly !== undefined) ENTRY_BY_FLAG.set(entry.formerly.flag, { key: entry.formerly.key, entry });
}

/** Every `CAIRN_*` variable `cairn serve` reads, with the cluster ones. */
export const KNOWN_ENV = new Set([
  ...Object.values(TABLE).flatMap((entry) => [entry.env, ...(entry.formerly === undefined ? [] : [entry.formerly.env])]),
  ...CLUSTER_FLAGS.map(envTwin),
]);

/** The cluster flags the table does not have yet (empty once cluster mode's settings are merged). */
export const CLUSTER_FLAGS_NOT_IN_TABLE: readonly string[] = CLUSTER_FLAGS.filter((flag) => !ENTRY_BY_FLAG.has(flag));

export interface ResolvedNode {
  config: ServeConfig;
  /** The value of each cluster flag given, from the command line or its `CAIRN_*` twin. */
  cluster: Partial<Record<ClusterFlag, string>>;
}

/**
 * Resolves `cairn serve <args>` under `env` with the settings table (flag > variable > default).
 * @throws Error naming an argument that is not a known flag, a flag without its value, or a
 *   `CAIRN_*` variable that is no setting; ConfigError for an invalid value.
 */
export function resolveServe(args: readonly string[], env: Record<string, string>): ResolvedNode {
  for (const name of Object.keys(env)) {
    if (name.startsWith('CAIRN_') && !KNOWN_ENV.has(name)) throw new Error(`${name} is not a setting of cairn serve`);
  }
  const flags: Record<string, string | boolean> = {};
  const cluster: Partial<Record<ClusterFlag, string>> = {};
  for (const flag of CLUSTER_FLAGS) {
    const value = env[envTwin(flag)];
    if (value !== undefined) cluster[flag] = value;
  }
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    const known = ENTRY_BY_FLAG.get(arg);
    const clusterFlag = CLUSTER_FLAGS.find((flag) => flag === arg);
    if (known === undefined && clusterFlag === undefined) throw new Error(`${arg} is not a flag of cairn serve`);
    if (known !== undefined && isSwitch(known.entry)) {
      flags[known.key] = true;
      continue;
    }
    const value = args[index + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`${arg} needs a value`);
    index += 1;
    if (known !== undefined) flags[known.key] = value;
    if (clusterFlag !== undefined) cluster[clusterFlag] = value;
  }
  const { config } = resolveConfig(TABLE, serveConfigSchema, { flags, env });
  return { config: config as ServeConfig, cluster };
}
