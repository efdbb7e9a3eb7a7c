/**
 * The node:http server under Fastify, with the limits against slow and oversized requests
 * (README "Limits"): request-head size (431), time to send the head and the whole request (408),
 * socket inactivity while a request is in progress (slow bodies, stalled readers), and keep-alive
 * idle time.
 */
import http from 'node:http';

export interface NodeServerLimits {
  /** Largest request head (request line + headers), in bytes; 431 above. */
  headerBytesMax: number;
  /** Time to receive the whole request head, in ms; 408 after. */
  headersTimeoutMs: number;
  /** Time to receive the whole request, head and body, in ms; 408 after. */
  requestTimeoutMs: number;
  /** Longest socket silence while a request is in progress, in ms; the socket is closed after. */
  bodyTimeoutMs: number;
  /** Keep-alive idle time between requests, in ms. */
  idleTimeoutMs: number;
}

/** Longest wait between Node's checks of the head and request deadlines (its default is 30 s). */
const DEADLINE_CHECK_INTERVAL_MS_MAX = 5_000;

/**
 * A Fastify `serverFactory` building the HTTP/1.1 server with these limits. The deadlines of
 * `headersTimeoutMs` and `requestTimeoutMs` are checked every quarter of the shorter one (at most
 * every 5 s), so they hold to within 25%.
 */
export function nodeServerFactory(limits: NodeServerLimits) {
  return (handler: http.RequestListener): http.Server => {
    const server = http.createServer(
      {
        maxHeaderSize: limits.headerBytesMax,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.idleTimeoutMs,
        connectionsCheckingInterval: Math.max(
          10,
          Math.min(DEADLINE_CHECK_INTERVAL_MS_MAX, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
        ),
      },
      handler,
    );
    server.setTimeout(limits.bodyTimeoutMs);
    return server;
  };
}
