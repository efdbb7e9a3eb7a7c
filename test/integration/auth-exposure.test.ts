/**
 * CORS origins (`--cors-origins`) and the refusal to serve a non-loopback host without auth,
 * with `cairn serve` as a child process (README "Authentication").
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

describe('--cors-origins', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ corsOrigins: ['https://app.example', 'http://localhost:5173'] });
  });
  afterAll(() => server?.stop());

  const preflight = (origin: string) =>
    fetch(`${server.url}/v1/stream/s`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' },
    });

  test('a configured origin is allowed (echoed, with Vary: Origin), with the protocol headers', async () => {
    const response = await preflight('https://app.example');
    expect(response.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(response.headers.get('vary')).toMatch(/Origin/i);
    expect(response.headers.get('access-control-allow-headers')).toMatch(/^Content-Type, Authorization, If-None-Match, Stream-TTL/);
    const get = await fetch(`${server.url}/v1/stream/s?offset=-1`, { headers: { origin: 'http://localhost:5173' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(get.headers.get('access-control-expose-headers')).toMatch(/Stream-Next-Offset/);
  });

  test('another origin gets no Access-Control-Allow-Origin (the browser refuses)', async () => {
    const response = await preflight('https://evil.example');
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${server.url}/v1/stream/s?offset=-1`, { headers: { origin: 'https://evil.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('non-loopback host', () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-exposure-'));
  });
  afterAll(() => rm(dataDir, { recursive: true, force: true }));

  /** Runs `cairn serve`, returns its exit code and output; stops it with SIGTERM once it listens. */
  function serve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string; listened: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, 'serve', '--port', '0', '--data-dir', dataDir, '--durability', 'memory', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
      });
      let output = '';
      let listened = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`cairn serve neither exited nor listened within 30 s:\n${output}`));
      }, 30_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (!listened && output.includes('cairn listening')) {
          listened = true;
          child.kill('SIGTERM');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, output, listened });
      });
    });
  }

  test('--host 0.0.0.0 without auth refuses to start, saying why and what to do', async () => {
    const result = await serve(['--host', '0.0.0.0']);
    expect(result.listened).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.output).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/);
    expect(result.output).toMatch(/--allow-unauthenticated/);
  });

  test('--allow-unauthenticated (or its variable) starts it', async () => {
    const flag = await serve(['--host', '0.0.0.0', '--allow-unauthenticated', '--log-level', 'info']);
    expect(flag.listened).toBe(true);
    expect(flag.code).toBe(0);
    const variable = await serve(['--host', '0.0.0.0', '--log-level', 'info'], { CAIRN_ALLOW_UNAUTHENTICATED: 'true' });
    expect(variable.listened).toBe(true);
  });

  test('CAIRN_ALLOW_UNAUTHENTICATED=false keeps the refusal (the variable is parsed, not just present)', async () => {
    const result = await serve(['--host', '0.0.0.0'], { CAIRN_ALLOW_UNAUTHENTICATED: 'false' });
    expect(result.listened).toBe(false);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/);
  });

  test('an invalid --cors-origins stops the start before it listens, naming the key and source (exit 2)', async () => {
    const result = await serve(['--host', '127.0.0.1'], { CAIRN_CORS_ORIGINS: 'https://app.example/' });
    expect(result.listened).toBe(false);
    expect(result.code).toBe(2);
    expect(result.output).toContain('cairn: invalid configuration: corsOrigins (env CAIRN_CORS_ORIGINS): "https://app.example/" is not an origin');
  });

  test('with a JWT secret it starts, and the secret is not in its log', async () => {
    const secret = 'do-not-log-this-secret-0123456789';
    const result = await serve(['--host', '0.0.0.0', '--auth-jwt-secret', secret, '--log-level', 'debug']);
    expect(result.listened).toBe(true);
    expect(result.output).toMatch(/"auth":"on"/);
    expect(result.output).not.toContain(secret);
  });

  test('an invalid tokens file stops the start with the file and the problem', async () => {
    const result = await serve(['--host', '127.0.0.1', '--auth-tokens-file', path.join(dataDir, 'absent.yaml')]);
    expect(result.listened).toBe(false);
    expect(result.code).toBe(1);
    expect(result.output).toMatch(/cannot read --auth-tokens-file .*absent\.yaml/);
  });
});
