/**
 * `GET /v1/streams` with `cairn serve --workers 2` (README "Listing streams", "Workers"): streams
 * on both workers; whichever worker a connection reaches, walks by cursor with small pages list
 * every stream exactly once, in path order, for several prefixes, and both workers answer pages
 * of the same walk (a cursor from one worker works on the other).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import { request, walkListing } from '../support/listing-walk.ts';

const dataDir = await mkdtemp(path.join(tmpdir(), 'cairn-workers-listing-'));
const server = new ChildServer({ port: await freePort(), dataDir, args: ['--workers', '2'] });
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
      const created = await request(base(), 'PUT', `/v1/stream/${encodeURI(name)}`, { 'content-type': 'text/plain' }, name);
      expect(created.status, created.body).toBe(201);
      owners.add(String(created.headers['cairn-node']));
    }
    expect(owners.size).toBe(2); // 22 paths over two workers by a hash: all on one has a chance of 2^-21

    const answered = new Set<string>();
    for (const prefix of ['', 'orders', 'orders/', 'users/', 'ü', 'none']) {
      const expected = NAMES.filter((name) => name.startsWith(prefix)).sort();
      for (const limit of [1, 3, 1000]) {
        const walk = await walkListing([base()], prefix, limit);
        expect(walk.paths, `prefix ${prefix}, limit ${limit}`).toEqual(expected);
        for (const node of walk.nodes) answered.add(node);
      }
    }
    // Each page is a new connection, spread over the workers by the primary: both answered pages.
    expect(answered).toEqual(owners);
  });
});
