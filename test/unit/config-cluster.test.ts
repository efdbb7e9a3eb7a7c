/** The cluster settings (src/config/cluster-settings.ts): parsing and the rules between them. */
import { describe, expect, it } from 'vitest';
import { serveConfigSchema, serveSettings } from '../../src/config/serve-config.ts';
import { ConfigError, resolveConfig, type ConfigSources } from '../../src/config/settings.ts';

function resolve(env: Record<string, string>) {
  const sources: ConfigSources = { flags: {}, env };
  return resolveConfig(serveSettings, serveConfigSchema, sources);
}

function issueKeys(env: Record<string, string>): string[] {
  try {
    resolve(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.issues.map((issue) => issue.key);
    throw error;
  }
  return [];
}

describe('cluster settings', () => {
  it('are off by default and parse endpoints as a list of URLs', () => {
    expect(resolve({}).config.clusterEtcdEndpoints).toBeUndefined();
    const { config } = resolve({ CAIRN_CLUSTER_ETCD_ENDPOINTS: 'http://10.0.0.1:2379, https://etcd-2:2379', CAIRN_NODE_ID: 'node-1', CAIRN_ADVERTISE_URL: 'http://10.0.0.5:4437' });
    expect(config.clusterEtcdEndpoints).toEqual(['http://10.0.0.1:2379', 'https://etcd-2:2379']);
    expect(config).toMatchObject({ nodeId: 'node-1', advertiseUrl: 'http://10.0.0.5:4437', clusterName: 'cairn', clusterTakeover: 'manual' });
  });

  it('refuse malformed values and half-given pairs', () => {
    expect(issueKeys({ CAIRN_CLUSTER_ETCD_ENDPOINTS: 'etcd:2379' })).toEqual(['clusterEtcdEndpoints']);
    expect(issueKeys({ CAIRN_NODE_ID: 'a/b' })).toEqual(['nodeId']);
    expect(issueKeys({ CAIRN_CLUSTER_NAME: 'x y' })).toEqual(['clusterName']);
    expect(issueKeys({ CAIRN_CLUSTER_LEASE_TTL_MS: '500' })).toEqual(['clusterLeaseTtlMs']);
    expect(issueKeys({ CAIRN_CLUSTER_ETCD_CERT_FILE: '/c.pem' })).toEqual(['clusterEtcdKeyFile']);
    expect(issueKeys({ CAIRN_CLUSTER_ETCD_PASSWORD: 'pw' })).toEqual(['clusterEtcdUsername']);
  });

  it('mark the etcd password secret (redacted by config print)', () => {
    expect(serveSettings.clusterEtcdPassword.secret).toBe(true);
  });
});
