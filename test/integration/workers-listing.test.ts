/**
 * `GET /v1/streams` with `cairn serve --workers 2` (README "Listing streams", "Workers"): streams
 * on both workers; walks by cursor with small pages, through the shared port and through each
 * worker's own listener in turn (so a cursor from one worker is used on the other, whichever
 * worker the kernel hands the port's connections to), list every stream exactly once, in path
 * order, for several prefixes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import { request, untilServed, walkListing } from '../support/listing-walk.ts';

const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-workers-listing-'));
/** Each worker's own listener (for peers' requests; it serves the same routes), from its log line on joining. */
const workerUrls = new Map<string, string>();
const server = new ChildServer({
  port: await freePort(),
  dataDir,
  args: ['--workers', '2', '--log-level', 'info'],
  onLine: (line) => {
    if (!line.includes('joined the cluster')) return;
    const { nodeId, advertiseUrl } = JSON.parse(line) as { nodeId: string; advertiseUrl: string };
    workerUrls.set(nodeId, advertiseUrl);
  },
});
const base = () => `http://127.0.0.1:${server.port}`;

const NAMES = [
  ...Array.from({ length: 14 }, (_, i) => `orders/${String(i).padStart(2, '0')}`),
  ...Array.from({ length: 6 }, (_, i) => `users/${i}`),
  'orders-archive',
  'ü/1',
];

beforeAll(() => server.start(120_000), 130_000);
afterAll(async () => {
  await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('GET /v1/streams with --workers 2', () => {
  it('lists the streams of both workers once, in path order, whichever worker answers each page', async () => {
    const owners = new Set<string>();
    for (const name of NAMES) {
      // A worker answers 503 until the primary's slot map reaches it (start() saw one worker ready).
      const created = await untilServed(() => request(base(), 'PUT', `/v1/stream/${encodeURI(name)}`, { 'content-type': 'text/plain' }, name));
      expect(created.status, created.body).toBe(201);
      owners.add(String(created.headers['cairn-node']));
    }
    expect(owners.size).toBe(2); // 22 paths over two workers by a hash: all on one has a chance of 2^-21

    for (let waits = 0; workerUrls.size < 2; waits++) {
      expect(waits, 'both workers logged joining').toBeLessThan(1_200);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(new Set(workerUrls.keys())).toEqual(owners);
    const [first, second] = [...workerUrls.values()] as [string, string];
    for (const prefix of ['', 'orders', 'orders/', 'users/', 'ü', 'none']) {
      const expected = NAMES.filter((name) => name.startsWith(prefix)).sort();
      for (const limit of [1, 3, 1000]) {
        for (const bases of [[base()], [first, second, base()], [second, first]]) {
          const walk = await walkListing(bases, prefix, limit);
          expect(walk.paths, `prefix ${prefix}, limit ${limit}, through ${bases.join(' ')}`).toEqual(expected);
          if (bases.length > 1 && expected.length > limit) expect(walk.nodes).toEqual(owners);
        }
      }
    }
  });
});
