/**
 * `GET /v1/streams` across a cluster (README "Listing streams", docs/cluster.md "Listing"): three
 * `cairn serve` nodes over a real 3-member etcd, auth on. Streams (forks among them, which live
 * with their sources) land on all three nodes; walks by cursor through each node, a different
 * node per page, list every stream exactly once, in path order, for several prefixes and page
 * sizes; entries carry the owner's data; a token sees only what it may read; a paused node (no
 * answer within the node timeout) and a stopped one make the listing 503 + Retry-After naming
 * it, never a partial page.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { slotOf, rendezvousAssignment } from '../../src/cluster/slots.ts';
import { CLUSTER_SLOT_COUNT_DEFAULT } from '../../src/config/limits.ts';
import { useClusterUnderTest } from '../support/cluster-front.ts';
import { etcdAvailable } from '../support/etcd.ts';
import { writeTokensFile } from '../support/tokens-file.ts';
import { listPage, request, untilServed, walkListing, type Answer } from '../support/listing-walk.ts';

const TOKENS = { admin: 'admin-token-0123456789abcdef', readerA: 'reader-a-token-0123456789' };
const admin = { authorization: `Bearer ${TOKENS.admin}` };
const readerA = { authorization: `Bearer ${TOKENS.readerA}` };
const NODE_IDS = ['n1', 'n2', 'n3'];

const tokenDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-cluster-listing-'));
const tokensFile = path.join(tokenDir, 'tokens.yaml');
await writeTokensFile(tokensFile, [
  { name: 'admin', token: TOKENS.admin, grants: [{ paths: ['**'], operations: ['read', 'write', 'delete'] }] },
  { name: 'reader-a', token: TOKENS.readerA, grants: [{ paths: ['tenant-a/**'], operations: ['read'] }] },
]);
afterAll(() => rm(tokenDir, { recursive: true, force: true }));

const run = etcdAvailable();
const running = run
  ? useClusterUnderTest({ size: 3, name: `listing-${process.pid}`, extraArgs: ['--auth-tokens-file', tokensFile], probeAuthorization: admin.authorization })
  : () => {
      throw new Error('etcd is not installed');
    };

/** The owner of `path`'s slot in the converged map of the three nodes. */
const target = rendezvousAssignment(CLUSTER_SLOT_COUNT_DEFAULT, NODE_IDS);
const ownerOf = (streamPath: string) => target[slotOf(streamPath, CLUSTER_SLOT_COUNT_DEFAULT)] as string;

const SOURCES = Array.from({ length: 6 }, (_, i) => `tenant-b/${i}`);
const FORKS = SOURCES.map((_, i) => `tenant-a/fork-${i}`);
const PLAIN = [
  ...Array.from({ length: 12 }, (_, i) => `tenant-a/x/${String(i).padStart(2, '0')}`),
  ...Array.from({ length: 5 }, (_, i) => `tenant-a/y/${i}`),
  'tenant-a/é',
  ...SOURCES,
  'zeta-1',
  'zeta-2',
];
const ALL = [...PLAIN, ...FORKS].sort();

