/**
 * The durable proxy's routes (the Proxy Protocol v0.1 §3, §4; README "Durable proxy"):
 * `POST /v1/proxy` creates (here); `GET`, `HEAD`, `PATCH` and `DELETE /v1/proxy/<id>` are in
 * ./proxy-stream.ts. Service authentication (the `proxy` grant) is checked by the access hook
 * (src/auth/access-control.ts); capability URLs by the routes.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STREAMS_MAX_RETRY_AFTER_SECONDS } from '../../config/limits.ts';
import { ServiceUnavailableError } from '../../protocol/errors.ts';
import { singleHeader } from '../../protocol/headers.ts';
import { PROXY_PREFIX } from '../../protocol/stream-path.ts';
import { ProxyRequestError } from '../../proxy/errors.ts';
import type { Proxy } from '../../proxy/index.ts';
import { UPSTREAM_METHODS, upstreamHeaders, type UpstreamMethod } from '../../proxy/upstream-request.ts';
import type { HttpContext } from '../context.ts';
import { installProxyStreamRoutes } from './proxy-stream.ts';

export function installProxyRoutes(app: FastifyInstance, context: HttpContext, proxy: Proxy): void {
  app.post(PROXY_PREFIX, (request, reply) => createProxyStream(context, proxy, request, reply));
  installProxyStreamRoutes(app, context, proxy);
}

/** POST — create a proxy stream (§4.1): 201 + Location, or 502 + Upstream-Status, or an error. */
async function createProxyStream(context: HttpContext, proxy: Proxy, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  const headers = request.headers;
  const url = singleHeader(headers['upstream-url'], 'Upstream-URL');
  if (url === undefined || url.trim() === '') throw new ProxyRequestError('MISSING_UPSTREAM_URL', 'the Upstream-URL header is required');
  const methodText = singleHeader(headers['upstream-method'], 'Upstream-Method');
  if (methodText === undefined || methodText.trim() === '') throw new ProxyRequestError('MISSING_UPSTREAM_METHOD', 'the Upstream-Method header is required');
  const method = methodText.trim().toUpperCase() as UpstreamMethod;
  if (!UPSTREAM_METHODS.includes(method)) {
    throw new ProxyRequestError('INVALID_UPSTREAM_METHOD', `Upstream-Method must be one of ${UPSTREAM_METHODS.join(', ')}`);
  }
  // Two streams per proxy stream (its body and its meta stream).
  if (context.registry.streamCount + 2 > context.limits.streamsMax) {
    throw new ServiceUnavailableError(`the server holds its maximum of ${context.limits.streamsMax} streams; retry later`, STREAMS_MAX_RETRY_AFTER_SECONDS);
  }
  const body = request.body as Buffer | undefined;
  const result = await proxy.service.create(
    { url: url.trim(), method, headers: upstreamHeaders(headers), body: body === undefined || body.length === 0 ? undefined : body },
    request.cairnAccess?.clientKey ?? request.ip,
  );
  reply.header('cache-control', 'no-store');
  if (result.kind === 'upstream-error') {
    // §4.1: the upstream's own error passed through (truncated), not a proxy error body.
    reply.header('upstream-status', String(result.status));
    reply.type(result.contentType ?? 'application/octet-stream');
    reply.code(502).send(result.body);
    return;
  }
  const { expires, signature } = proxy.signer.sign(result.id, proxy.urlExpirySeconds);
  reply.header('location', `${request.protocol}://${request.host}${PROXY_PREFIX}/${result.id}?expires=${expires}&signature=${signature}`);
  reply.header('upstream-content-type', result.upstreamContentType);
  reply.code(201).send();
}
