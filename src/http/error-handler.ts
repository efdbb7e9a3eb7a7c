/**
 * The one place errors become HTTP responses. Typed ProtocolErrors carry their status and headers;
 * Fastify's own errors (body too large, malformed request) keep their 4xx status; anything else is
 * a bug, logged, and answered 500. Bodies are one readable line of text.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { ProtocolError } from '../protocol/errors.ts';

export function installErrorHandler(app: FastifyInstance, maxAppendBytes: number): void {
  app.setErrorHandler((error: FastifyError | ProtocolError, request, reply) => {
    reply.header('cache-control', 'no-store');
    if (error instanceof ProtocolError) {
      if (error.statusCode >= 500) request.log.warn({ err: error, reqId: request.id, method: request.method, url: request.url }, 'request refused');
      reply.headers(error.headers).code(error.statusCode).type('text/plain; charset=utf-8').send(error.message);
      return;
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      reply.code(413).type('text/plain; charset=utf-8').send(`request body exceeds the limit of ${maxAppendBytes} bytes`);
      return;
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) request.log.error({ err: error, reqId: request.id, method: request.method, url: request.url }, 'unhandled error');
    reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? 'internal server error' : error.message);
  });
}