describe.runIf(run)('GET /v1/streams on a 3-node cluster', () => {
  const bases = () => running().cluster.nodes.map((node) => `http://127.0.0.1:${node.port}`);
  const hosts = new Map<string, string>();

  it('creates streams on every node (forks with their sources)', async () => {
    const nodes = bases();
    for (const [i, name] of PLAIN.entries()) {
      const created = await untilServed(() => request(nodes[i % 3] as string, 'PUT', `/v1/stream/${encodeURI(name)}`, { ...admin, 'content-type': 'text/plain' }, `hello ${name}`));
      expect(created.status, created.body).toBe(201);
      hosts.set(name, String(created.headers['cairn-node']));
    }
    for (const [i, name] of FORKS.entries()) {
      const headers = { ...admin, 'content-type': 'text/plain', 'stream-forked-from': `/v1/stream/${SOURCES[i]}` };
      const created = await untilServed(() => request(nodes[i % 3] as string, 'PUT', `/v1/stream/${name}`, headers));
      expect(created.status, created.body).toBe(201);
      hosts.set(name, String(created.headers['cairn-node']));
    }
    // The owner of each stream's host slot answered its create: the test's model of the map holds.
    for (const name of PLAIN) expect(hosts.get(name)).toBe(ownerOf(name));
    FORKS.forEach((name, i) => expect(hosts.get(name)).toBe(ownerOf(SOURCES[i] as string)));
    expect(new Set(hosts.values())).toEqual(new Set(NODE_IDS));
    // Some fork's own path hashes to another node than the one holding it: it must still be listed once.
    expect(FORKS.some((name) => ownerOf(name) !== hosts.get(name))).toBe(true);
  });

  it('lists every stream once, in path order, through any node, a cursor from one node working on the others', async () => {
    const nodes = bases();
    const prefixes = ['', 'tenant-a/', 'tenant-a/x/', 'tenant-a/fork-', 'tenant-b/', 'zeta', 'none/'];
    for (const prefix of prefixes) {
      const expected = ALL.filter((name) => name.startsWith(prefix));
      for (const limit of [1, 2, 5, 1000]) {
        for (let first = 0; first < 3; first++) {
          const order = [...nodes.slice(first), ...nodes.slice(0, first)];
          const { paths, nodes: answered } = await walkListing(order, prefix, limit, admin);
          expect(paths, `prefix ${prefix}, limit ${limit}, from node ${first + 1}`).toEqual(expected);
          if (Math.ceil(expected.length / limit) >= 3) expect(answered).toEqual(new Set(NODE_IDS));
        }
      }
    }
  });

  it('gives each stream its owner\'s entry, and a full page a cursor', async () => {
    const nodes = bases();
    const name = PLAIN.find((candidate) => hosts.get(candidate) === 'n2') as string;
    const appended = await untilServed(() => request(nodes[1] as string, 'POST', `/v1/stream/${encodeURI(name)}`, { ...admin, 'content-type': 'text/plain' }, 'more bytes'));
    expect(appended.status, appended.body).toBe(204);
    const head = await request(nodes[1] as string, 'HEAD', `/v1/stream/${encodeURI(name)}`, admin);
    const { page } = await listPage(nodes[0] as string, { prefix: name, limit: 10, cursor: null }, admin);
    expect(page).toEqual({ streams: [{ path: name, contentType: 'text/plain', nextOffset: head.headers['stream-next-offset'], closed: false }], nextCursor: null });
    const full = await listPage(nodes[2] as string, { prefix: '', limit: 3, cursor: null }, admin);
    expect(full.page.streams.map((stream) => stream.path)).toEqual(ALL.slice(0, 3));
    expect(Buffer.from(full.page.nextCursor ?? '', 'base64url').toString('utf8')).toBe(ALL[2]);
  });

  it('shows a token only what it may read, from every node; 401 without one; 400 for a cursor it did not make', async () => {
    const nodes = bases();
    const readable = ALL.filter((name) => name.startsWith('tenant-a/'));
    for (let first = 0; first < 3; first++) {
      const order = [...nodes.slice(first), ...nodes.slice(0, first)];
      expect((await walkListing(order, '', 2, readerA)).paths).toEqual(readable);
      expect((await walkListing(order, 'tenant-b/', 2, readerA)).paths).toEqual([]);
    }
    for (const base of nodes) {
      expect((await request(base, 'GET', '/v1/streams')).status).toBe(401);
      expect((await request(base, 'GET', '/v1/streams?cursor=%2F%2F', admin)).status).toBe(400);
    }
  });

  it('answers 503 + Retry-After naming a node that does not answer in time (paused), then lists again once it resumes', async () => {
    const { cluster } = running();
    const nodes = bases();
    cluster.nodes[1]!.signal('SIGSTOP');
    try {
      const answer = await request(nodes[0] as string, 'GET', '/v1/streams?limit=1000', admin);
      expect(answer.status, answer.body).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      expect(answer.body).toMatch(/node n2 did not answer within \d+ ms/);
    } finally {
      cluster.nodes[1]!.signal('SIGCONT');
    }
    const deadline = performance.now() + 120_000;
    for (;;) {
      const answer = await request(nodes[0] as string, 'GET', '/v1/streams?limit=1000', admin);
      if (answer.status === 200) {
        expect((JSON.parse(answer.body) as { streams: { path: string }[] }).streams.map((stream) => stream.path)).toEqual(ALL);
        break;
      }
      expect(performance.now(), answer.body).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }, 180_000);

  it('answers 503 + Retry-After naming a stopped node, never a partial page', async () => {
    const { cluster } = running();
    const nodes = bases();
    await cluster.nodes[2]!.stop(); // SIGKILL: n3's lease runs out later (its slots stay its own)
    const refused = async (base: string): Promise<Answer> => {
      const answer = await request(base, 'GET', '/v1/streams?limit=1000', admin);
      expect(answer.status, answer.body).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      expect(answer.body).toContain('n3');
      return answer;
    };
    // While n3 is registered: not reachable. Once each node has seen its lease expire: not live.
    for (const base of nodes.slice(0, 2)) await refused(base);
    const deadline = performance.now() + 120_000;
    for (const base of nodes.slice(0, 2)) {
      while (!(await refused(base)).body.includes('owner n3 is not live')) {
        expect(performance.now()).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }, 180_000);
});
