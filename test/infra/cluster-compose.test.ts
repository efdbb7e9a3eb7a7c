/**
 * infra/cluster/compose.yaml, the three-node cluster on Docker Compose, checked offline (no Docker
 * engine here): etcd's static membership, the Cairn nodes' settings as `cairn serve` resolves
 * them, one volume and one host port per node, dependencies and health checks.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';
import { SHUTDOWN_DRAIN_MS } from '../../src/config/limits.ts';
import * as limits from '../../src/config/limits.ts';
import { CLUSTER_FLAGS_NOT_IN_TABLE, envTwin, resolveServe } from './deploy-settings.ts';

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '../..');
const COMPOSE_FILE = path.join(REPOSITORY_ROOT, 'infra/cluster/compose.yaml');
const ETCD_MEMBERS = ['etcd-1', 'etcd-2', 'etcd-3'];
const CAIRN_NODES = ['cairn-1', 'cairn-2', 'cairn-3'];
/** A graceful leave (slots handed over) is bounded by this; until cluster mode's limits land, its documented 60 s. */
const LEAVE_TIMEOUT_MS = ((limits as Record<string, unknown>)['CLUSTER_LEAVE_TIMEOUT_MS'] as number | undefined) ?? 60_000;

type Json = Record<string, any>;

// Compose resolves `<<` merge keys (the shared x-etcd-member and x-cairn-node fragments).
const compose = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as { services: Record<string, Json>; volumes: Record<string, unknown> };
const { services } = compose;

/** `--name=value` flags of a command, by name (etcd's spelling). */
function equalsFlags(command: string[]): Map<string, string> {
  return new Map(command.filter((arg) => arg.startsWith('--')).map((arg) => [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]));
}

/** A node's `cairn serve` arguments and environment, resolved by the settings table. */
function resolveNode(name: string) {
  const service = services[name]!;
  const command = service['command'] as string[];
  expect(command.slice(0, 3), name).toEqual(['node', 'src/cli/main.ts', 'serve']);
  const env = service['environment'] as Record<string, string>;
  return resolveServe(command.slice(3), env);
}

/** Compose's `120s` → 120. */
function seconds(duration: string): number {
  const match = /^(\d+)s$/.exec(duration);
  expect(match, duration).not.toBeNull();
  return Number(match![1]);
}

