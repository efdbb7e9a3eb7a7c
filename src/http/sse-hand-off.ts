/**
 * Hands an open HTTP/1.1 SSE response off from node:http (and so from Fastify) to its raw socket,
 * once the response head is written. An idle SSE connection then holds a socket and Cairn's small
 * per-connection state, not node:http's parser, request, response and their listeners: about
 * 18 KiB of RSS per connection for node:http alone against 3.6 KiB for a bare socket
 * (bench/README.md, "Idle SSE connections").
 *
 * What the hand-off does is what node:http itself does when it hands a socket to an `upgrade`
 * listener: remove its listeners from the socket, stop its parser reading the socket and free the
 * parser (node's own `freeParser`, from its `_http_common` module, the one undocumented piece),
 * and detach the response (`ServerResponse.detachSocket`). The socket keeps every other listener
 * (connection draining, TLS). After it, the caller writes the chunked body itself
 * (./routes/sse.ts) and owns the socket's life: node:http no longer sees the connection, so it
 * neither times it out nor closes it; graceful shutdown reaches it through the SSE loop and
 * ConnectionDrain (which tracks sockets, not requests). When the response ends, `awaitNextRequest`
 * keeps the connection for the client's next request and gives it back to node:http when one
 * comes (keep-alive, as before).
 *
 * Refused (undefined: the caller keeps the node:http path) for HTTP/2, for a response node:http is
 * not framing as `Transfer-Encoding: chunked` over HTTP/1.1, when a later request on the same
 * connection was already parsed (pipelining), when data is buffered in the socket that the parser
 * has not seen, and when the socket does not carry node:http's listeners as expected (another
 * Node version): the hand-off never guesses.
 */
import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { EventEmitter } from 'node:events';
import { Socket } from 'node:net';

/** node:http's parser as far as the hand-off reads it. */
interface HttpParser {
  incoming: unknown;
}

/** A server-side socket while node:http owns it. */
interface HttpSocket extends Socket {
  parser?: HttpParser | null;
  _httpMessage?: unknown;
  /** The server that accepted it (node:http sets it). */
  server?: EventEmitter & { keepAliveTimeout: number; keepAliveTimeoutBuffer?: unknown };
}

/** node:http's own cleanup of a connection's parser (unconsume, leave the connection list, pool or free). */
type FreeParser = (parser: HttpParser, request: IncomingMessage | null, socket: Socket) => void;

