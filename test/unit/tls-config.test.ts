/**
 * The TLS and HTTP/2 settings (README "TLS and HTTP/2"): flags and CAIRN_* variables resolve, the
 * certificate and key come together, h2c is refused with TLS, and a bad pair stops the start.
 */
import { describe, expect, it } from 'vitest';
import { serveConfigSchema, serveSettings } from '../../src/config/serve-config.ts';
import { ConfigError, resolveConfig, type ConfigIssue } from '../../src/config/settings.ts';
import { pino } from 'pino';
import { startServer } from '../../src/server.ts';
import { testConfig } from '../support/server.ts';
import { selfSignedCertificate } from '../support/tls.ts';

function resolve(flags: Record<string, string | boolean>, env: Record<string, string> = {}) {
  return resolveConfig(serveSettings, serveConfigSchema, { flags, env });
}

function issuesOf(run: () => unknown): ConfigIssue[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('TLS settings', () => {
  it('resolves the files from flags or CAIRN_* variables, and h2c as a switch', () => {
    expect(resolve({ tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem' }).config).toMatchObject({ tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem' });
    const fromEnv = resolve({}, { CAIRN_TLS_CERT_FILE: '/c.pem', CAIRN_TLS_KEY_FILE: '/k.pem' }).config;
    expect(fromEnv).toMatchObject({ tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem' });
    expect(resolve({}, { CAIRN_HTTP2_CLEARTEXT: 'true' }).config.http2Cleartext).toBe(true);
    expect(resolve({}).config.tlsCertFile).toBeUndefined();
  });

  it('needs both the certificate and the key', () => {
    expect(issuesOf(() => resolve({ tlsCertFile: '/c.pem' })).map((issue) => issue.key)).toEqual(['tlsKeyFile']);
    expect(issuesOf(() => resolve({ tlsKeyFile: '/k.pem' })).map((issue) => issue.key)).toEqual(['tlsCertFile']);
  });

  it('refuses h2c together with TLS', () => {
    const issues = issuesOf(() => resolve({ tlsCertFile: '/c.pem', tlsKeyFile: '/k.pem', http2Cleartext: true }));
    expect(issues.map((issue) => issue.key)).toEqual(['http2Cleartext']);
    expect(issues[0]?.reason).toMatch(/ALPN/);
  });

  it('does not start with a key that does not match the certificate', async () => {
    const [one, two] = await Promise.all([selfSignedCertificate(), selfSignedCertificate()]);
    // TLS is checked before the data directory is opened.
    const start = (tlsKeyFile: string) =>
      startServer(testConfig(`${one.dir}/data`, { tlsCertFile: one.certFile, tlsKeyFile }), { logger: pino({ level: 'silent' }) });
    await expect(start(two.keyFile)).rejects.toThrow(/TLS: .*do not load/);
    await expect(start(`${one.dir}/missing.pem`)).rejects.toThrow(/ENOENT/);
    await Promise.all([one.remove(), two.remove()]);
  });
});
