/**
 * PUT — create a stream, create-closed, or fork (PROTOCOL.md §5.1, §4.2).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STREAMS_MAX_RETRY_AFTER_SECONDS } from '../../config/limits.ts';
import { BadRequestError, ServiceUnavailableError } from '../../protocol/errors.ts';
import { isJsonContentType, isValidContentType } from '../../protocol/content-type.ts';
import { jsonDepthExceeds } from '../../protocol/json-depth.ts';
import {
  parseClosedFlag,
  parseExpiresAtMs,
  parseForkOffset,
  parseForkSubOffset,
  parseRetention,
  parseTtlSeconds,
  singleHeader,
} from '../../protocol/headers.ts';
import type { HttpContext } from '../context.ts';
import { streamPathOf, streamPathOfHeader } from '../../protocol/stream-path.ts';
import { setStreamMetadataHeaders } from '../stream-headers.ts';

export async function createStream(context: HttpContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const limits = context.limits;
  const path = streamPathOf(request.url, limits.streamPathBytesMax);
  const headers = request.headers;
  const contentType = singleHeader(headers['content-type'], 'Content-Type');
  if (contentType !== undefined && !isValidContentType(contentType)) throw new BadRequestError('Content-Type is malformed');
  const body = (request.body as Buffer | undefined) ?? Buffer.alloc(0);
  if (contentType !== undefined && isJsonContentType(contentType) && jsonDepthExceeds(body, limits.jsonDepthMax)) {
    throw new BadRequestError(`JSON body nests deeper than ${limits.jsonDepthMax} levels`);
  }
  if (context.registry.streamCount >= limits.streamsMax && !streamExists(context, path)) {
    throw new ServiceUnavailableError(`the server holds its maximum of ${limits.streamsMax} streams; retry later`, STREAMS_MAX_RETRY_AFTER_SECONDS);
  }
  const forkedFrom = singleHeader(headers['stream-forked-from'], 'Stream-Forked-From');
  const forkOffset = parseForkOffset(headers['stream-fork-offset']);
  const forkSubOffset = parseForkSubOffset(headers['stream-fork-sub-offset']);
  if (forkedFrom === undefined && (forkOffset !== undefined || forkSubOffset !== undefined)) {
    throw new BadRequestError('Stream-Fork-Offset and Stream-Fork-Sub-Offset require Stream-Forked-From');
  }
  const outcome = await context.registry.create({
    path,
    contentType,
    ttlSeconds: parseTtlSeconds(headers['stream-ttl']),
    expiresAtMs: parseExpiresAtMs(headers['stream-expires-at']),
    closed: parseClosedFlag(headers['stream-closed']),
    retentionMs: parseRetention(headers['cairn-retention-ms'], 'Cairn-Retention-Ms'),
    retentionBytes: parseRetention(headers['cairn-retention-bytes'], 'Cairn-Retention-Bytes'),
    body,
    fork:
      forkedFrom === undefined
        ? undefined
        : { sourcePath: streamPathOfHeader(forkedFrom, limits.streamPathBytesMax), offset: forkOffset, subOffset: forkSubOffset },
  });
  const stream = outcome.stream;
  setStreamMetadataHeaders(reply, stream);
  reply.header('stream-next-offset', context.registry.offsetOf(stream, stream.tailOffset));
  if (stream.closed) reply.header('stream-closed', 'true');
  if (outcome.created) reply.header('location', `${request.protocol}://${request.host}${request.url.split('?')[0]}`);
  reply.code(outcome.created ? 201 : 200).send();
}

/** Whether a live stream holds `path` (a create repeating an existing one is allowed at the cap). */
function streamExists(context: HttpContext, path: string): boolean {
  try {
    context.registry.get(path, { touch: false });
    return true;
  } catch {
    return false;
  }
}
