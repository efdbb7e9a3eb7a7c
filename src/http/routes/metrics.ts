/**
 * GET /metrics — Prometheus text exposition of the server's metrics (issue 6; README.md
 * "Observability" lists them). Outside the stream prefix, never cached.
 */
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from '../../observability/server-metrics.ts';

export const METRICS_PATH = '/metrics';

export function registerMetricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get(METRICS_PATH, async (_request, reply) => {
    const { contentType, body } = await metrics.scrape();
    reply.header('cache-control', 'no-store').type(contentType).send(body);
  });
}
