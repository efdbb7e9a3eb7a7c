/**
 * GET — catch-up reads and long-poll (PROTOCOL.md §5.6, §5.7, §8 sentinels, §10.1 caching);
 * `live=sse` is handed to ./sse.ts.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError, StreamNotFoundError } from '../../protocol/errors.ts';
import { SlotNotOwnedError } from '../../cluster/errors.ts';
import { CACHE_CONTROL_NO_STORE, ifNoneMatchHits, readCacheControl, readEtag } from '../../protocol/caching.ts';
import { responseCursor } from '../../protocol/cursor.ts';
import { parseOffsetQuery, ZERO_INCARNATION } from '../../protocol/offset.ts';
import type { StreamState } from '../../stream/stream-state.ts';
import type { HttpContext } from '../context.ts';
import { streamPathOf } from '../../protocol/stream-path.ts';
import { streamSse } from './sse.ts';
import { disableSilenceTimeout } from '../node-server.ts';

type Query = Record<string, string | string[] | undefined>;

/** A query parameter that must appear at most once. */
export function queryParam(query: Query, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) {
    if (value.length > 1) throw new BadRequestError(`query parameter ${name} must appear once`);
    return value[0];
  }
  return value;
}

/**
 * Where a read starts: `-1`/absent → earliest retained position, `now` → durable tail, a token → its
 * position. `alias` is true when the offset names "the start" (`-1`, absent, the zero token) rather
 * than a position of this incarnation: the same URL then means other bytes after a delete and
 * re-create or a retention trim, so its response must never be cached as immutable.
 */
export function readStartPosition(
  context: HttpContext,
  stream: StreamState,
  offsetText: string | undefined,
): { position: number; now: boolean; alias: boolean } {
  const query = parseOffsetQuery(offsetText);
  if (query === undefined) throw new BadRequestError('offset is malformed');
  if (query.kind === 'start') return { position: context.registry.earliestPosition(stream), now: false, alias: true };
  if (query.kind === 'now') return { position: stream.durableOffset, now: true, alias: true };
  const alias = query.token.incarnation === ZERO_INCARNATION;
  return { position: context.registry.resolvePosition(stream, query.token), now: false, alias };
}

/** @param path the stream to read; default: the one the URL names (the proxy's routes pass theirs). */
export async function readStream(
  context: HttpContext,
  request: FastifyRequest,
  reply: FastifyReply,
  path: string = streamPathOf(request.url, context.limits.streamPathBytesMax),
): Promise<FastifyReply | void> {
  const query = request.query as Query;
  const live = queryParam(query, 'live');
  const offsetText = queryParam(query, 'offset');
  const cursor = queryParam(query, 'cursor');
  if (live !== undefined && live !== 'long-poll' && live !== 'sse') throw new BadRequestError('live must be long-poll or sse');
  if (live !== undefined && offsetText === undefined) throw new BadRequestError(`offset is required with live=${live}`);
  const stream = context.registry.get(path, { touch: true });
  const start = readStartPosition(context, stream, offsetText);

  if (live === 'sse') return streamSse(context, request, reply, stream, start.position, cursor);

  const registry = context.registry;
  reply.header('content-type', stream.contentType);
  if (start.now && live === undefined) {
    reply.header('stream-next-offset', registry.offsetOf(stream, start.position));
    reply.header('stream-up-to-date', 'true');
    if (stream.durableClosed) reply.header('stream-closed', 'true');
    reply.header('cache-control', CACHE_CONTROL_NO_STORE);
    reply.code(200).send(stream.isJson ? Buffer.from('[]') : Buffer.alloc(0));
    return;
  }

  if (live === 'long-poll' && start.position >= stream.durableOffset) {
    if (!stream.durableClosed) {
      context.live.admit();
      const release = context.liveClients.acquire(request.cairnAccess?.clientKey ?? request.ip);
      // The wait is silent by design: the socket's inactivity timeout (--body-timeout-ms) must not end it.
      disableSilenceTimeout(request.raw);
      const reason = await context.live.wait(stream, context.limits.longPollTimeoutMs, request.raw).finally(release);
      // Its slot moved meanwhile (cluster mode): 503 tells a forwarding node to ask the new owner.
      if (stream.movedAway) throw new SlotNotOwnedError(undefined, undefined, 'the stream moved to another node while this request waited');
      if (!registry.isCurrent(stream) || stream.softDeleted) throw new StreamNotFoundError(path);
      if (reason === 'disconnected') return;
    }
    if (start.position >= stream.durableOffset) {
      reply.header('stream-next-offset', registry.offsetOf(stream, stream.durableOffset));
      reply.header('stream-up-to-date', 'true');
      reply.header('cache-control', CACHE_CONTROL_NO_STORE);
      if (stream.durableClosed) reply.header('stream-closed', 'true');
      else reply.header('stream-cursor', responseCursor(cursor, context.clock, context.random));
      reply.code(204).send();
      return;
    }
  }

  const { body, bodyBytes, end, immutable } = await context.reads.open(stream, start.position);
  // A view of another node's stream (cluster mode) knows its sealed part only: up to date only when closed.
  const upToDate = end === stream.durableOffset && (context.sealedView !== true || stream.durableClosed);
  const closed = upToDate && stream.durableClosed;
  const etag = readEtag(stream.incarnation, start.position, end, closed);
  reply.header('stream-next-offset', registry.offsetOf(stream, end));
  reply.header('etag', etag);
  reply.header('cache-control', readCacheControl(immutable && !start.alias, !context.authEnabled || request.cairnAccess?.publicRead === true));
  if (upToDate) reply.header('stream-up-to-date', 'true');
  if (closed) reply.header('stream-closed', 'true');
  if (live === 'long-poll' || !closed) reply.header('stream-cursor', responseCursor(cursor, context.clock, context.random));
  if (ifNoneMatchHits(request.headers['if-none-match'], etag)) {
    reply.code(304).send();
    return;
  }
  // Streamed as it is produced (sealed units fetched one ahead, never the whole response at once).
  // Returning the reply tells Fastify the async handler has answered (else it would end the stream empty).
  reply.header('content-length', bodyBytes);
  return reply.code(200).send(Readable.from(body(), { objectMode: false }));
}
