/**
 * The Fastify application: body parsing, CORS and browser security headers, the stream routes
 * (one file per protocol operation under ./routes), and the error mapping; when configured, the
 * access check (src/auth), the per-client write rate and the node:http limits (./node-server.ts).
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cors from '@fastify/cors';
import type { Server } from 'node:http';
import { installAccessControl } from '../auth/access-control.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import { TooManyRequestsError } from '../protocol/errors.ts';
import { installObservability, type Observability } from './observability-routes.ts';
import { REQUEST_ID_HEADER, requestIdGenerator } from '../observability/request-id.ts';
import type { HttpContext } from './context.ts';
import { installErrorHandler } from './error-handler.ts';
import { STREAM_PREFIX } from '../protocol/stream-path.ts';
import { createStream } from './routes/create.ts';
import { appendToStream } from './routes/append.ts';
import { deleteStream } from './routes/delete.ts';
import { headStream } from './routes/head.ts';
import { readStream } from './routes/read.ts';
import { listStreams, STREAM_LIST_PATH } from './routes/list.ts';
import { streamMeta, STREAM_META_PATH } from './routes/stream-meta.ts';
import { registerInspector } from './routes/inspector.ts';
import { nodeServerFactory, type NodeServerLimits, type ServerTransport } from './node-server.ts';
import { installSubscriptionRoutes, SUBSCRIPTION_ROOT } from './routes/subscriptions.ts';
import { SubscriptionsNotInClusterError } from '../subscriptions/errors.ts';
import type { Subscriptions } from '../subscriptions/subscriptions.ts';
import { ALLOWED_REQUEST_HEADERS, EXPOSED_RESPONSE_HEADERS, PROXY_ALLOWED_REQUEST_HEADERS, PROXY_EXPOSED_RESPONSE_HEADERS } from './cors-headers.ts';
import type { Proxy } from '../proxy/index.ts';
import { installProxyRoutes } from './routes/proxy.ts';
import type { ClusterListing } from './cluster-listing.ts';

export interface AppOptions {
  context: HttpContext;
  /** A pino logger for request logs; none when absent. */
  logger?: FastifyBaseLogger;
  /** Checks bearer tokens on every stream request; auth is off (no hook at all) when absent. */
  authenticator?: Authenticator;
  /** Origins browsers may call from (`--cors-origins`); default any (`*`). */
  corsOrigins?: '*' | string[];
  /** Proxies whose `X-Forwarded-For` names the client (`--trust-proxy`); default none. */
  trustProxy?: string[];
  /** Writes (PUT, POST) per second per client key (`--appends-per-second-max`); 0 or absent = off. */
  appendsPerSecondMax?: number;
  /** Limits of the node:http server (`--header-bytes-max`, timeouts); Fastify's defaults when absent. */
  nodeServer?: NodeServerLimits;
  /** TLS (HTTP/2 + HTTP/1.1) or h2c (README "TLS and HTTP/2"); cleartext HTTP/1.1 when absent. Needs `nodeServer`. */
  transport?: ServerTransport;
  /** Request metrics and the /metrics, /healthz, /readyz routes; none when absent. */
  observability?: Observability;
  /** The built inspector's files (tests); default build/inspector/ of the package. */
  inspectorDir?: string;
  /**
   * The reserved subscription APIs under `/v1/stream/__ds` (PROTOCOL.md §6–7); none when absent;
   * `'refused'` (cluster mode, `--workers`): every request under `/v1/stream/__ds` answers 501.
   */
  subscriptions?: Subscriptions | 'refused';
  /** The durable proxy (`/v1/proxy`, README "Durable proxy"); no proxy routes when absent. */
  proxy?: Proxy;
  /** Cluster mode: `GET /v1/streams` lists every node's streams (./cluster-listing.ts); this node's alone when absent. */
  clusterListing?: ClusterListing;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { context } = options;
  const app = Fastify({
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    bodyLimit: context.limits.appendBytesMax,
    // Stream paths may be long; Fastify's default of 100 characters per parameter is too small.
    routerOptions: { maxParamLength: 4096 },
    ...(options.nodeServer === undefined
      ? {}
      : { serverFactory: nodeServerFactory(options.nodeServer, options.transport ?? { kind: 'http1' }, context.clock) as () => Server }),
    // Only read by Fastify for the scheme of the address `listen` returns (the factory builds the server).
    ...(options.transport?.kind === 'tls' ? { https: { allowHTTP1: true } as unknown as null } : {}),
    ...(options.trustProxy === undefined || options.trustProxy.length === 0 ? {} : { trustProxy: options.trustProxy }),
    // Quiet on hot paths: no per-request log lines (errors are still logged by the error handler).
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is the server's logger itself, not a per-request child (a pino child per request
    // cost about 1.5% of the CPU of an append); error logs carry reqId, method and URL instead.
    childLoggerFactory: (logger) => logger,
    // A sane incoming X-Request-Id, else a generated one; echoed in the response (onRequest below).
    genReqId: requestIdGenerator(context.random),
    return503OnClosing: true,
  });

  await app.register(cors, {
    origin: options.corsOrigins ?? '*',
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', ...(options.proxy === undefined ? [] : ['PATCH'])],
    allowedHeaders: [...ALLOWED_REQUEST_HEADERS, ...(options.proxy === undefined ? [] : PROXY_ALLOWED_REQUEST_HEADERS)],
    // Joined once here: @fastify/cors joins an array on every response (and an open SSE response keeps its copy).
    exposedHeaders: [...EXPOSED_RESPONSE_HEADERS, ...(options.proxy === undefined ? [] : PROXY_EXPOSED_RESPONSE_HEADERS)].join(', '),
    maxAge: 86_400,
  });

  // Browser security headers on every response (PROTOCOL.md §12.7).
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cross-origin-resource-policy', 'cross-origin');
    reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });

  // Bodies are bytes whatever their type; JSON mode parses them itself.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));

  installErrorHandler(app, context.limits.appendBytesMax);
  if (options.observability !== undefined) installObservability(app, options.observability);

  if (options.authenticator !== undefined) installAccessControl(app, options.authenticator, context.limits.streamPathBytesMax);

  // Per-client write rate (@fastify/rate-limit, on PUT and POST only): keyed by token when auth is
  // on, else by client IP. Not registered at all when off.
  const writesPerSecond = options.appendsPerSecondMax ?? 0;
  let writeRouteConfig = {};
  if (writesPerSecond > 0) {
    const { default: rateLimit } = await import('@fastify/rate-limit');
    await app.register(rateLimit, {
      global: false,
      keyGenerator: (request) => request.cairnAccess?.clientKey ?? request.ip,
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
      errorResponseBuilder: (_request, limit) =>
        new TooManyRequestsError(
          `more than ${writesPerSecond} writes per second from this client; retry in ${limit.after}`,
          Math.max(1, Math.ceil(limit.ttl / 1000)),
        ),
    });
    writeRouteConfig = { config: { rateLimit: { max: writesPerSecond, timeWindow: 1000 } } };
  }

  // Before the stream routes: the reserved `__ds` prefix is never a stream (PROTOCOL.md §6).
  if (options.subscriptions === 'refused') {
    app.all(`${SUBSCRIPTION_ROOT}/*`, () => {
      throw new SubscriptionsNotInClusterError();
    });
  } else if (options.subscriptions !== undefined) installSubscriptionRoutes(app, options.subscriptions, options.authenticator);

  const route = `${STREAM_PREFIX}*`;
  app.put(route, writeRouteConfig, (request, reply) => createStream(context, request, reply));
  app.post(route, writeRouteConfig, (request, reply) => appendToStream(context, request, reply));
  app.delete(route, (request, reply) => deleteStream(context, request, reply));
  app.head(route, (request, reply) => headStream(context, request, reply));
  // Cluster mode: a read of another node's sealed history is answered from a view (./sealed-views.ts).
  app.get(route, { exposeHeadRoute: false }, (request, reply) => readStream(request.cairnView ?? context, request, reply));
  if (options.proxy !== undefined) installProxyRoutes(app, context, options.proxy);

  // Listing, per-stream metadata and the web inspector (README "Listing streams", "Inspector").
  const { authenticator, clusterListing } = options;
  app.get(STREAM_LIST_PATH, { exposeHeadRoute: false }, (request, reply) => listStreams(context, authenticator, request, reply, clusterListing));
  app.get(STREAM_META_PATH, { exposeHeadRoute: false }, (request, reply) => streamMeta(context, authenticator, request, reply));
  await registerInspector(app, options.inspectorDir);

  return app;
}
