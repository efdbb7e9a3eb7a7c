/**
 * `cairn serve --workers 2` as a user runs it (README "Workers"): one port, streams on both
 * workers, a worker killed with SIGKILL comes back on its own data directory with every
 * acknowledged append, and a changed worker count is refused.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort } from '../fault/support/child-server.ts';

const STREAMS = 24;
const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-workers-'));
const server = new ChildServer({ port: await freePort(), dataDir, args: ['--workers', '2'] });
const base = () => `http://127.0.0.1:${server.port}/v1/stream/w-`;
const text = { 'content-type': 'text/plain' };

/** The worker processes of the primary (from /proc). */
async function workerPids(): Promise<number[]> {
  const pid = server.pid ?? 0;
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
  return children.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** Retries a request answered 503 (a worker restarting), as clients do. */
async function untilServed(request: () => Promise<Response>): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    const response = await request().catch(() => undefined);
    if (response !== undefined && response.status !== 503) return response;
    await response?.text();
    if (attempt > 600) throw new Error('still 503 after 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(() => server.start(120_000), 130_000);
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('cairn serve --workers 2', () => {
  const appended = new Map<number, string[]>();

  it('serves streams owned by both workers through one port, naming the answering node', async () => {
    const nodes = new Set<string>();
    for (let i = 0; i < STREAMS; i++) {
      expect((await fetch(`${base()}${i}`, { method: 'PUT', headers: text })).status).toBe(201);
      const body = `first-${i};`;
      const append = await fetch(`${base()}${i}`, { method: 'POST', headers: text, body });
      expect(append.status).toBe(204);
      appended.set(i, [body]);
      const read = await fetch(`${base()}${i}?offset=-1`);
      expect(await read.text()).toBe(body);
      nodes.add(read.headers.get('cairn-node') ?? '');
    }
    expect([...nodes].every((node) => /^[0-9a-f]{12}$/.test(node))).toBe(true);
    expect(nodes.size).toBe(2); // 24 paths over two workers by a hash: all on one would have a chance of 2^-23
  });

  it('brings a worker killed with SIGKILL back with every acknowledged append', async () => {
    const [victim] = await workerPids();
    expect(victim).toBeGreaterThan(0);
    process.kill(victim as number, 'SIGKILL');
    for (let i = 0; i < STREAMS; i++) {
      const body = `second-${i};`;
      const append = await untilServed(() => fetch(`${base()}${i}`, { method: 'POST', headers: text, body }));
      expect(append.status).toBe(204);
      appended.get(i)?.push(body);
    }
    for (let i = 0; i < STREAMS; i++) {
      const read = await untilServed(() => fetch(`${base()}${i}?offset=-1`));
      expect(await read.text()).toBe(appended.get(i)?.join(''));
    }
    const after = await workerPids();
    expect(after).toHaveLength(2);
    expect(after).not.toContain(victim);
  });

  it('refuses the subscription APIs with 501 and a JSON error saying why (a worker sees only its own streams)', async () => {
    const root = `http://127.0.0.1:${server.port}/v1/stream/__ds`;
    const attempts = [
      fetch(`${root}/subscriptions/orders`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pattern: 'w-*', type: 'pull-wake', wake_stream: 'wake' }) }),
      fetch(`${root}/subscriptions/orders`),
      fetch(`${root}/jwks.json`),
    ];
    for (const response of await Promise.all(attempts)) {
      expect(response.status).toBe(501);
      const body = (await response.json()) as { error?: { code?: string; message?: string } };
      expect(body.error?.code).toBe('SUBSCRIPTIONS_NOT_IN_CLUSTER');
      expect(body.error?.message).toMatch(/single node/);
    }
    // Nothing was created as a stream under the reserved prefix either.
    expect((await fetch(`${root}/subscriptions/orders?offset=-1`)).status).toBe(501);
  });

  it('refuses to start with another number of workers, saying why', async () => {
    server.signal('SIGTERM');
    await server.waitExit();
    expect(server.lastExit?.code).toBe(0);
    server.args = ['--workers', '3'];
    await expect(server.start(60_000)).rejects.toThrow(/served with --workers 2/);
    server.args = ['--workers', '2'];
    await server.start(120_000);
    const read = await untilServed(() => fetch(`${base()}0?offset=-1`));
    expect(await read.text()).toBe(appended.get(0)?.join(''));
  });
});