describe('infra/cluster/compose.yaml', () => {
  test('services: 3 etcd members, MinIO and its bucket creation, 3 Cairn nodes', () => {
    expect(Object.keys(services).sort()).toEqual([...CAIRN_NODES, ...ETCD_MEMBERS, 'minio', 'minio-init'].sort());
    // The x- fragments are not services.
    expect(Object.keys(compose).filter((key) => !key.startsWith('x-')).sort()).toEqual(['name', 'services', 'volumes']);
  });

  test('etcd: one pinned 3.5 image, a static initial cluster that lists exactly its members at their advertised peer URLs', () => {
    const peerUrls = new Map<string, string>();
    const initialClusters = new Set<string>();
    for (const member of ETCD_MEMBERS) {
      const service = services[member]!;
      expect(service['image']).toMatch(/^(quay\.io\/coreos\/etcd:v3\.5\.\d+|bitnami\/etcd:3\.5\.\d+)$/);
      const flags = equalsFlags(service['command']);
      expect(flags.get('--name')).toBe(member);
      expect(flags.get('--initial-cluster-state')).toBe('new');
      expect(flags.get('--advertise-client-urls')).toBe(`http://${member}:2379`);
      expect(flags.get('--listen-client-urls')).toBe('http://0.0.0.0:2379');
      expect(flags.get('--listen-peer-urls')).toBe('http://0.0.0.0:2380');
      peerUrls.set(member, flags.get('--initial-advertise-peer-urls')!);
      expect(peerUrls.get(member)).toBe(`http://${member}:2380`);
      initialClusters.add(flags.get('--initial-cluster')!);
      expect(flags.get('--initial-cluster-token')).toBeTruthy();
      // Its data on its own named volume.
      expect(service['volumes']).toEqual([`${member}-data:${flags.get('--data-dir')}`]);
      expect(service['healthcheck']?.test.join(' ')).toContain('endpoint health');
    }
    expect(initialClusters.size).toBe(1);
    const [initialCluster] = [...initialClusters];
    const listed = new Map(initialCluster!.split(',').map((entry) => entry.split('=') as [string, string]));
    expect(listed).toEqual(peerUrls);
    expect(new Set(ETCD_MEMBERS.map((member) => services[member]!['image'])).size).toBe(1);
  });

  test('every Cairn flag and CAIRN_* variable is a setting of cairn serve, and the values pass its validation', () => {
    for (const node of CAIRN_NODES) {
      const { config } = resolveNode(node);
      expect(config.host).toBe('0.0.0.0');
      expect(config.objectStore).toBe('s3');
      expect(config.allowUnauthenticated).toBe(true);
    }
    // Reported, not asserted: the cluster settings may land in the table after this file.
    if (CLUSTER_FLAGS_NOT_IN_TABLE.length > 0) console.info(`cluster flags not in the settings table yet: ${CLUSTER_FLAGS_NOT_IN_TABLE.join(' ')}`);
  });

  test('each node: its own node id, reachable by peers at its advertise URL, all etcd members as endpoints', () => {
    const clientUrls = ETCD_MEMBERS.map((member) => equalsFlags(services[member]!['command']).get('--advertise-client-urls'));
    for (const node of CAIRN_NODES) {
      const { config, cluster } = resolveNode(node);
      expect(cluster['--node-id']).toBe(node);
      // Peers reach the node by its service name on the port it listens on (inside the network).
      expect(cluster['--advertise-url']).toBe(`http://${node}:${config.port}`);
      expect(cluster['--cluster-etcd-endpoints']?.split(',')).toEqual(clientUrls);
      expect(cluster['--cluster-name']).toBe('cairn');
    }
    const clusterSettings = CAIRN_NODES.map((node) => {
      const { cluster } = resolveNode(node);
      return [cluster['--cluster-name'], cluster['--cluster-etcd-endpoints']];
    });
    expect(new Set(clusterSettings.map((settings) => JSON.stringify(settings))).size).toBe(1);
  });

  test('each node has its own WAL volume at its data dir and its own host port (127.0.0.1:4437-4439)', () => {
    const volumes = new Set<string>();
    const hostPorts: string[] = [];
    for (const node of CAIRN_NODES) {
      const { config } = resolveNode(node);
      const mounts = services[node]!['volumes'] as string[];
      expect(mounts).toHaveLength(1);
      const [volume, target] = mounts[0]!.split(':');
      expect(target).toBe(config.dataDir);
      expect(Object.keys(compose.volumes)).toContain(volume);
      volumes.add(volume!);
      const ports = services[node]!['ports'] as string[];
      expect(ports).toHaveLength(1);
      const [address, hostPort, containerPort] = ports[0]!.split(':');
      expect(address).toBe('127.0.0.1');
      expect(Number(containerPort)).toBe(config.port);
      hostPorts.push(hostPort!);
    }
    expect(volumes.size).toBe(CAIRN_NODES.length);
    expect(hostPorts).toEqual(['4437', '4438', '4439']);
    // No other service writes to a node's volume.
    for (const [name, service] of Object.entries(services)) {
      if (CAIRN_NODES.includes(name)) continue;
      for (const mount of (service['volumes'] as string[] | undefined) ?? []) expect(volumes.has(mount.split(':')[0]!), `${name}: ${mount}`).toBe(false);
    }
  });

  test('nodes are built from the repository Dockerfile and start after etcd is healthy and the bucket exists', () => {
    for (const node of CAIRN_NODES) {
      const service = services[node]!;
      const context = path.resolve(path.dirname(COMPOSE_FILE), service['build'].context);
      expect(context).toBe(REPOSITORY_ROOT);
      expect(existsSync(path.join(context, 'Dockerfile'))).toBe(true);
      expect(service['depends_on']).toEqual({
        ...Object.fromEntries(ETCD_MEMBERS.map((member) => [member, { condition: 'service_healthy' }])),
        'minio-init': { condition: 'service_completed_successfully' },
      });
    }
    expect(services['minio-init']!['depends_on']).toEqual({ minio: { condition: 'service_healthy' } });
  });

  test('health checks: readiness (/readyz) on each node, etcd and MinIO checked; stopping leaves time for a graceful leave', () => {
    for (const node of CAIRN_NODES) {
      const service = services[node]!;
      const { config } = resolveNode(node);
      const check = (service['healthcheck'].test as string[]).join(' ');
      expect(check).toContain(`http://127.0.0.1:${config.port}/readyz`);
      expect(seconds(service['stop_grace_period']) * 1000).toBeGreaterThanOrEqual(LEAVE_TIMEOUT_MS + SHUTDOWN_DRAIN_MS);
    }
    for (const name of [...ETCD_MEMBERS, 'minio']) expect(services[name]!['healthcheck']?.test, name).toBeDefined();
  });

  test('S3: every node uses MinIO, the bucket minio-init creates, and the MinIO credentials', () => {
    const minio = services['minio']!['environment'];
    for (const node of CAIRN_NODES) {
      const { config } = resolveNode(node);
      expect(config.s3Endpoint).toBe('http://minio:9000');
      expect(config.s3ForcePathStyle).toBe(true);
      expect(services['minio-init']!['command'].join(' ')).toContain(`mc mb --ignore-existing local/${config.s3Bucket}`);
      const env = services[node]!['environment'];
      expect(env.AWS_ACCESS_KEY_ID).toBe(minio.MINIO_ROOT_USER);
      expect(env.AWS_SECRET_ACCESS_KEY).toBe(minio.MINIO_ROOT_PASSWORD);
    }
  });

  test('the check itself: a misspelt flag or variable, or an invalid value, is refused', () => {
    const env = services['cairn-1']!['environment'] as Record<string, string>;
    expect(() => resolveServe(['--node-id', 'a', '--s3-buckett', 'x'], env)).toThrow(/--s3-buckett is not a flag/);
    expect(() => resolveServe([], { ...env, CAIRN_S3_BUKET: 'x' })).toThrow(/CAIRN_S3_BUKET is not a setting/);
    expect(() => resolveServe(['--advertise-url'], env)).toThrow(/needs a value/);
    expect(() => resolveServe(['--port', 'http'], env)).toThrow(/port/);
    // The cluster variables follow the table's naming rule.
    expect(envTwin('--cluster-etcd-endpoints')).toBe('CAIRN_CLUSTER_ETCD_ENDPOINTS');
  });
});
