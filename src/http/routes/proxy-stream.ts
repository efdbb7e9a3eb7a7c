/**
 * `GET`, `HEAD`, `PATCH` and `DELETE /v1/proxy/<id>` (the Proxy Protocol v0.1 §4.2–§4.5, §7).
 * Reads are the ordinary read routes (./read.ts, ./sse.ts: catch-up, long-poll, SSE) on the
 * proxy's body stream, plus `Upstream-Content-Type` and, once the stream is closed,
 * `Cairn-Proxy-Outcome` (complete, upstream-error, aborted, timed-out, storage-error, interrupted).
 *
 * Who may do what: GET with a capability URL, or with service authentication (the `proxy` grant)
 * when it carries no signature; PATCH (abort) with a capability URL only; HEAD and DELETE with
 * service authentication only (a capability URL is not looked at). With auth off, service
 * authentication is everyone.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GoneError, StreamNotFoundError } from '../../protocol/errors.ts';
import { PROXY_PREFIX } from '../../protocol/stream-path.ts';
import { ProxyRequestError, ProxyStreamNotFoundError } from '../../proxy/errors.ts';
import type { Proxy } from '../../proxy/index.ts';
import { PROXY_ID, bodyPath } from '../../proxy/proxy-streams.ts';
import type { HttpContext } from '../context.ts';
import { headStream } from './head.ts';
import { queryParam, readStream } from './read.ts';

type Query = Record<string, string | string[] | undefined>;

export const PROXY_OUTCOME_HEADER = 'cairn-proxy-outcome';

export function installProxyStreamRoutes(app: FastifyInstance, shared: HttpContext, proxy: Proxy): void {
  // Proxied answers are one caller's data: reads are `Cache-Control: private` (as with auth on and
  // no public grant), never stored by a shared cache, whatever the server's auth setting.
  const context: HttpContext = { ...shared, authEnabled: true };
  const route = `${PROXY_PREFIX}/:id`;
  /** Adds the outcome to a read answer that reports the stream closed (catch-up or long-poll). */
  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (reply.getHeader('stream-closed') === 'true') {
      const info = await proxy.service.info(idOf(request));
      if (info?.outcome !== undefined) reply.header(PROXY_OUTCOME_HEADER, info.outcome);
    }
    return payload;
  };
  app.get(route, { exposeHeadRoute: false, onSend }, proxyNotFound(async (request, reply) => {
    const id = idOf(request);
    const query = request.query as Query;
    const signature = queryParam(query, 'signature');
    const expires = queryParam(query, 'expires');
    // Without a signature the access hook has checked service authentication (or auth is off).
    if (signature !== undefined || expires !== undefined) proxy.signer.verify(id, expires, signature);
    await describe(proxy, reply, id);
    // Returning the reply tells Fastify the route answered: with an async onSend hook a 204 is
    // still being sent when readStream returns, and Fastify would otherwise send it again.
    await readStream(context, request, reply, bodyPath(id));
    return reply;
  }));
  app.head(route, { onSend }, proxyNotFound(async (request, reply) => {
    const id = idOf(request);
    await describe(proxy, reply, id);
    await headStream(context, request, reply, bodyPath(id));
    return reply;
  }));
  app.patch(route, proxyNotFound(async (request, reply) => {
    const id = idOf(request);
    const query = request.query as Query;
    proxy.signer.verify(id, queryParam(query, 'expires'), queryParam(query, 'signature'));
    const action = queryParam(query, 'action');
    if (action !== 'abort') throw new ProxyRequestError('INVALID_ACTION', 'action must be abort');
    await proxy.service.abort(id);
    reply.header('cache-control', 'no-store').code(204).send();
  }));
  app.delete(route, proxyNotFound(async (request, reply) => {
    await proxy.service.delete(idOf(request));
    reply.code(204).send();
  }));
}

/**
 * A route handler whose "no such stream" answers are the Proxy Protocol's JSON 404 (§11.5)
 * rather than the stream API's plain one; an expired or deleted proxy stream is not found either.
 */
function proxyNotFound<R>(handler: (request: FastifyRequest, reply: FastifyReply) => Promise<R>) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<R> => {
    try {
      return await handler(request, reply);
    } catch (error) {
      if (error instanceof StreamNotFoundError || error instanceof GoneError) throw new ProxyStreamNotFoundError((request.params as { id?: string }).id ?? '');
      throw error;
    }
  };
}

/** The proxy stream id of the URL. @throws ProxyStreamNotFoundError for anything but a proxy id. */
function idOf(request: FastifyRequest): string {
  const id = (request.params as { id?: string }).id ?? '';
  if (!PROXY_ID.test(id)) throw new ProxyStreamNotFoundError(id);
  return id;
}

/** `Upstream-Content-Type` (§4.2: on every successful read when known). */
async function describe(proxy: Proxy, reply: FastifyReply, id: string): Promise<void> {
  const info = await proxy.service.info(id);
  if (info !== undefined) reply.header('upstream-content-type', info.upstreamContentType);
}
