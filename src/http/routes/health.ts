/**
 * GET /healthz and /readyz (issue 6). `/healthz` answers 200 `{"alive":true}` while the process
 * serves HTTP and its WAL can take writes, and 503 `{"alive":false,"reason":"…"}` once the WAL
 * writer failed (liveness: only a restart recovers). `/readyz` answers 200 `{"ready":true}` when the server should get traffic — WAL
 * recovered and writable, object store reachable, not shutting down — and otherwise 503
 * `{"ready":false,"reason":"…"}` (readiness). Both are JSON, never cached.
 */
import type { FastifyInstance } from 'fastify';
import type { Readiness } from '../../observability/readiness.ts';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

export function registerHealthRoutes(app: FastifyInstance, readiness: Readiness): void {
  app.get(HEALTH_PATH, (_request, reply) => {
    const live = readiness.liveness();
    reply
      .header('cache-control', 'no-store')
      .type('application/json')
      .code(live.ready ? 200 : 503)
      .send(live.ready ? '{"alive":true}' : JSON.stringify({ alive: false, reason: live.reason }));
  });
  app.get(READY_PATH, async (_request, reply) => {
    const result = await readiness.check();
    reply
      .header('cache-control', 'no-store')
      .type('application/json')
      .code(result.ready ? 200 : 503)
      .send(JSON.stringify(result));
  });
}
