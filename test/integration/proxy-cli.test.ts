/**
 * `cairn proxy create` and `cairn tail` / `cairn read` on the capability URL it prints (README
 * "Durable proxy", "Command line"), as child processes against an in-process server and a
 * loopback mock upstream.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { sseToken, startMockUpstream, type MockUpstream } from '../support/mock-upstream.ts';
import { startProxyServer } from '../support/proxy.ts';
import type { TestServer } from '../support/server.ts';

const MAIN = path.resolve('src/cli/main.ts');

let upstream: MockUpstream;
let server: TestServer;
let dir: string;

beforeAll(async () => {
  upstream = await startMockUpstream();
  server = await startProxyServer(upstream);
  dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-proxy-cli-'));
});
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

function cairn(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

test('proxy create prints a capability URL that tail follows to the end of the answer', { timeout: 90_000 }, async () => {
  const created = await cairn(['proxy', 'create', `${upstream.origin}/sse?tokens=20&delayMs=30`, '--server', server.url]);
  expect(created.code, created.stderr).toBe(0);
  const capability = created.stdout.trim();
  expect(capability).toMatch(/\/v1\/proxy\/[0-9a-f-]{36}\?expires=\d+&signature=/);
  const tail = await cairn(['tail', capability, '--offset', '-1']);
  expect(tail.code, tail.stderr).toBe(0);
  expect(tail.stdout).toBe(Array.from({ length: 20 }, (_, i) => sseToken(i)).join(''));
});

test('--method, --header (Authorization goes upstream) and --data @file; read prints the answer', { timeout: 90_000 }, async () => {
  const file = path.join(dir, 'body.json');
  await writeFile(file, '{"prompt":"from a file"}');
  const created = await cairn([
    'proxy', 'create', `${upstream.origin}/echo`, '--server', server.url,
    '--method', 'PUT', '--header', 'Authorization: Bearer upstream-key', '--header', 'Content-Type: application/json', '--data', `@${file}`,
  ]);
  expect(created.code, created.stderr).toBe(0);
  const read = await cairn(['read', created.stdout.trim()]);
  expect(read.code, read.stderr).toBe(0);
  const echo = JSON.parse(read.stdout) as { method: string; headers: Record<string, string>; body: string };
  expect(echo.method).toBe('PUT');
  expect(echo.headers.authorization).toBe('Bearer upstream-key');
  expect(echo.body).toBe('{"prompt":"from a file"}');
});

test('an upstream error exits 6 (unavailable) with its status and body; a refused upstream exits 5', { timeout: 90_000 }, async () => {
  const failed = await cairn(['proxy', 'create', `${upstream.origin}/status?code=500`, '--server', server.url]);
  expect(failed.code).toBe(6);
  expect(failed.stderr).toContain('upstream answered 500');
  expect(failed.stderr).toContain('upstream says 500');
  const refused = await cairn(['proxy', 'create', 'https://example.com/', '--server', server.url]);
  expect(refused.code).toBe(5);
  expect(refused.stderr).toContain('403');
});
