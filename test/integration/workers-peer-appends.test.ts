/**
 * Appends forwarded between the workers of `cairn serve --workers 2` over the peer channel
 * (src/http/peer-appends.ts): the client gets what the owner's own HTTP route answers (status,
 * protocol headers, error bodies, `Cairn-Node`) for every outcome of an append, and an owner killed
 * with SIGKILL while forwarded appends wait on it loses none it acknowledged (each request is
 * answered, or fails: never left waiting). Requests are sent to each worker's peer listener, so
 * which worker receives them is chosen, not left to node:cluster.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort } from '../fault/support/child-server.ts';

interface Worker {
  pid: number;
  nodeId: string;
  url: string;
}

/** The workers by node id, as their latest "joined the cluster" log lines say. */
const workers = new Map<string, Worker>();
const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-peer-appends-'));
const server = new ChildServer({
  port: await freePort(),
  dataDir,
  args: ['--workers', '2', '--log-level', 'info', '--log-format', 'json'],
  onLine: (line) => {
    if (!line.startsWith('{')) return;
    const entry = JSON.parse(line) as { msg?: string; pid?: number; nodeId?: string; advertiseUrl?: string };
    if (entry.msg === 'joined the cluster' && entry.pid !== undefined && entry.nodeId !== undefined && entry.advertiseUrl !== undefined) {
      workers.set(entry.nodeId, { pid: entry.pid, nodeId: entry.nodeId, url: entry.advertiseUrl });
    }
  },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  await server.start(120_000);
  for (let waited = 0; workers.size < 2; waited++) {
    if (waited > 600) throw new Error('workers did not log joining');
    await sleep(100);
  }
}, 130_000);
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** The node owning `name`'s stream path (a HEAD answers with the owner's `Cairn-Node`, even a 404). */
async function ownerOf(name: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${server.port}/v1/stream/${name}`, { method: 'HEAD' });
  return response.headers.get('cairn-node') ?? '';
}

/**
 * Names not yet used whose streams the node `nodeId` owns, all of one length (the names appear in
 * bodies, so answers compared across two streams need equal `Content-Length`s).
 */
async function namesOwnedBy(nodeId: string, prefix: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; names.length < count; i++) {
    const name = `${prefix}-${String(i).padStart(6, '0')}`;
    if ((await ownerOf(name)) === nodeId) names.push(name);
  }
  return names;
}

/** The two workers: `[owner, other]` in a fixed order. */
function pair(): [Worker, Worker] {
  const [a, b] = [...workers.values()].sort((x, y) => x.nodeId.localeCompare(y.nodeId));
  return [a as Worker, b as Worker];
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Everything of an answer to a request on stream `name` but what differs between two streams or
 * two requests by nature: the date, the request id, the stream's name, its incarnation (the part
 * of an offset before `_`).
 */
async function answerOf(response: Response, name: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, header) => {
    if (header === 'date' || header === 'x-request-id') return;
    headers[header] = value.replaceAll(name, '{name}').replace(/^[0-9]+_/, '{incarnation}_');
  });
  return { status: response.status, headers, body: (await response.text()).replaceAll(name, '{name}') };
}

describe('appends forwarded over the peer channel', () => {
  it('answer what the owner\'s route answers, for every outcome of an append', async () => {
    const [owner, other] = pair();
    // Each step runs on two streams of the same owner: one sent to the owner itself (its route
    // answers), one sent to the other worker (forwarded over the channel).
    const [local, forwarded, missingLocal, missingForwarded] = await namesOwnedBy(owner.nodeId, 'same', 4);
    const steps: Array<{ what: string; create?: Record<string, string>; headers?: Record<string, string>; body?: string; missing?: boolean }> = [
      { what: 'create', create: { 'content-type': 'text/plain' } },
      { what: 'plain append', headers: { 'content-type': 'text/plain' }, body: 'one;' },
      { what: 'append without Content-Type', body: 'two;' },
      { what: 'producer, new', headers: { 'content-type': 'text/plain', 'producer-id': 'p', 'producer-epoch': '0', 'producer-seq': '0' }, body: 'three;' },
      { what: 'producer, duplicate', headers: { 'content-type': 'text/plain', 'producer-id': 'p', 'producer-epoch': '0', 'producer-seq': '0' }, body: 'three;' },
      { what: 'producer, gap', headers: { 'content-type': 'text/plain', 'producer-id': 'p', 'producer-epoch': '0', 'producer-seq': '5' }, body: 'x;' },
      { what: 'producer, stale epoch', headers: { 'content-type': 'text/plain', 'producer-id': 'q', 'producer-epoch': '1', 'producer-seq': '0' }, body: 'q;' },
      { what: 'producer, epoch fenced', headers: { 'content-type': 'text/plain', 'producer-id': 'q', 'producer-epoch': '0', 'producer-seq': '0' }, body: 'q;' },
      { what: 'content type mismatch', headers: { 'content-type': 'application/json' }, body: '[1]' },
      { what: 'Content-Type Fastify refuses', headers: { 'content-type': 'text/' }, body: 'x' },
      { what: 'Content-Type the route refuses', headers: { 'content-type': 'text/plain; charset="' }, body: 'x' },
      { what: 'Content-Type with parameters', headers: { 'content-type': 'TEXT/plain; charset=utf-8' }, body: 'y;' },
      { what: 'empty body', headers: { 'content-type': 'text/plain' }, body: '' },
      { what: 'Stream-Seq', headers: { 'content-type': 'text/plain', 'stream-seq': 'b' }, body: 'four;' },
      { what: 'Stream-Seq regression', headers: { 'content-type': 'text/plain', 'stream-seq': 'a' }, body: 'five;' },
      { what: 'append and close', headers: { 'content-type': 'text/plain', 'stream-closed': 'true' }, body: 'last;' },
      { what: 'append after close', headers: { 'content-type': 'text/plain' }, body: 'late;' },
      { what: 'close again', headers: { 'stream-closed': 'true' } },
      { what: 'missing stream', headers: { 'content-type': 'text/plain' }, body: 'x', missing: true },
    ];
    for (const step of steps) {
      const send = async (base: string, name: string) => {
        if (step.create !== undefined) return fetch(`${base}/v1/stream/${name}`, { method: 'PUT', headers: step.create });
        return fetch(`${base}/v1/stream/${name}`, { method: 'POST', headers: step.headers ?? {}, ...(step.body === undefined ? {} : { body: step.body }) });
      };
      const [directName, peerName] = (step.missing === true ? [missingLocal, missingForwarded] : [local, forwarded]) as [string, string];
      const direct = await answerOf(await send(owner.url, directName), directName);
      const viaPeer = await answerOf(await send(other.url, peerName), peerName);
      expect(viaPeer, step.what).toEqual(direct);
      expect(viaPeer.headers['cairn-node'], step.what).toBe(owner.nodeId);
    }
    const read = async (name: string) => (await fetch(`http://127.0.0.1:${server.port}/v1/stream/${name}?offset=-1`)).text();
    expect(await read(forwarded as string)).toBe(await read(local as string));
    // The appends took the channel: a worker's peer socket has a connection besides its listener
    // (Linux lists an accepted unix socket under its listener's path).
    const unix = await readFile('/proc/net/unix', 'utf8');
    const peerSockets = unix.split('\n').filter((line) => line.includes(path.join(dataDir, 'workers')) && line.endsWith('peer.sock'));
    expect(peerSockets.length, unix).toBeGreaterThan(2);
  });

  it('never lose an append the client saw acknowledged when the owner is killed mid-request', async () => {
    const [owner, other] = pair();
    const names = await namesOwnedBy(owner.nodeId, 'kill', 8);
    for (const name of names) expect((await fetch(`${other.url}/v1/stream/${name}`, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);
    const acknowledged = new Map<string, string[]>(names.map((name) => [name, []]));
    const outcomes = new Map<string, number>();
    let writing = true;
    // One sequential writer per stream, through the non-owner (every append crosses the channel).
    const writers = names.map(async (name) => {
      for (let i = 0; writing; i++) {
        const body = `${name}:${i};`;
        const response = await fetch(`${other.url}/v1/stream/${name}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body }).catch(() => undefined);
        const status = response?.status ?? 0;
        await response?.text();
        outcomes.set(String(status), (outcomes.get(String(status)) ?? 0) + 1);
        if (status === 204) acknowledged.get(name)?.push(body);
        else await sleep(20);
      }
    });
    await sleep(500);
    process.kill(owner.pid, 'SIGKILL');
    await sleep(1500);
    writing = false;
    await Promise.all(writers);
    // Every request ended: acknowledged (204) or refused while the owner was away (503).
    expect([...outcomes.keys()].filter((status) => status !== '204' && status !== '503'), JSON.stringify([...outcomes])).toEqual([]);
    // The owner is back (the primary restarts it on its own data directory) with every acknowledged append.
    for (const name of names) {
      let text = '';
      for (let attempt = 0; ; attempt++) {
        const response = await fetch(`http://127.0.0.1:${server.port}/v1/stream/${name}?offset=-1`);
        text = await response.text();
        if (response.status === 200) break;
        if (attempt > 600) throw new Error(`${name}: still ${response.status} after 60 s`);
        await sleep(100);
      }
      const bodies = text.split(';').filter(Boolean).map((body) => `${body};`);
      // In order, each once; a request that failed may or may not have been appended before the kill.
      let at = 0;
      for (const body of acknowledged.get(name) ?? []) {
        at = bodies.indexOf(body, at);
        expect(at, `${name}: acknowledged ${body} missing`).toBeGreaterThanOrEqual(0);
        at++;
      }
    }
  }, 120_000);
});