const freeParser: FreeParser | undefined = (() => {
  try {
    const common = createRequire(import.meta.url)('node:_http_common') as { freeParser?: unknown };
    return typeof common.freeParser === 'function' ? (common.freeParser as FreeParser) : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * Socket listeners node:http installs per connection, by event and function name (Node 22–24:
 * `connectionListenerInternal` in lib/_http_server.js; the bound ones are named `bound <name>`).
 * `close` is left to the response's `detachSocket` for its own listener.
 */
const NODE_HTTP_LISTENERS: ReadonlyArray<readonly [event: string, name: string]> = [
  ['data', 'bound socketOnData'],
  ['end', 'bound socketOnEnd'],
  ['close', 'bound socketOnClose'],
  ['drain', 'bound socketOnDrain'],
  ['error', 'socketOnError'],
  ['timeout', 'socketOnTimeout'],
  ['resume', 'onSocketResume'],
  ['pause', 'onSocketPause'],
];

/** Per-socket method overrides node:http installs (they unconsume the parser when a `data` listener is added). */
const NODE_HTTP_OVERRIDES = ['on', 'addListener', 'prependListener', 'setEncoding'] as const;

/**
 * Takes the connection of `request` away from node:http, after `response`'s head was written
 * (`writeHead` and `flushHeaders`; nothing else of the body written through `response`).
 * @returns the socket, now with no node:http listener, parser or response, reading and dropping
 *   what it reads (so that a client's FIN, which destroys it, or reset is seen; errors are
 *   swallowed, 'close' follows them); or undefined when the hand-off is refused (see the module
 *   comment), with nothing changed.
 */
export function handOffSocket(
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
): Socket | undefined {
  if (freeParser === undefined || 'stream' in request || !('detachSocket' in response)) return undefined;
  const socket = request.socket as HttpSocket;
  const parser = socket.parser;
  const framing = response as ServerResponse & { chunkedEncoding?: boolean; outputData?: unknown[] };
  if (
    request.httpVersion !== '1.1' ||
    framing.chunkedEncoding !== true ||
    !response.headersSent ||
    response.writableEnded ||
    (framing.outputData?.length ?? 0) !== 0 ||
    socket._httpMessage !== response ||
    parser?.incoming !== request ||
    !request.complete ||
    socket.destroyed ||
    socket.readableLength !== 0
  ) {
    return undefined;
  }
  const found: Array<[string, (...args: unknown[]) => void]> = [];
  for (const [event, name] of NODE_HTTP_LISTENERS) {
    const listener = socket.listeners(event).find((candidate) => candidate.name === name);
    if (listener === undefined) return undefined;
    found.push([event, listener as (...args: unknown[]) => void]);
  }
  for (const [event, listener] of found) socket.removeListener(event, listener);
  // Assigned back, not deleted: deleting properties would turn the socket into a slow
  // dictionary-mode object (about 1.9 KiB more heap per connection, measured).
  const methods = socket as unknown as Record<string, unknown>;
  for (const name of NODE_HTTP_OVERRIDES) if (Object.hasOwn(socket, name)) methods[name] = Socket.prototype[name];
  response.detachSocket(socket);
  freeParser(parser, request, socket);
  // node:http's socketOnError is gone: without a listener a reset would throw. 'close' follows.
  socket.on('error', ignoreError);
  // A client's FIN ends the connection (node:http ended its side on FIN too; SSE clients never half-close).
  socket.on('end', destroyOnEnd);
  // The parser read the socket natively; now reads arrive as stream data, which a flowing socket
  // with no 'data' listener drops (a client sends nothing after its GET; a socket node:http had
  // paused for backpressure reads again), so its FIN or reset is still seen.
  socket.resume();
  return socket;
}

/** Handed-off sockets whose response ended and that wait for the client's next request (ConnectionDrain closes these). */
const awaitingRequest = new WeakSet<Socket>();

/**
 * After the last chunk of a handed-off response: the connection waits for the client's next
 * request as node:http's keep-alive connections do between requests, and is closed silently
 * after the server's keep-alive idle time (`keepAliveTimeout` plus node's 1 s margin). The first
 * bytes of a request give the socket back to node:http: the server's connection event is emitted
 * again with it (`connection`, or `secureConnection` for HTTP/1.1 on the TLS port; node:http's
 * documented way to inject a connection) and those bytes are passed on to the parser it attaches.
 * Must be called in the same tick as the last write.
 */
export function awaitNextRequest(socket: Socket): void {
  const server = (socket as HttpSocket).server;
  if (socket.destroyed || server === undefined) {
    socket.destroy();
    return;
  }
  awaitingRequest.add(socket);
  socket.on('data', handBack);
  socket.on('timeout', destroyOnTimeout);
  const buffer = server.keepAliveTimeoutBuffer;
  socket.setTimeout(server.keepAliveTimeout + (typeof buffer === 'number' ? buffer : KEEP_ALIVE_BUFFER_MS_DEFAULT));
}

/** True for a handed-off socket between its SSE response and a next request: idle, safe to close at shutdown. */
export function isAwaitingRequest(socket: Socket): boolean {
  return awaitingRequest.has(socket);
}

/** node:http's margin on top of `keepAliveTimeout` before it closes an idle connection (Node ≥ 24.?: `keepAliveTimeoutBuffer`). */
const KEEP_ALIVE_BUFFER_MS_DEFAULT = 1_000;

/** The first bytes of the next request: the socket goes back to node:http, which parses them. */
function handBack(this: Socket, firstBytes: Buffer): void {
  const server = (this as HttpSocket).server!;
  awaitingRequest.delete(this);
  this.removeListener('data', handBack);
  this.removeListener('timeout', destroyOnTimeout);
  this.removeListener('error', ignoreError);
  this.removeListener('end', destroyOnEnd);
  this.setTimeout(0);
  server.emit((this as Socket & { encrypted?: boolean }).encrypted === true ? 'secureConnection' : 'connection', this);
  // node:http's data listener was added while this event was being emitted, so it missed these bytes.
  this.emit('data', firstBytes);
}

function destroyOnTimeout(this: Socket): void {
  this.destroy();
}

function ignoreError(): void {}

function destroyOnEnd(this: Socket): void {
  this.destroy();
}
