/**
 * GET /v1/streams/meta?path=<stream path> — what an operator's tool needs about one stream that
 * HEAD does not carry (README "Listing streams"): assigned and durable tail, sealed and earliest
 * offsets, fork lineage, producers, segments and the manifest version. Read-only; needs `read` on
 * the path, with the stream routes' 401/403/404/410 answers (403 before the lookup, so it tells
 * nothing about whether a hidden path exists).
 *
 * 200 JSON:
 * `{ path, incarnation, contentType, closed, ttlSeconds|null, expiresAt|null (ISO 8601),
 *    retentionMs|null, retentionBytes|null,
 *    offsets: { tail, durable, sealed, earliest },           // offset tokens
 *    hotTailBytes,                                           // unsealed bytes held in memory
 *    fork: { sourcePath|null, offset } | null, forkCount,    // sourcePath null if not readable
 *    manifestVersion,                                        // 0 = no manifest stored yet
 *    segmentCount, segments: [{ startOffset, endOffset, bytes, sealedAt }],   // newest last
 *    producerCount, producers: [{ producerId, epoch, lastSeq }] }`
 * Lists are cut to the newest / first STREAM_META_ITEMS_MAX entries; the counts are whole.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.ts';
import { STREAM_META_ITEMS_MAX } from '../../config/limits.ts';
import { CACHE_CONTROL_NO_STORE } from '../../protocol/caching.ts';
import { BadRequestError, ForbiddenError } from '../../protocol/errors.ts';
import { streamPathOfHeader } from '../../protocol/stream-path.ts';
import type { HttpContext } from '../context.ts';
import { readCheckOf } from '../read-grants.ts';
import { queryParam } from './read.ts';

export const STREAM_META_PATH = '/v1/streams/meta';

export async function streamMeta(
  context: HttpContext,
  authenticator: Authenticator | undefined,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const visible = await readCheckOf(authenticator, request);
  const raw = queryParam(request.query as Record<string, string | string[] | undefined>, 'path');
  if (raw === undefined) throw new BadRequestError('the path query parameter is required');
  // Validated like a stream path given in a header (with or without the /v1/stream/ prefix), but
  // not percent-decoded a second time: the query string is decoded already.
  const path = streamPathOfHeader(encodeURIComponent(raw), context.limits.streamPathBytesMax);
  if (!visible(path)) throw new ForbiddenError('the token does not grant read on this stream path');
  const { registry } = context;
  const stream = registry.get(path, { touch: false });
  const offset = (position: number) => registry.offsetOf(stream, position);
  const durable = stream.durableOffset;
  const producers = [...stream.producerStates()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, STREAM_META_ITEMS_MAX)
    .map(([producerId, state]) => ({ producerId, epoch: state.epoch, lastSeq: state.lastSeq }));
  const source = stream.fork?.source;
  const body = {
    path: stream.path,
    incarnation: stream.incarnation,
    contentType: stream.contentType,
    closed: stream.durableClosed,
    ttlSeconds: stream.ttlSeconds ?? null,
    expiresAt: stream.expiresAtMs === undefined ? null : new Date(stream.expiresAtMs).toISOString(),
    retentionMs: stream.retentionMs ?? null,
    retentionBytes: stream.retentionBytes ?? null,
    offsets: {
      tail: offset(stream.tailOffset),
      durable: offset(durable),
      sealed: offset(Math.min(stream.sealedOffset, durable)),
      earliest: offset(registry.earliestPosition(stream)),
    },
    hotTailBytes: stream.tailOffset - stream.sealedOffset,
    fork:
      stream.fork === undefined || source === undefined
        ? null
        : { sourcePath: visible(source.path) ? source.path : null, offset: offset(stream.fork.position) },
    forkCount: stream.forkCount,
    manifestVersion: stream.manifestVersion,
    segmentCount: stream.segments.length,
    segments: stream.segments.slice(-STREAM_META_ITEMS_MAX).map((segment) => ({
      startOffset: offset(segment.start),
      endOffset: offset(segment.end),
      bytes: segment.end - segment.start,
      sealedAt: new Date(segment.sealedAtMs).toISOString(),
    })),
    producerCount: producers.length === STREAM_META_ITEMS_MAX ? countOf(stream.producerStates()) : producers.length,
    producers,
  };
  reply.header('cache-control', CACHE_CONTROL_NO_STORE).type('application/json').send(JSON.stringify(body));
}

function countOf(items: Iterable<unknown>): number {
  let count = 0;
  for (const _ of items) count++;
  return count;
}
