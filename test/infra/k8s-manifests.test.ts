/**
 * infra/k8s, the cluster's Kubernetes manifests, checked offline (no cluster here): every object
 * against the Kubernetes OpenAPI schemas bundled in `kubernetes-models` (its `validate()`, no network),
 * then what the schemas cannot see: selectors that match the pods' labels, named ports that exist,
 * etcd's static membership, each Cairn pod's settings as `cairn serve` resolves them (with the
 * downward-API variables expanded as the kubelet does), probes, volumes and the disruption budget.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, test } from 'vitest';
import { parseTokensFile } from '../../src/auth/tokens-file.ts';
import * as limits from '../../src/config/limits.ts';
import { SHUTDOWN_DRAIN_MS } from '../../src/config/limits.ts';
import { resolveServe } from './deploy-settings.ts';

const REPOSITORY_ROOT = path.resolve(import.meta.dirname, '../..');
const K8S_DIR = path.join(REPOSITORY_ROOT, 'infra/k8s');
/** A graceful leave (slots handed over) is bounded by this; until cluster mode's limits land, its documented 60 s. */
const LEAVE_TIMEOUT_MS = ((limits as Record<string, unknown>)['CLUSTER_LEAVE_TIMEOUT_MS'] as number | undefined) ?? 60_000;

type Json = Record<string, any>;

/** The models of the kinds the manifests use, by `apiVersion/kind`. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const kustomization = parse(readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8')) as Json;
const NAMESPACE = kustomization['namespace'] as string;

interface Manifest {
  file: string;
  object: Json;
}

const manifests: Manifest[] = (kustomization['resources'] as string[]).flatMap((file) =>
  parseAllDocuments(readFileSync(path.join(K8S_DIR, file), 'utf8')).map((document) => {
    expect(document.errors, file).toEqual([]);
    return { file, object: document.toJS() as Json };
  }),
);

function only(kind: string, name: string): Json {
  const found = manifests.filter(({ object }) => object['kind'] === kind && object['metadata']?.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0]!.object;
}

/** `$(VAR)` references expanded from `vars`, as the kubelet does in command, args and env values; unknown ones stay. */
function expand(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => vars[name] ?? whole);
}

/** The single container of a StatefulSet's pods. */
function containerOf(statefulSet: Json): Json {
  const containers = statefulSet['spec'].template.spec.containers as Json[];
  expect(containers).toHaveLength(1);
  return containers[0]!;
}

/** A container's port number by name. */
function portNumber(container: Json, name: string): number {
  const port = (container['ports'] as Json[]).find((candidate) => candidate['name'] === name);
  expect(port, `container port ${name}`).toBeDefined();
  return port!['containerPort'] as number;
}

/**
 * The environment of pod `podName`'s container as the kubelet builds it: envFrom ConfigMaps and
 * Secrets of these manifests, then `env` (which wins), with fieldRefs of the pod's name and
 * namespace and `$(VAR)` expanded from the variables defined before.
 */
function podEnvironment(container: Json, podName: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of (container['envFrom'] as Json[] | undefined) ?? []) {
    if (source['configMapRef'] !== undefined) Object.assign(env, only('ConfigMap', source['configMapRef'].name)['data']);
    if (source['secretRef'] !== undefined) Object.assign(env, only('Secret', source['secretRef'].name)['stringData']);
  }
  const fields: Record<string, string> = { 'metadata.name': podName, 'metadata.namespace': NAMESPACE };
  for (const variable of (container['env'] as Json[] | undefined) ?? []) {
    const fieldPath = variable['valueFrom']?.fieldRef?.fieldPath as string | undefined;
    if (fieldPath !== undefined) {
      expect(fields[fieldPath], fieldPath).toBeDefined();
      env[variable['name']] = fields[fieldPath]!;
    } else {
      expect(typeof variable['value'], variable['name']).toBe('string');
      env[variable['name']] = expand(variable['value'], env);
    }
  }
  return env;
}

/** The pods' labels include every label of the selector. */
function expectSelects(selector: Record<string, string>, labels: Record<string, string>, what: string) {
  expect(Object.keys(selector).length, what).toBeGreaterThan(0);
  for (const [key, value] of Object.entries(selector)) expect(labels[key], `${what}: ${key}`).toBe(value);
}

