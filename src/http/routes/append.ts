/**
 * POST — append, append-and-close, close (PROTOCOL.md §5.2, §5.2.1, §5.3).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequestError } from '../../protocol/errors.ts';
import { isJsonContentType, isValidContentType } from '../../protocol/content-type.ts';
import { jsonDepthExceeds } from '../../protocol/json-depth.ts';
import { parseClosedFlag, parseProducerHeaders, singleHeader } from '../../protocol/headers.ts';
import type { HttpContext } from '../context.ts';
import { streamPathOf } from '../../protocol/stream-path.ts';

export async function appendToStream(context: HttpContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const path = streamPathOf(request.url, context.limits.streamPathBytesMax);
  const headers = request.headers;
  const body = (request.body as Buffer | undefined) ?? Buffer.alloc(0);
  const contentType = singleHeader(headers['content-type'], 'Content-Type');
  if (body.length > 0 && contentType !== undefined && !isValidContentType(contentType)) {
    throw new BadRequestError('Content-Type is malformed');
  }
  if (contentType !== undefined && isJsonContentType(contentType) && jsonDepthExceeds(body, context.limits.jsonDepthMax)) {
    throw new BadRequestError(`JSON body nests deeper than ${context.limits.jsonDepthMax} levels`);
  }
  const outcome = await context.registry.append({
    path,
    contentType,
    body,
    close: parseClosedFlag(headers['stream-closed']),
    producer: parseProducerHeaders(headers['producer-id'], headers['producer-epoch'], headers['producer-seq']),
    streamSeq: singleHeader(headers['stream-seq'], 'Stream-Seq'),
  });
  const stream = outcome.stream;
  reply.header('stream-next-offset', context.registry.offsetOf(stream, outcome.position));
  if (stream.closed) reply.header('stream-closed', 'true');
  if (outcome.producer !== undefined) {
    reply.header('producer-epoch', String(outcome.producer.epoch));
    reply.header('producer-seq', String(outcome.producer.seq));
  }
  // §5.2.1: new data from an idempotent producer is 200; a plain append, a close-only request and
  // any duplicate are 204.
  const status = outcome.kind === 'appended' && outcome.producer !== undefined && body.length > 0 ? 200 : 204;
  reply.code(status).send();
}
