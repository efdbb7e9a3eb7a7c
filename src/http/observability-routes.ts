/**
 * Wires metrics and health into the Fastify app (issue 6): the request-latency hook and the
 * `/metrics`, `/healthz`, `/readyz` routes.
 */
import type { FastifyInstance } from 'fastify';
import { registerHealthRoutes } from './routes/health.ts';
import { registerMetricsRoute } from './routes/metrics.ts';
import type { Readiness } from '../observability/readiness.ts';
import { requestOperation } from '../observability/request-operation.ts';
import type { ServerMetrics } from '../observability/server-metrics.ts';
import { loggableUrl } from '../observability/log-url.ts';

export interface Observability {
  metrics: ServerMetrics;
  readiness: Readiness;
}

export function installObservability(app: FastifyInstance, { metrics, readiness }: Observability): void {
  // After the response finished: one observation on a cached labelled child, no allocation
  // beyond it. `elapsedTime` is Fastify's own timer (ms since routing), read once.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeRequest(requestOperation(request), reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  // One line per finished request only when the level asks for it (decided once, at startup):
  // at the default `info` the hot path pays nothing.
  if (app.log.level === 'debug' || app.log.level === 'trace') {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug(
        { reqId: request.id, method: request.method, url: loggableUrl(request.url), statusCode: reply.statusCode, responseTimeMs: reply.elapsedTime },
        'request completed',
      );
      done();
    });
  }
  registerMetricsRoute(app, metrics);
  registerHealthRoutes(app, readiness);
}
