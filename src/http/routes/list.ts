/**
 * GET /v1/streams?prefix=…&cursor=…&limit=… — the streams whose path starts with `prefix` and
 * which the caller may read, ascending by path, one page at a time (README "Listing streams"):
 * this node's on a single node; in cluster mode (etcd, or `--workers`) every node's, merged by
 * ../cluster-listing.ts. Not part of the protocol (PROTOCOL.md leaves discovery to servers).
 *
 * 200 `{"streams":[{"path","contentType","nextOffset","closed"}…],"nextCursor":string|null}`;
 * `nextOffset` is the durable tail, as HEAD's `Stream-Next-Offset`. `nextCursor` is opaque
 * (the last path, base64url): pass it back as `cursor` for the next page; null on the last page.
 * `limit` defaults to STREAM_LIST_PAGE_SIZE_DEFAULT, at most STREAM_LIST_PAGE_SIZE_MAX.
 * Errors: 400 for a bad `limit` or `cursor`, 401 as every stream route when auth is on, 503 +
 * Retry-After in cluster mode when a node holding streams does not answer (ClusterUnavailableError).
 * A path the token cannot read is left out, exactly as if it did not exist (no 403: that would
 * tell which hidden paths exist).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.ts';
import { STREAM_LIST_PAGE_SIZE_DEFAULT, STREAM_LIST_PAGE_SIZE_MAX } from '../../config/limits.ts';
import { CACHE_CONTROL_NO_STORE } from '../../protocol/caching.ts';
import { BadRequestError } from '../../protocol/errors.ts';
import type { HttpContext } from '../context.ts';
import { readCheckOf } from '../read-grants.ts';
import { queryParam } from './read.ts';
import { PROXY_PATH_PREFIX } from '../../proxy/proxy-streams.ts';
import type { StreamListQuery } from '../../stream/registry.ts';
import type { ClusterListing, StreamListEntriesPage } from '../cluster-listing.ts';
import { FORWARDED_BY_HEADER } from '../forwarding.ts';

export const STREAM_LIST_PATH = '/v1/streams';

/** One entry of a listing page. */
export interface StreamListEntry {
  path: string;
  contentType: string;
  /** Durable tail offset token (what a reader from `-1` would reach). */
  nextOffset: string;
  closed: boolean;
}

/**
 * The route. `cluster` absent (single node): this node's registry alone. Present: a request from a
 * peer (it carries `Cairn-Forwarded-By`) gets this node's share, any other the cluster's page.
 */
export async function listStreams(
  context: HttpContext,
  authenticator: Authenticator | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
  cluster?: ClusterListing,
): Promise<void> {
  const visible = await readCheckOf(authenticator, request);
  const query = request.query as Record<string, string | string[] | undefined>;
  const limit = parseLimit(queryParam(query, 'limit'));
  const afterPath = decodeCursor(queryParam(query, 'cursor'), context.limits.streamPathBytesMax);
  // The durable proxy's streams are reached through their capability URLs, never listed.
  const listed = (path: string) => !path.startsWith(PROXY_PATH_PREFIX) && visible(path);
  const pageQuery: StreamListQuery = { prefix: queryParam(query, 'prefix') ?? '', afterPath, limit, visible: listed };
  let page: StreamListEntriesPage;
  if (cluster === undefined) page = localStreamPage(context, pageQuery);
  else if (request.headers[FORWARDED_BY_HEADER] !== undefined) page = cluster.ownPage(pageQuery);
  else page = await cluster.page(pageQuery, request.headers.authorization);
  const last = page.streams.at(-1);
  const nextCursor = page.more && last !== undefined ? encodeListCursor(last.path) : null;
  reply.header('cache-control', CACHE_CONTROL_NO_STORE).type('application/json').send(JSON.stringify({ streams: page.streams, nextCursor }));
}

/** One page of the streams this node's registry holds, as listing entries. */
export function localStreamPage(context: HttpContext, query: StreamListQuery): StreamListEntriesPage {
  const page = context.registry.list(query);
  const streams: StreamListEntry[] = page.streams.map((stream) => ({
    path: stream.path,
    contentType: stream.contentType,
    nextOffset: context.registry.offsetOf(stream, stream.durableOffset),
    closed: stream.durableClosed,
  }));
  return { streams, more: page.more };
}

/** The opaque cursor naming `path` (the last path of a page): base64url of its UTF-8. */
export function encodeListCursor(path: string): string {
  return Buffer.from(path).toString('base64url');
}

function parseLimit(text: string | undefined): number {
  if (text === undefined || text === '') return STREAM_LIST_PAGE_SIZE_DEFAULT;
  if (!/^[0-9]{1,7}$/.test(text) || Number(text) < 1 || Number(text) > STREAM_LIST_PAGE_SIZE_MAX) {
    throw new BadRequestError(`limit must be an integer from 1 to ${STREAM_LIST_PAGE_SIZE_MAX}`);
  }
  return Number(text);
}

function decodeCursor(cursor: string | undefined, streamPathBytesMax: number): string | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const bytes = /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url') : undefined;
  if (bytes === undefined || bytes.length === 0 || bytes.length > streamPathBytesMax || bytes.toString('base64url') !== cursor) {
    throw new BadRequestError('cursor is not one this server returned');
  }
  return bytes.toString('utf8');
}
