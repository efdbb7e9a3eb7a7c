/**
 * The one place errors become HTTP responses. Every `CairnError` (protocol, WAL, object store)
 * is answered from the one error table (protocol/error-table.ts): its status, its headers, and
 * its message (prefixed by the table's subject, e.g. `write-ahead log unavailable: …`); a
 * non-retryable 5xx is a bug or an operator's problem, logged and answered
 * `internal server error`. Fastify's own errors (body too large, malformed request) keep their
 * 4xx status; anything else is a bug, logged, and answered 500. Bodies are one readable line of
 * text.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CairnError, errorEntry } from '../protocol/error-table.ts';
import { loggableUrl } from '../observability/log-url.ts';

const INTERNAL = 'internal server error';

const NOT_IMPLEMENTED = 501;

export function installErrorHandler(app: FastifyInstance, appendBytesMax: number): void {
  app.setErrorHandler((error: FastifyError | CairnError, request, reply) => {
    reply.header('cache-control', 'no-store');
    if (error instanceof CairnError) {
      sendCairnError(error, request, reply);
      return;
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      reply.code(413).type('text/plain; charset=utf-8').send(`request body exceeds the limit of ${appendBytesMax} bytes`);
      return;
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) logUnhandled(error, request);
    reply.code(status).type('text/plain; charset=utf-8').send(status === 500 ? INTERNAL : error.message);
  });
}

/** Status, headers and body of a typed error, as `ERROR_TABLE` says. */
function sendCairnError(error: CairnError, request: FastifyRequest, reply: FastifyReply): void {
  const entry = errorEntry(error.code);
  // 501 is a feature this configuration does not serve, said to the client; any other 5xx that a
  // retry cannot fix is a bug or an operator's problem, logged and not described.
  if (entry.status >= 500 && entry.status !== NOT_IMPLEMENTED && !entry.retryable) {
    logUnhandled(error, request);
    reply.code(entry.status).type('text/plain; charset=utf-8').send(INTERNAL);
    return;
  }
  if (entry.status >= 500) request.log.warn({ err: error, reqId: request.id, method: request.method, url: loggableUrl(request.url) }, 'request refused');
  const body = entry.subject === undefined ? error.message : `${entry.subject}: ${error.message}`;
  if (entry.json === true) {
    // The subscription APIs and the Proxy Protocol answer `{"error":{"code","message",…details}}`.
    reply.headers(error.headers).code(entry.status).type('application/json').send(JSON.stringify({ error: { code: entry.bodyCode ?? error.code, message: body, ...error.details } }));
    return;
  }
  reply.headers(error.headers).code(entry.status).type('text/plain; charset=utf-8').send(body);
}

function logUnhandled(error: Error, request: FastifyRequest): void {
  request.log.error({ err: error, reqId: request.id, method: request.method, url: loggableUrl(request.url) }, 'unhandled error');
}