describe('infra/k8s', () => {
  test('kustomization: lists every manifest file, one namespace for all, the image named in the Cairn StatefulSet', () => {
    const files = readdirSync(K8S_DIR).filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml');
    expect([...(kustomization['resources'] as string[])].sort()).toEqual(files.sort());
    expect(only('Namespace', NAMESPACE)).toBeDefined();
    const images = (kustomization['images'] as Json[]).map((image) => image['name']);
    expect(images).toContain(containerOf(only('StatefulSet', 'cairn'))['image']);
    // The namespace comes from the kustomization: no manifest pins another.
    for (const { file, object } of manifests) expect(object['metadata']?.namespace, file).toBeUndefined();
  });

  test('every object is valid against the Kubernetes schema of its kind', () => {
    expect(manifests.length).toBeGreaterThan(0);
    for (const { file, object } of manifests) {
      const Model = MODELS[`${object['apiVersion']}/${object['kind']}`];
      expect(Model, `${file}: ${object['apiVersion']} ${object['kind']}`).toBeDefined();
      expect(() => new Model!(object).validate(), `${file}: ${object['kind']}/${object['metadata']?.name}`).not.toThrow();
    }
  });

  test('the schema check itself refuses a broken object', () => {
    const broken = structuredClone(only('StatefulSet', 'cairn'));
    broken['spec'].template.spec.containers[0].ports[0].containerPort = 'http';
    expect(() => new StatefulSet(broken).validate()).toThrow(/containerPort/);
  });

  test('Services, StatefulSets and PodDisruptionBudgets select the pods they mean, on ports that exist', () => {
    for (const name of ['etcd', 'cairn']) {
      const statefulSet = only('StatefulSet', name);
      const labels = statefulSet['spec'].template.metadata.labels as Record<string, string>;
      expectSelects(statefulSet['spec'].selector.matchLabels, labels, `StatefulSet ${name}`);
      expectSelects(only('PodDisruptionBudget', name)['spec'].selector.matchLabels, labels, `PodDisruptionBudget ${name}`);
      expect(only('PodDisruptionBudget', name)['spec'].maxUnavailable).toBe(1);
      // The governing Service is headless and publishes pods before they are ready (peers find each other at start).
      const governing = only('Service', statefulSet['spec'].serviceName);
      expect(governing['spec'].clusterIP).toBe('None');
      expect(governing['spec'].publishNotReadyAddresses).toBe(true);
      expectSelects(governing['spec'].selector, labels, `Service ${governing['metadata'].name}`);
      const container = containerOf(statefulSet);
      for (const port of governing['spec'].ports as Json[]) expect(portNumber(container, port['targetPort'])).toBe(port['port']);
    }
    const clients = only('Service', 'cairn');
    expect(clients['spec'].type).toBe('ClusterIP');
    expect(clients['spec'].clusterIP).toBeUndefined();
    expectSelects(clients['spec'].selector, only('StatefulSet', 'cairn')['spec'].template.metadata.labels, 'Service cairn');
    for (const port of clients['spec'].ports as Json[]) expect(portNumber(containerOf(only('StatefulSet', 'cairn')), port['targetPort'])).toBe(port['port']);
  });

  test('etcd: 3 members started together, each on its own volume, a static initial cluster of exactly its pods', () => {
    const statefulSet = only('StatefulSet', 'etcd');
    const replicas = statefulSet['spec'].replicas as number;
    expect(replicas).toBe(3);
    expect(statefulSet['spec'].podManagementPolicy).toBe('Parallel');
    const container = containerOf(statefulSet);
    expect(container['image']).toMatch(/^(quay\.io\/coreos\/etcd:v3\.5\.\d+|bitnami\/etcd:3\.5\.\d+)$/);
    const peerPort = portNumber(container, 'peer');
    const clientPort = portNumber(container, 'client');
    const members = new Map<string, string>();
    for (let ordinal = 0; ordinal < replicas; ordinal += 1) {
      const pod = `etcd-${ordinal}`;
      const env = podEnvironment(container, pod);
      const flags = new Map(
        (container['command'] as string[]).filter((arg) => arg.startsWith('--')).map((arg) => {
          const expanded = expand(arg, env);
          return [expanded.slice(0, expanded.indexOf('=')), expanded.slice(expanded.indexOf('=') + 1)];
        }),
      );
      expect(flags.get('--name')).toBe(pod);
      expect(flags.get('--initial-cluster-state')).toBe('new');
      expect(flags.get('--advertise-client-urls')).toBe(`http://${pod}.etcd.${NAMESPACE}.svc:${clientPort}`);
      members.set(pod, flags.get('--initial-advertise-peer-urls')!);
      expect(members.get(pod)).toBe(`http://${pod}.etcd.${NAMESPACE}.svc:${peerPort}`);
      const listed = new Map(flags.get('--initial-cluster')!.split(',').map((entry) => entry.split('=') as [string, string]));
      expect(listed.get(pod)).toBe(members.get(pod));
      expect([...listed.keys()]).toEqual(Array.from({ length: replicas }, (_, index) => `etcd-${index}`));
      // The data directory is inside the claimed volume.
      const mount = (container['volumeMounts'] as Json[]).find((candidate) => candidate['name'] === 'data');
      expect(flags.get('--data-dir')!.startsWith(`${mount!['mountPath']}/`)).toBe(true);
    }
    expect(statefulSet['spec'].volumeClaimTemplates.map((claim: Json) => claim['metadata'].name)).toEqual(['data']);
    expect(container['readinessProbe']).toBeDefined();
    expect(container['livenessProbe']).toBeDefined();
  });

  test('Cairn: each pod is a node named after itself, advertised at its peer DNS name, with every etcd member as endpoint', () => {
    const statefulSet = only('StatefulSet', 'cairn');
    const etcd = only('StatefulSet', 'etcd');
    const etcdClientPort = portNumber(containerOf(etcd), 'client');
    const container = containerOf(statefulSet);
    expect(statefulSet['spec'].replicas).toBe(3);
    for (let ordinal = 0; ordinal < statefulSet['spec'].replicas; ordinal += 1) {
      const pod = `cairn-${ordinal}`;
      const env = podEnvironment(container, pod);
      const command = (container['command'] as string[]).map((arg) => expand(arg, env));
      expect(command.slice(0, 3)).toEqual(['node', 'src/cli/main.ts', 'serve']);
      expect(command.join(' '), 'every $(VAR) is defined').not.toMatch(/\$\(/);
      const { config, cluster } = resolveServe(command.slice(3), env);
      expect(config.host).toBe('0.0.0.0');
      expect(portNumber(container, 'http')).toBe(config.port);
      expect(cluster['--node-id']).toBe(pod);
      expect(cluster['--advertise-url']).toBe(`http://${pod}.${statefulSet['spec'].serviceName}.${NAMESPACE}.svc:${config.port}`);
      expect(cluster['--cluster-etcd-endpoints']?.split(',')).toEqual(
        Array.from({ length: etcd['spec'].replicas }, (_, index) => `http://etcd-${index}.etcd.${NAMESPACE}.svc:${etcdClientPort}`),
      );
      expect(config.objectStore).toBe('s3');
      expect(config.s3Bucket).toBeDefined();
      expect(env['AWS_ACCESS_KEY_ID']).toBeDefined();
      expect(env['AWS_SECRET_ACCESS_KEY']).toBeDefined();
      // Authentication on, never --allow-unauthenticated.
      expect(config.allowUnauthenticated).not.toBe(true);
      expect(config.authTokensFile).toBeDefined();
    }
  });

  test('Cairn: one claimed volume per pod at the data dir, kept when pods go; the tokens file comes from the auth Secret and parses', () => {
    const statefulSet = only('StatefulSet', 'cairn');
    const container = containerOf(statefulSet);
    const env = podEnvironment(container, 'cairn-0');
    const { config } = resolveServe((container['command'] as string[]).slice(3).map((arg) => expand(arg, env)), env);
    const claims = statefulSet['spec'].volumeClaimTemplates as Json[];
    expect(claims.map((claim) => claim['metadata'].name)).toEqual(['data']);
    expect(claims[0]!['spec'].accessModes).toEqual(['ReadWriteOnce']);
    const mounts = container['volumeMounts'] as Json[];
    expect(mounts.find((mount) => mount['name'] === 'data')?.mountPath).toBe(config.dataDir);
    expect(statefulSet['spec'].persistentVolumeClaimRetentionPolicy).toEqual({ whenDeleted: 'Retain', whenScaled: 'Retain' });
    // The tokens file: a key of the Secret mounted read-only, accepted by Cairn's parser.
    const authMount = mounts.find((mount) => config.authTokensFile!.startsWith(`${mount['mountPath']}/`));
    expect(authMount?.readOnly).toBe(true);
    const volume = (statefulSet['spec'].template.spec.volumes as Json[]).find((candidate) => candidate['name'] === authMount!['name']);
    const secret = only('Secret', volume!['secret'].secretName);
    const key = path.posix.relative(authMount!['mountPath'], config.authTokensFile!);
    expect(parseTokensFile(secret['stringData'][key], key).size).toBeGreaterThan(0);
    expect(only('ServiceAccount', statefulSet['spec'].template.spec.serviceAccountName)).toBeDefined();
  });

  test('Cairn: readiness on /readyz, liveness on /healthz after a start-up allowance, time for a graceful leave, non-root', () => {
    const statefulSet = only('StatefulSet', 'cairn');
    const pod = statefulSet['spec'].template.spec;
    const container = containerOf(statefulSet);
    expect(container['readinessProbe'].httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container['livenessProbe'].httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container['startupProbe'].httpGet).toEqual({ path: '/healthz', port: 'http' });
    // WAL recovery and waiting out a previous registration's lease happen before the port opens.
    expect(container['startupProbe'].periodSeconds * container['startupProbe'].failureThreshold).toBeGreaterThanOrEqual(300);
    expect(pod['terminationGracePeriodSeconds'] * 1000).toBeGreaterThanOrEqual(LEAVE_TIMEOUT_MS + SHUTDOWN_DRAIN_MS);
    expect(pod['securityContext'].runAsNonRoot).toBe(true);
    expect(pod['securityContext'].fsGroup).toBe(pod['securityContext'].runAsUser);
    expect(statefulSet['spec'].updateStrategy.type).toBe('RollingUpdate');
  });
});
