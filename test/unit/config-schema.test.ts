/**
 * The settings table and its resolution: precedence flag > env > file > default, every error names
 * the key and the source, config files (YAML and JSON, unknown keys refused), redaction of secret
 * settings, and `cairn serve --help` listing every setting with its default, unit and variable.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { PORT_DEFAULT } from '../../src/config/limits.ts';
import { serveConfigDefaults, serveConfigSchema, serveSettings, type ServeConfig } from '../../src/config/serve-config.ts';
import type { WalDurability } from '../../src/wal/index.ts';
import {
  ConfigError,
  defaultText,
  flagToKey,
  longFlag,
  rangeOf,
  REDACTED,
  resolveConfig,
  setting,
  settingsObject,
  valueText,
  type ConfigSources,
  type Setting,
} from '../../src/config/settings.ts';
import { formatConfig } from '../../src/cli/config-command.ts';
import { addSettingOptions, resolveFromCommand } from '../../src/cli/config-options.ts';
import { serveCommand } from '../../src/cli/serve-command.ts';

function resolve(sources: Partial<ConfigSources>) {
  return resolveConfig(serveSettings, serveConfigSchema, { flags: {}, env: {}, ...sources });
}

function issuesOf(run: () => unknown): ConfigError['issues'] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

/** Parses argv with a fresh command carrying the setting options; returns the resolved config. */
function parseArgs(argv: string[], env: Record<string, string | undefined> = {}) {
  // No action: commander parses the options without running the preAction hook (which reads process.env).
  const command = addSettingOptions(new Command('t').exitOverride());
  command.parse(argv, { from: 'user' });
  return resolveFromCommand(command, env);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-config-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('the serve settings table', () => {
  it('every key is the camelCase of its flag, every env var is CAIRN_ + its flag in upper snake case', () => {
    for (const [key, entry] of Object.entries(serveSettings)) {
      expect(flagToKey(longFlag(entry))).toBe(key);
      expect(entry.env).toBe(`CAIRN_${longFlag(entry).slice(2).replaceAll('-', '_').toUpperCase()}`);
    }
  });

  it('keeps the defaults every existing caller relies on', () => {
    const { config, sources } = resolve({});
    expect(config).toEqual({
      host: '127.0.0.1',
      port: PORT_DEFAULT,
      dataDir: './data',
      durability: 'wal',
      longPollTimeoutMs: 20_000,
      appendBytesMax: 64 * 1024 * 1024,
      chunkBytesMax: 4 * 1024 * 1024,
      catchUpBytesMax: 64 * 1024 * 1024,
      sseReconnectMs: 60_000,
      liveReadersMax: 100_000,
      checkpointWalBytes: 256 * 1024 * 1024,
      walObjectFlushMs: 20,
      walObjectBytes: 8 * 1024 * 1024,
      objectStore: 'fs',
      workers: 1,
      segmentSizeBytes: 8 * 1024 * 1024,
      sealIdleMs: 30_000,
      unsealedAgeMsMax: 300_000,
      metadataFlushMs: 1_000,
      hotTailBudgetBytes: 512 * 1024 * 1024,
      segmentCacheBytes: 256 * 1024 * 1024,
      corsOrigins: '*',
      streamPathBytesMax: 1024,
      headerBytesMax: 16 * 1024,
      jsonDepthMax: 128,
      streamsMax: 2_000_000,
      liveReadersPerClientMax: 10_000,
      appendsPerSecondMax: 0,
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 300_000,
      bodyTimeoutMs: 60_000,
      idleTimeoutMs: 72_000,
      logLevel: 'info',
      logFormat: 'auto',
      // Subscriptions in the object store.
      subscriptionCursorFlushMs: 10_000,
      // The durable proxy (off until --proxy-signing-secret is set).
      proxyConnectTimeoutMs: 10_000,
      proxyFirstByteTimeoutMs: 60_000,
      proxyIdleTimeoutMs: 600_000,
      proxyTotalTimeoutMs: 3_600_000,
      proxyUpstreamsMax: 1000,
      proxyUpstreamsPerClientMax: 50,
      proxyUrlExpirySeconds: 86_400,
      // Cluster mode (off until --cluster-etcd-endpoints is set).
      clusterName: 'cairn',
      clusterSlotCount: 4096,
      clusterLeaseTtlMs: 10_000,
      clusterTakeover: 'manual',
    });
    expect(sources.port).toEqual({ kind: 'default' });
    expect(sources.s3Bucket).toEqual({ kind: 'unset' });
  });
});

describe('access control and limit settings', () => {
  it('--allow-unauthenticated is a switch: CAIRN_ALLOW_UNAUTHENTICATED=false leaves it off', () => {
    // The old commander `.env()` switch turned on for any non-empty value, "false" included.
    expect(resolve({ env: { CAIRN_ALLOW_UNAUTHENTICATED: 'false' } }).config.allowUnauthenticated).toBe(false);
    expect(resolve({ env: { CAIRN_ALLOW_UNAUTHENTICATED: '0' } }).config.allowUnauthenticated).toBe(false);
    expect(resolve({ env: { CAIRN_ALLOW_UNAUTHENTICATED: 'true' } }).config.allowUnauthenticated).toBe(true);
    expect(resolve({}).config.allowUnauthenticated).toBeUndefined();
    expect(parseArgs(['--allow-unauthenticated'], { CAIRN_ALLOW_UNAUTHENTICATED: 'false' }).config.allowUnauthenticated).toBe(true);
    expect(issuesOf(() => resolve({ env: { CAIRN_ALLOW_UNAUTHENTICATED: 'maybe' } }))[0]).toMatchObject({
      key: 'allowUnauthenticated',
      source: { kind: 'env', name: 'CAIRN_ALLOW_UNAUTHENTICATED' },
    });
  });

  it('--cors-origins: * or a list of origins, as text or (in a file) a list', async () => {
    expect(parseArgs(['--cors-origins', 'https://a.example, http://localhost:5173']).config.corsOrigins).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(resolve({ env: { CAIRN_CORS_ORIGINS: '*' } }).config.corsOrigins).toBe('*');
    const configPath = path.join(dir, 'cors.yaml');
    await writeFile(configPath, 'corsOrigins:\n  - https://a.example\ntrustProxy: 10.0.0.0/8, ::1\n');
    expect(parseArgs(['--config', configPath]).config).toMatchObject({ corsOrigins: ['https://a.example'], trustProxy: ['10.0.0.0/8', '::1'] });
    expect(issuesOf(() => resolve({ env: { CAIRN_CORS_ORIGINS: 'https://a.example/' } }))).toEqual([
      {
        key: 'corsOrigins',
        source: { kind: 'env', name: 'CAIRN_CORS_ORIGINS' },
        reason: '"https://a.example/" is not an origin (scheme://host[:port], no path or trailing slash)',
      },
    ]);
    expect(issuesOf(() => resolve({ file: { path: 'c.yaml', values: { corsOrigins: [] } } }))[0]?.reason).toBe('expected * or a comma-separated list of origins');
  });

  it('--trust-proxy, --auth-jwks-url and the limits are validated with the rules of the old flags', () => {
    expect(resolve({ flags: { trustProxy: '127.0.0.1,fd00::/8' } }).config.trustProxy).toEqual(['127.0.0.1', 'fd00::/8']);
    const issues = issuesOf(() =>
      resolve({
        flags: { trustProxy: '10.0.0.0/33', authJwksUrl: 'ftp://keys.example/jwks.json', headerBytesMax: '512' },
        env: { CAIRN_APPENDS_PER_SECOND_MAX: '-1', CAIRN_STREAM_PATH_BYTES_MAX: '65537' },
      }),
    );
    expect(Object.fromEntries(issues.map((issue) => [issue.key, issue.reason]))).toEqual({
      trustProxy: '"10.0.0.0/33" is not an IP address or CIDR range',
      authJwksUrl: 'expected an http(s) URL',
      headerBytesMax: 'expected a whole number from 1024 to 1048576',
      appendsPerSecondMax: 'expected a whole number from 0 to 10000000',
      streamPathBytesMax: 'expected a whole number from 1 to 65536',
    });
    expect(resolve({ env: { CAIRN_AUTH_JWKS_URL: 'https://idp.example/.well-known/jwks.json' } }).config.authJwksUrl).toBe(
      'https://idp.example/.well-known/jwks.json',
    );
  });

  it('config print redacts --auth-jwt-secret', () => {
    const resolved = resolve({ flags: { authJwtSecret: 'hunter2-jwt-secret' }, env: { CAIRN_AUTH_JWT_ISSUER: 'https://idp.example' } });
    expect(resolved.config.authJwtSecret).toBe('hunter2-jwt-secret');
    for (const format of ['yaml', 'json'] as const) {
      const text = formatConfig(serveSettings, resolved, format);
      expect(text).not.toContain('hunter2');
      expect(text).toContain(REDACTED);
      expect(text).toContain('https://idp.example');
    }
  });

  it('serveConfigDefaults is the configuration of no sources at all', () => {
    expect(serveConfigDefaults()).toEqual(resolve({}).config);
  });
});

describe('precedence: flag > env > file > default', () => {
  const file = { path: 'cairn.yaml', values: { port: 3000, logLevel: 'debug', dataDir: '/file', sealIdleMs: 5 } };

  it('each source wins over the ones below it, setting by setting', () => {
    const { config, sources } = resolve({
      flags: { port: '1000' },
      env: { CAIRN_PORT: '2000', CAIRN_LOG_LEVEL: 'warn', CAIRN_DATA_DIR: '' },
      file,
    });
    expect(config.port).toBe(1000);
    expect(sources.port).toEqual({ kind: 'flag', flag: '--port' });
    expect(config.logLevel).toBe('warn');
    expect(sources.logLevel).toEqual({ kind: 'env', name: 'CAIRN_LOG_LEVEL' });
    // An empty variable counts as unset, so the file's value stands.
    expect(config.dataDir).toBe('/file');
    expect(sources.dataDir).toEqual({ kind: 'file', path: 'cairn.yaml' });
    expect(config.sealIdleMs).toBe(5);
    expect(config.segmentSizeBytes).toBe(8 * 1024 * 1024);
    expect(sources.segmentSizeBytes).toEqual({ kind: 'default' });
  });

  it('through commander: a typed flag beats its variable, which beats --config, which beats the default', async () => {
    const configPath = path.join(dir, 'precedence.yaml');
    await writeFile(configPath, 'port: 3000\nhost: 0.0.0.0\nchunkBytesMax: 8192\ns3ForcePathStyle: false\n');
    const { config, sources } = parseArgs(['--port', '1000', '--config', configPath, '--s3-force-path-style'], {
      CAIRN_PORT: '2000',
      CAIRN_HOST: '::1',
    });
    expect(config.port).toBe(1000);
    expect(config.host).toBe('::1');
    expect(config.chunkBytesMax).toBe(8192);
    expect(sources.chunkBytesMax).toEqual({ kind: 'file', path: configPath });
    expect(config.s3ForcePathStyle).toBe(true);
    expect(config.liveReadersMax).toBe(100_000);
  });

  it('CAIRN_CONFIG names the file when --config is absent; JSON files work too', async () => {
    const configPath = path.join(dir, 'c.json');
    await writeFile(configPath, JSON.stringify({ port: 4444, durability: 'memory', retentionMs: 60000 }));
    const { config } = parseArgs([], { CAIRN_CONFIG: configPath });
    expect(config).toMatchObject({ port: 4444, durability: 'memory', retentionMs: 60_000 });
  });

  it('switch variables take true/false words', () => {
    expect(resolve({ env: { CAIRN_S3_FORCE_PATH_STYLE: 'false' } }).config.s3ForcePathStyle).toBe(false);
    expect(resolve({ env: { CAIRN_UNSAFE_ALLOW_OVERWRITES: '1' } }).config.unsafeAllowOverwrites).toBe(true);
  });
});

describe('invalid configuration names the key, the source and the reason', () => {
  it('a flag, a variable and a file value, each with the same rules', () => {
    const issues = issuesOf(() =>
      resolve({
        flags: { port: '70000' },
        env: { CAIRN_CHUNK_BYTES_MAX: '12kb', CAIRN_DURABILITY: 'fast' },
        file: { path: '/etc/cairn.yaml', values: { sealIdleMs: -5, host: 7, liveReadersMax: '0' } },
      }),
    );
    const byKey = Object.fromEntries(issues.map((issue) => [issue.key, issue]));
    expect(Object.keys(byKey).sort()).toEqual(['chunkBytesMax', 'durability', 'host', 'liveReadersMax', 'port', 'sealIdleMs']);
    expect(byKey.port).toMatchObject({ source: { kind: 'flag', flag: '--port' }, reason: 'expected a whole number from 0 to 65535' });
    expect(byKey.chunkBytesMax).toMatchObject({ source: { kind: 'env', name: 'CAIRN_CHUNK_BYTES_MAX' }, reason: 'expected a whole number, got "12kb"' });
    expect(byKey.durability?.reason).toBe('expected one of: wal, memory, object-store');
    expect(byKey.sealIdleMs).toMatchObject({ source: { kind: 'file', path: '/etc/cairn.yaml' }, reason: 'expected a whole number from 0 to 86400000' });
    expect(byKey.liveReadersMax?.reason).toBe('expected a whole number from 1 to 10000000');
    expect(byKey.host?.source).toEqual({ kind: 'file', path: '/etc/cairn.yaml' });
  });

  it('the message has one line per issue in the documented form', () => {
    const error = (() => {
      try {
        resolve({ flags: { port: 'x' }, env: { CAIRN_LOG_LEVEL: 'loud' } });
      } catch (caught) {
        return caught as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.message.split('\n')).toEqual([
      'invalid configuration: port (flag --port): expected a whole number, got "x"',
      'invalid configuration: logLevel (env CAIRN_LOG_LEVEL): expected one of: fatal, error, warn, info, debug, trace, silent',
    ]);
  });

  it('a cross-field rule: objectStore s3 without a bucket blames s3Bucket', () => {
    const issues = issuesOf(() => resolve({ env: { CAIRN_OBJECT_STORE: 's3' } }));
    expect(issues).toEqual([
      { key: 's3Bucket', source: { kind: 'unset' }, reason: 'required with objectStore s3 (--s3-bucket or CAIRN_S3_BUCKET)' },
    ]);
    expect(resolve({ env: { CAIRN_OBJECT_STORE: 's3', CAIRN_S3_BUCKET: 'b' } }).config.s3Bucket).toBe('b');
  });

  it('unknown config-file keys are errors naming the key, with a hint for kebab-case', async () => {
    const configPath = path.join(dir, 'unknown.yaml');
    await writeFile(configPath, 'chunk-bytes-max: 8192\nportt: 1\n');
    const issues = issuesOf(() => parseArgs(['--config', configPath]));
    expect(issues.map((issue) => issue.key)).toEqual(['chunk-bytes-max', 'portt']);
    expect(issues[0]?.reason).toContain('did you mean chunkBytesMax?');
    expect(issues[1]?.source).toEqual({ kind: 'file', path: configPath });
  });

  it('an unreadable or malformed file is an error on the key config, from its flag or variable', async () => {
    const missing = path.join(dir, 'missing.yaml');
    expect(issuesOf(() => parseArgs(['--config', missing]))[0]).toMatchObject({ key: 'config', source: { kind: 'flag', flag: '--config' } });
    const list = path.join(dir, 'list.yaml');
    await writeFile(list, '- 1\n- 2\n');
    expect(issuesOf(() => parseArgs([], { CAIRN_CONFIG: list }))[0]).toMatchObject({ key: 'config', source: { kind: 'env', name: 'CAIRN_CONFIG' } });
  });
});

describe('renamed settings: the old spellings still work for one release, with a warning', () => {
  const renamed = Object.entries(serveSettings as Record<string, Setting>).flatMap(([key, entry]) =>
    entry.formerly === undefined ? [] : [{ key, entry, former: entry.formerly }],
  );
  /** Two valid values other than the default: the old spelling gets one, the new the other. */
  const valuesOf = (entry: Setting) => {
    const min = rangeOf(entry)?.min ?? 0;
    return min === entry.default ? [min + 1, min + 2] : [min, min + 1];
  };

  it('covers every setting that put its qualifier first, and the per-IP live-reader limit', () => {
    expect(Object.fromEntries(renamed.map(({ key, former }) => [former.key, key]))).toEqual({
      maxAppendBytes: 'appendBytesMax',
      maxChunkBytes: 'chunkBytesMax',
      sealMaxAgeMs: 'unsealedAgeMsMax',
      maxStreamPathBytes: 'streamPathBytesMax',
      maxHeaderBytes: 'headerBytesMax',
      maxJsonDepth: 'jsonDepthMax',
      liveReadersPerIpMax: 'liveReadersPerClientMax',
    });
  });

  it('no key puts a qualifier before its unit or noun: Max and Min come last', () => {
    expect(Object.keys(serveSettings).filter((key) => /^(max|min)|(Max|Min)(?!$)/.test(key))).toEqual([]);
  });

  it('each old spelling is the camelCase key and CAIRN_ variable of its old flag, and names nothing current', () => {
    const current = new Set(Object.entries(serveSettings).flatMap(([key, entry]) => [key, longFlag(entry), entry.env]));
    for (const { former } of renamed) {
      expect(flagToKey(former.flag)).toBe(former.key);
      expect(former.env).toBe(`CAIRN_${former.flag.slice(2).replaceAll('-', '_').toUpperCase()}`);
      expect([former.key, former.flag, former.env].filter((name) => current.has(name))).toEqual([]);
    }
  });

  it('an old flag, variable or file key sets the new key, records its source, and warns once', () => {
    for (const { key, entry, former } of renamed) {
      const [value] = valuesOf(entry);
      const byFlag = resolve({ flags: { [former.key]: String(value) } });
      expect(byFlag.config[key as keyof typeof byFlag.config]).toBe(value);
      expect(byFlag.sources[key]).toEqual({ kind: 'flag', flag: former.flag });
      expect(byFlag.warnings).toEqual([`${former.flag} is deprecated; use ${longFlag(entry)}`]);

      const byEnv = resolve({ env: { [former.env]: String(value) } });
      expect(byEnv.config[key as keyof typeof byEnv.config]).toBe(value);
      expect(byEnv.sources[key]).toEqual({ kind: 'env', name: former.env });
      expect(byEnv.warnings).toEqual([`${former.env} is deprecated; use ${entry.env}`]);

      const byFile = resolve({ file: { path: 'old.yaml', values: { [former.key]: value } } });
      expect(byFile.config[key as keyof typeof byFile.config]).toBe(value);
      expect(byFile.sources[key]).toEqual({ kind: 'file', path: 'old.yaml' });
      expect(byFile.warnings).toEqual([`${former.key} (file old.yaml) is deprecated; use ${key}`]);
    }
  });

  it('given both spellings in one source, the new one wins and the warning says so', () => {
    for (const { key, entry, former } of renamed) {
      const [oldValue, newValue] = valuesOf(entry);
      const flags = resolve({ flags: { [former.key]: String(oldValue), [key]: String(newValue) } });
      expect(flags.config[key as keyof typeof flags.config]).toBe(newValue);
      expect(flags.sources[key]).toEqual({ kind: 'flag', flag: longFlag(entry) });
      expect(flags.warnings).toEqual([`${former.flag} is deprecated; use ${longFlag(entry)} (both given: ${longFlag(entry)} wins)`]);

      const env = resolve({ env: { [former.env]: String(oldValue), [entry.env]: String(newValue) } });
      expect(env.config[key as keyof typeof env.config]).toBe(newValue);
      expect(env.warnings).toEqual([`${former.env} is deprecated; use ${entry.env} (both given: ${entry.env} wins)`]);

      const file = resolve({ file: { path: 'both.yaml', values: { [key]: newValue, [former.key]: oldValue } } });
      expect(file.config[key as keyof typeof file.config]).toBe(newValue);
      expect(file.warnings).toEqual([`${former.key} (file both.yaml) is deprecated; use ${key} (both given: ${key} wins)`]);
    }
  });

  it('across sources the usual precedence holds: an old flag beats a new variable; an outranked old spelling says so', () => {
    const oldFlag = resolve({ flags: { maxAppendBytes: '2048' }, env: { CAIRN_APPEND_BYTES_MAX: '4096' } });
    expect(oldFlag.config.appendBytesMax).toBe(2048);
    expect(oldFlag.warnings).toEqual(['--max-append-bytes is deprecated; use --append-bytes-max']);
    const outranked = resolve({ flags: { appendBytesMax: '2048' }, env: { CAIRN_MAX_APPEND_BYTES: '4096' } });
    expect(outranked.config.appendBytesMax).toBe(2048);
    expect(outranked.warnings).toEqual(['CAIRN_MAX_APPEND_BYTES is deprecated; use CAIRN_APPEND_BYTES_MAX (ignored: flag --append-bytes-max wins)']);
  });

  it('new spellings alone give no warning; an empty old variable counts as unset', () => {
    expect(resolve({ flags: { appendBytesMax: '2048' }, env: { CAIRN_LIVE_READERS_PER_CLIENT_MAX: '3', CAIRN_MAX_JSON_DEPTH: '' } }).warnings).toEqual([]);
  });

  it('an invalid value under an old spelling names the new key and the old source', () => {
    expect(issuesOf(() => resolve({ env: { CAIRN_MAX_CHUNK_BYTES: '12' } }))).toEqual([
      { key: 'chunkBytesMax', source: { kind: 'env', name: 'CAIRN_MAX_CHUNK_BYTES' }, reason: 'expected a whole number from 1024 to 268435456' },
    ]);
  });

  it('through commander: old flags parse, hidden from --help', async () => {
    const configPath = path.join(dir, 'old-keys.yaml');
    await writeFile(configPath, 'sealMaxAgeMs: 1000\nliveReadersPerIpMax: 5\n');
    const { config, warnings } = parseArgs(['--max-header-bytes', '4096', '--live-readers-per-ip-max', '9', '--config', configPath], {
      CAIRN_MAX_STREAM_PATH_BYTES: '256',
    });
    expect(config).toMatchObject({ headerBytesMax: 4096, liveReadersPerClientMax: 9, unsealedAgeMsMax: 1000, streamPathBytesMax: 256 });
    // In table order, and within a setting flag, variable, file.
    expect(warnings).toEqual([
      `sealMaxAgeMs (file ${configPath}) is deprecated; use unsealedAgeMsMax`,
      'CAIRN_MAX_STREAM_PATH_BYTES is deprecated; use CAIRN_STREAM_PATH_BYTES_MAX',
      '--max-header-bytes is deprecated; use --header-bytes-max',
      '--live-readers-per-ip-max is deprecated; use --live-readers-per-client-max',
      `liveReadersPerIpMax (file ${configPath}) is deprecated; use liveReadersPerClientMax (ignored: flag --live-readers-per-ip-max wins)`,
    ]);
    const help = serveCommand().helpInformation();
    for (const { former } of renamed) expect(help).not.toContain(former.flag);
  });

  it('unknown config-file keys are still refused, with a did-you-mean for kebab case, old names and reordered words', () => {
    const issues = issuesOf(() =>
      resolve({ file: { path: 'typo.yaml', values: { 'max-append-bytes': 1, 'json-depth-max': 1, maxStreams: 1, live_readers_max: 1, portt: 1 } } }),
    );
    expect(Object.fromEntries(issues.map((issue) => [issue.key, issue.reason]))).toEqual({
      'max-append-bytes': 'unknown setting (did you mean appendBytesMax? keys are camelCase, units and qualifiers last)',
      'json-depth-max': 'unknown setting (did you mean jsonDepthMax? keys are camelCase, units and qualifiers last)',
      maxStreams: 'unknown setting (did you mean streamsMax? keys are camelCase, units and qualifiers last)',
      live_readers_max: 'unknown setting (did you mean liveReadersMax? keys are camelCase, units and qualifiers last)',
      portt: 'unknown setting (keys are camelCase, as `cairn config print` shows them)',
    });
  });
});

describe('cairn config print', () => {
  it('YAML notes each source and reads back as the same configuration', async () => {
    const resolved = resolve({ flags: { port: '1234' }, env: { CAIRN_SEAL_IDLE_MS: '0' } });
    const text = formatConfig(serveSettings, resolved, 'yaml');
    expect(text).toContain('port: 1234 # flag --port');
    expect(text).toContain('sealIdleMs: 0 # env CAIRN_SEAL_IDLE_MS');
    expect(text).toContain('host: 127.0.0.1 # default');
    expect(text).toMatch(/# not set: s3Bucket, /);
    const configPath = path.join(dir, 'printed.yaml');
    await writeFile(configPath, text);
    expect(parseArgs(['--config', configPath]).config).toEqual(resolved.config);
    expect(JSON.parse(formatConfig(serveSettings, resolved, 'json'))).toEqual(resolved.config);
  });

  it('lists (corsOrigins, trustProxy) carry their source too and read back', async () => {
    const resolved = resolve({ flags: { trustProxy: '10.0.0.0/8,::1' }, env: { CAIRN_CORS_ORIGINS: 'https://a.example' } });
    const text = formatConfig(serveSettings, resolved, 'yaml');
    expect(text).toContain('trustProxy: [ 10.0.0.0/8, ::1 ] # flag --trust-proxy');
    expect(text).toContain('corsOrigins: [ https://a.example ] # env CAIRN_CORS_ORIGINS');
    const configPath = path.join(dir, 'printed-lists.yaml');
    await writeFile(configPath, text);
    expect(parseArgs(['--config', configPath]).config).toEqual(resolved.config);
  });

  it('redacts every setting marked secret, whatever its source, in both formats', () => {
    // A table with a credential, as the auth settings will add (e.g. authJwtSecret).
    const table = {
      port: serveSettings.port,
      apiSecret: setting({ flag: '--api-secret <secret>', env: 'CAIRN_API_SECRET', schema: z.string().optional(), description: 'shared secret', secret: true }),
    };
    const resolved = resolveConfig(table, settingsObject(table), { flags: {}, env: { CAIRN_API_SECRET: 'hunter2-very-secret' } });
    expect(resolved.config.apiSecret).toBe('hunter2-very-secret');
    for (const format of ['yaml', 'json'] as const) {
      const text = formatConfig(table, resolved, format);
      expect(text).not.toContain('hunter2');
      expect(text).toContain(REDACTED);
    }
    // Unset secrets are simply absent.
    const unset = resolveConfig(table, settingsObject(table), { flags: {}, env: {} });
    expect(formatConfig(table, unset, 'json')).not.toContain(REDACTED);
  });
});

describe('cairn serve --help', () => {
  it('lists every setting with its flag, values/unit, default and variable', () => {
    const command = serveCommand();
    const help = command.helpInformation().replace(/\s+/g, ' ');
    for (const entry of Object.values(serveSettings)) {
      expect(help).toContain(entry.flag);
      expect(help).toContain(`[${valueText(entry)}] (default: ${defaultText(entry)}; env: ${entry.env})`);
    }
    expect(help).toContain('--config <path>');
    expect(help).toContain('[bytes, 1-134217728] (default: 67108864 (64 MiB); env: CAIRN_APPEND_BYTES_MAX)');
    expect(help).toContain('[ms, 1-3600000] (default: 20000; env: CAIRN_LONG_POLL_TIMEOUT_MS)');
  });
});

it('a YAML file with every setting parses to what config print shows', () => {
  // Sanity of the example in the README's Configuration section.
  const example = parseYaml('port: 4437\nobjectStore: s3\ns3Bucket: my-bucket\ns3ForcePathStyle: true\nretentionMs: 604800000\n') as Record<string, unknown>;
  const { config } = resolve({ file: { path: 'example.yaml', values: example } });
  expect(config).toMatchObject({ objectStore: 's3', s3Bucket: 'my-bucket', s3ForcePathStyle: true, retentionMs: 604_800_000 });
});

describe('durability', () => {
  it("the schema's durability values are exactly the local WAL's plus diskless (checked by the type checker)", () => {
    expectTypeOf<ServeConfig['durability']>().toEqualTypeOf<WalDurability | 'object-store'>();
  });
});
