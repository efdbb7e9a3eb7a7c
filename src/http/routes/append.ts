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

/** The request headers an append reads (lower-case): all a peer needs to send for one (../peer-appends.ts). */
export const APPEND_REQUEST_HEADERS = ['content-type', 'stream-closed', 'producer-id', 'producer-epoch', 'producer-seq', 'stream-seq'] as const;

/** An append's request headers, as node:http gives them. */
export type AppendRequestHeaders = Partial<Record<(typeof APPEND_REQUEST_HEADERS)[number], string | string[]>>;

/** An append's answer: its status (200 or 204, no body) and its protocol headers (lower-case names). */
export interface AppendAnswer {
  status: 200 | 204;
  headers: Record<string, string>;
}

export async function appendToStream(context: HttpContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const path = streamPathOf(request.url, context.limits.streamPathBytesMax);
  const answer = await appendAnswer(context, path, request.headers, (request.body as Buffer | undefined) ?? Buffer.alloc(0));
  reply.headers(answer.headers).code(answer.status).send();
}

/**
 * The append itself, apart from HTTP (the route above, and a peer worker's append sent to this
 * node as the stream's owner: ../peer-appends.ts).
 * @throws BadRequestError on a malformed Content-Type or too deep JSON; the registry's errors
 *   (stream missing, closed, content type mismatch, producer and sequence conflicts, the fence's).
 */
export async function appendAnswer(context: HttpContext, path: string, headers: AppendRequestHeaders, body: Buffer): Promise<AppendAnswer> {
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
  const answerHeaders: Record<string, string> = { 'stream-next-offset': context.registry.offsetOf(stream, outcome.position) };
  if (stream.closed) answerHeaders['stream-closed'] = 'true';
  if (outcome.producer !== undefined) {
    answerHeaders['producer-epoch'] = String(outcome.producer.epoch);
    answerHeaders['producer-seq'] = String(outcome.producer.seq);
  }
  // §5.2.1: new data from an idempotent producer is 200; a plain append, a close-only request and
  // any duplicate are 204.
  const status = outcome.kind === 'appended' && outcome.producer !== undefined && body.length > 0 ? 200 : 204;
  return { status, headers: answerHeaders };
}
