/**
 * DELETE — delete a stream, soft-deleting it while forks reference it (PROTOCOL.md §5.4).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { HttpContext } from '../context.ts';
import { streamPathOf } from '../../protocol/stream-path.ts';

export async function deleteStream(context: HttpContext, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await context.registry.delete(streamPathOf(request.url, context.limits.streamPathBytesMax));
  reply.code(204).send();
}
