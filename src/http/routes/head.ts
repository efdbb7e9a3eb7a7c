/**
 * HEAD — stream metadata without a body (PROTOCOL.md §5.5). Does not reset a sliding TTL.
 * Cairn adds `Cairn-Sealed-Offset` (the end of the bytes stored in segments) and
 * `Cairn-Earliest-Offset` (the first offset retention keeps) for operators and tools.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CACHE_CONTROL_NO_STORE } from '../../protocol/caching.ts';
import type { HttpContext } from '../context.ts';
import { streamPathOf } from '../../protocol/stream-path.ts';
import { setStreamMetadataHeaders } from '../stream-headers.ts';

/** @param path the stream; default: the one the URL names (the proxy's routes pass theirs). */
export async function headStream(
  context: HttpContext,
  request: FastifyRequest,
  reply: FastifyReply,
  path: string = streamPathOf(request.url, context.limits.streamPathBytesMax),
): Promise<void> {
  const stream = context.registry.get(path, { touch: false });
  setStreamMetadataHeaders(reply, stream);
  reply.header('stream-next-offset', context.registry.offsetOf(stream, stream.durableOffset));
  reply.header('cairn-sealed-offset', context.registry.offsetOf(stream, Math.min(stream.sealedOffset, stream.durableOffset)));
  reply.header('cairn-earliest-offset', context.registry.offsetOf(stream, context.registry.earliestPosition(stream)));
  if (stream.durableClosed) reply.header('stream-closed', 'true');
  reply.header('cache-control', CACHE_CONTROL_NO_STORE);
  reply.code(200).send();
}
