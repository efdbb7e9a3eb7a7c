/**
 * HEAD — stream metadata without a body (PROTOCOL.md §5.5). Does not reset a sliding TTL.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CACHE_CONTROL_NO_STORE } from '../../protocol/caching.ts';
import type { HttpContext } from '../context.ts';
import { streamPathOf } from '../stream-path.ts';
import { setStreamMetadataHeaders } from '../stream-headers.ts';

export async function headStream(context: HttpContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const stream = context.registry.get(streamPathOf(request.url), { touch: false });
  setStreamMetadataHeaders(reply, stream);
  reply.header('stream-next-offset', context.registry.offsetOf(stream, stream.durableOffset));
  if (stream.durableClosed) reply.header('stream-closed', 'true');
  reply.header('cache-control', CACHE_CONTROL_NO_STORE);
  reply.code(200).send();
}
