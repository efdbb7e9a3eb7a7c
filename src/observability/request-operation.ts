/**
 * The protocol operation of a request, for the `operation` label of the request metrics.
 */
import type { FastifyRequest } from 'fastify';
import { STREAM_PREFIX } from '../protocol/stream-path.ts';
import { parseClosedFlag } from '../protocol/headers.ts';
import type { RequestOperation } from './server-metrics.ts';

/**
 * PUT → create; POST → append, or close when it carries `Stream-Closed: true` (append-and-close
 * included); GET → read, read_live_long_poll or read_sse by `live`; HEAD, DELETE; OPTIONS →
 * preflight; anything outside the stream prefix (metrics, health, unknown paths) → other.
 */
export function requestOperation(request: FastifyRequest): RequestOperation {
  const method = request.method;
  if (method === 'OPTIONS') return 'preflight';
  if (!request.url.startsWith(STREAM_PREFIX)) return 'other';
  switch (method) {
    case 'POST':
      return parseClosedFlag(request.headers['stream-closed']) ? 'close' : 'append';
    case 'GET': {
      const live = (request.query as Record<string, unknown> | undefined)?.live;
      return live === 'long-poll' ? 'read_live_long_poll' : live === 'sse' ? 'read_sse' : 'read';
    }
    case 'PUT':
      return 'create';
    case 'HEAD':
      return 'head';
    case 'DELETE':
      return 'delete';
    default:
      return 'other';
  }
}
