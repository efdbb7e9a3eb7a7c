/**
 * Response headers that describe a stream (PROTOCOL.md §5.1, §5.5).
 */
import type { FastifyReply } from 'fastify';
import type { StreamState } from '../stream/stream-state.ts';

/** Content-Type, Stream-TTL / Stream-Expires-At of a stream. */
export function setStreamMetadataHeaders(reply: FastifyReply, stream: StreamState): void {
  reply.header('content-type', stream.contentType);
  if (stream.ttlSeconds !== undefined) reply.header('stream-ttl', String(stream.ttlSeconds));
  if (stream.expiresAtMs !== undefined) reply.header('stream-expires-at', new Date(stream.expiresAtMs).toISOString());
  if (stream.retentionMs !== undefined) reply.header('cairn-retention-ms', String(stream.retentionMs));
  if (stream.retentionBytes !== undefined) reply.header('cairn-retention-bytes', String(stream.retentionBytes));
}
