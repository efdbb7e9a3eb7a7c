/**
 * `GET /v1/streams` for multi-node tests (README "Listing streams"): one page from one node, and a
 * walk by cursor that asks a node picked per page, so a cursor one node returned is used on others.
 * Each request is a connection of its own (`agent: false`), so that with `--workers` the primary
 * spreads them over the workers instead of a kept-alive connection pinning one.
 */
import http from 'node:http';
import { expect } from 'vitest';

export interface ListPage {
  streams: { path: string; contentType: string; nextOffset: string; closed: boolean }[];
  nextCursor: string | null;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection to `base` (`http://127.0.0.1:<port>`). */
export function request(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: url.hostname, port: url.port, method, path: `${url.pathname}${url.search}`, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    outgoing.setTimeout(60_000, () => outgoing.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** One listing page from `base`; expects a 200. @returns the page and the node that answered. */
export async function listPage(base: string, query: { prefix: string; limit: number; cursor: string | null }, headers: Record<string, string> = {}): Promise<{ page: ListPage; node: string }> {
  const search = new URLSearchParams({ prefix: query.prefix, limit: String(query.limit), cursor: query.cursor ?? '' });
  const answer = await request(base, 'GET', `/v1/streams?${search.toString()}`, headers);
  expect(answer.status, answer.body).toBe(200);
  return { page: JSON.parse(answer.body) as ListPage, node: String(answer.headers['cairn-node']) };
}

/**
 * Every path of a listing, following the cursor with pages of `limit`; page `i` is asked of
 * `bases[i % bases.length]`. @returns the paths in the order listed, and the nodes that answered.
 */
export async function walkListing(bases: string[], prefix: string, limit: number, headers: Record<string, string> = {}): Promise<{ paths: string[]; nodes: Set<string> }> {
  const paths: string[] = [];
  const nodes = new Set<string>();
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    expect(pages).toBeLessThan(1_000);
    const { page, node }: { page: ListPage; node: string } = await listPage(bases[pages % bases.length] as string, { prefix, limit, cursor }, headers);
    expect(page.streams.length).toBeLessThanOrEqual(limit);
    paths.push(...page.streams.map((stream) => stream.path));
    nodes.add(node);
    cursor = page.nextCursor;
    if (cursor === null) return { paths, nodes };
  }
}

/** Sends a request until it is not refused for now (503: a slot map or a slot settling), as clients do. */
export async function untilServed(send: () => Promise<Answer>): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const answer = await send();
    if (answer.status !== 503) return answer;
    if (attempt >= 300) throw new Error(`still 503 after ${attempt} attempts: ${answer.body}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
