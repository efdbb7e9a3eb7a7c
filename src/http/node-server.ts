/**
 * The node server under Fastify, with the limits against slow and oversized requests (README
 * "Limits"): request-head size (431), time to send the head and the whole request (408), silence
 * while a request is in progress (slow bodies, stalled readers), and keep-alive idle time.
 *
 * Three transports (README "TLS and HTTP/2"): cleartext HTTP/1.1 (node:http); TLS with HTTP/2 and
 * HTTP/1.1 on one port, chosen by ALPN (node:http2 `allowHTTP1`); cleartext HTTP/2 with prior
 * knowledge (h2c, for a proxy in front). HTTP/1.1 connections on the TLS port get exactly the
 * limits of the cleartext server. HTTP/2 carries many requests (streams) on one connection
 * (session), so the socket limits become per-stream and per-session ones:
 * - silence during a request (`bodyTimeoutMs`): per stream; a silent stream is reset (CANCEL);
 * - streams open at once per session: HTTP2_STREAMS_PER_SESSION_MAX (src/config/limits.ts);
 * - keep-alive idle (`idleTimeoutMs`): per session; a session silent this long gets a GOAWAY
 *   (streams still open finish, new requests go to a new connection);
 * - request-head size (`headerBytesMax`): advertised as SETTINGS_MAX_HEADER_LIST_SIZE (HTTP/2
 *   counts decoded names and values plus 32 bytes per header), so clients do not send a larger
 *   head; one that does gets its stream reset (ENHANCE_YOUR_CALM), not a 431;
 * - whole-request time (`requestTimeoutMs`): per stream; a body chunk arriving after it resets
 *   the stream (a silent stream is ended by the silence limit instead);
 * - head time (`headersTimeoutMs`): a head is one HEADERS frame sequence and a stream starts only
 *   once it is complete, so a slow head is bounded by the session's idle limit instead.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../clock.ts';
import { HTTP2_STREAMS_PER_SESSION_MAX } from '../config/limits.ts';

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

/** How the server speaks: cleartext HTTP/1.1, TLS (HTTP/2 + HTTP/1.1 by ALPN), or cleartext HTTP/2. */
export type ServerTransport = { kind: 'http1' } | { kind: 'tls'; cert: Buffer; key: Buffer } | { kind: 'h2c' };

/** The server a transport builds. */
export type NodeServer = http.Server | http2.Http2SecureServer | http2.Http2Server;

/** Longest wait between Node's checks of the head and request deadlines (its default is 30 s). */
const DEADLINE_CHECK_INTERVAL_MS_MAX = 5_000;

/**
 * A Fastify `serverFactory` building the server of `transport` with these limits. The HTTP/1.1
 * deadlines of `headersTimeoutMs` and `requestTimeoutMs` are checked every quarter of the shorter
 * one (at most every 5 s), so they hold to within 25%.
 */
export function nodeServerFactory(limits: NodeServerLimits, transport: ServerTransport, clock: Clock) {
  return (handler: http.RequestListener): NodeServer => {
    const checkIntervalMs = Math.max(
      10,
      Math.min(DEADLINE_CHECK_INTERVAL_MS_MAX, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)),
    );
    if (transport.kind === 'http1') {
      const server = http.createServer(
        {
          maxHeaderSize: limits.headerBytesMax,
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.idleTimeoutMs,
          connectionsCheckingInterval: checkIntervalMs,
        },
        handler,
      );
      server.setTimeout(limits.bodyTimeoutMs);
      return server;
    }
    const settings = { maxHeaderListSize: limits.headerBytesMax, maxConcurrentStreams: HTTP2_STREAMS_PER_SESSION_MAX };
    // Fastify's handler takes node:http's request and response; node:http2's compatibility API has their shape.
    const fastifyHandler = handler as unknown as (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => void;
    // HTTP/1.1 requests on the TLS port come through here too, as node:http's request and response.
    const h2Handler = (request: http2.Http2ServerRequest, response: http2.Http2ServerResponse) => {
      failTruncatedBody(request);
      fastifyHandler(request, response);
    };
    if (transport.kind === 'h2c') {
      const server = http2.createServer({ settings }, h2Handler);
      applyHttp2Limits(server, limits, clock);
      return server;
    }
    const server = http2.createSecureServer({ allowHTTP1: true, cert: transport.cert, key: transport.key, settings }, h2Handler);
    // HTTP/1.1 connections on this port go through node:http's connection handling, which reads
    // these limits from the server (the same as the cleartext server's options).
    const http1 = server as unknown as {
      maxHeaderSize: number;
      headersTimeout: number;
      requestTimeout: number;
      keepAliveTimeout: number;
      connectionsCheckingInterval: number;
    };
    http1.maxHeaderSize = limits.headerBytesMax;
    http1.headersTimeout = limits.headersTimeoutMs;
    http1.requestTimeout = limits.requestTimeoutMs;
    http1.keepAliveTimeout = limits.idleTimeoutMs;
    http1.connectionsCheckingInterval = checkIntervalMs;
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol !== 'h2') socket.setTimeout(limits.bodyTimeoutMs);
    });
    applyHttp2Limits(server, limits, clock);
    return server;
  };
}

/** The per-session and per-stream limits of HTTP/2 (see the module comment). */
function applyHttp2Limits(server: http2.Http2Server | http2.Http2SecureServer, limits: NodeServerLimits, clock: Clock): void {
  server.on('session', (session: http2.ServerHttp2Session) => {
    session.setTimeout(limits.idleTimeoutMs, () => session.close());
  });
  // Before the request handler (registered at construction), so a route can still lift the limit.
  server.prependListener('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    // Clients that honour SETTINGS_MAX_HEADER_LIST_SIZE never send a larger head; Node does not
    // check it on receipt, so a client that ignores it is cut here (ENHANCE_YOUR_CALM).
    if (headerListBytes(headers) > limits.headerBytesMax) {
      stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    stream.setTimeout(limits.bodyTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    // The deadline of the whole request, checked as its body arrives; cleared once it ended.
    const deadline = setStreamDeadline(stream, limits.requestTimeoutMs, clock);
    stream.once('end', deadline.clear);
    stream.once('close', deadline.clear);
  });
}

/**
 * Node's HTTP/2 compatibility layer ends a request body normally when its stream closes, even
 * when the stream was reset before the client finished sending (a cancelled upload, or a reset by
 * the limits above); Fastify would then take a truncated body as whole and append it. Here a
 * request whose stream is aborted (reset before its response ended) fails instead, as an aborted
 * HTTP/1.1 upload does, so nothing of a truncated body is stored. Bodiless requests are left alone.
 */
function failTruncatedBody(request: http2.Http2ServerRequest | http.IncomingMessage): void {
  if (!('stream' in request) || request.stream.endAfterHeaders) return;
  // 'aborted' comes before the compatibility layer ends the body on close.
  request.stream.once('aborted', () => {
    if (request.destroyed) return;
    request.on('error', () => {});
    request.destroy(new Error('HTTP/2 stream reset before the request ended'));
  });
}

/** A head's size as HTTP/2 counts it against SETTINGS_MAX_HEADER_LIST_SIZE: names, values, 32 bytes each. */
function headerListBytes(headers: http2.IncomingHttpHeaders): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) bytes += Buffer.byteLength(name) + Buffer.byteLength(item) + 32;
  }
  return bytes;
}

/**
 * Resets `stream` when a chunk of its request body arrives `timeoutMs` or more after the stream
 * began (a trickling upload); a stream that goes silent instead is ended by the silence limit.
 */
function setStreamDeadline(stream: http2.ServerHttp2Stream, timeoutMs: number, clock: Clock): { clear: () => void } {
  const startedMs = clock.monotonicMs();
  const check = () => {
    if (!stream.destroyed && clock.monotonicMs() - startedMs >= timeoutMs) stream.close(http2.constants.NGHTTP2_CANCEL);
  };
  stream.on('data', check);
  return { clear: () => stream.off('data', check) };
}

/**
 * Turns off the silence limit (`bodyTimeoutMs`) of the request's connection (HTTP/1.1) or stream
 * (HTTP/2): for live reads, whose waits are silent by design and end by their own timeouts.
 * On HTTP/2 only this request's stream is exempt, not the other requests of its session.
 */
export function disableSilenceTimeout(raw: http.IncomingMessage | http2.Http2ServerRequest): void {
  if ('stream' in raw) raw.stream.setTimeout(0);
  else raw.socket.setTimeout(0);
}
