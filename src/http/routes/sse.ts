/**
 * GET `live=sse` — Server-Sent Events (PROTOCOL.md §5.8, §10.2). Data events carry UTF-8 text for
 * `text/*` and JSON streams and base64 otherwise; each is followed by a control event. The server
 * closes the connection after `sseReconnectMs` (about 60 s) so CDNs can collapse reconnects, and
 * right after the closure signal. On graceful shutdown it sends a final control event (where to
 * resume) and closes.
 *
 * Over HTTP/1.1 (cleartext or TLS) the connection leaves node:http and Fastify once the head is
 * written (../sse-hand-off.ts): the session writes its chunks straight onto the socket, framed
 * byte for byte as node:http would, and holds nothing of the request but its id and URL (for the
 * warning log) — an idle SSE connection costs about 7 KiB of server memory instead of 23–26
 * (bench/README.md). HTTP/2 streams, and requests the hand-off refuses, stay on node's response.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { isSseTextContentType } from '../../protocol/content-type.ts';
import { responseCursor } from '../../protocol/cursor.ts';
import type { StreamState } from '../../stream/stream-state.ts';
import type { HttpContext } from '../context.ts';
import type { WakeReason } from '../live-readers.ts';
import type { DeadlineTick } from '../wait-deadlines.ts';
import { disableSilenceTimeout } from '../node-server.ts';
import { loggableUrl } from '../../observability/log-url.ts';
import { awaitNextRequest, handOffSocket } from '../sse-hand-off.ts';

export async function streamSse(
  context: HttpContext,
  request: FastifyRequest,
  reply: FastifyReply,
  stream: StreamState,
  startPosition: number,
  clientCursor: string | undefined,
): Promise<void> {
  context.live.admit();
  const releaseClient = context.liveClients.acquire(request.cairnAccess?.clientKey ?? request.ip);
  const base64 = !isSseTextContentType(stream.contentType);
  const raw = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value as string;
  headers['content-type'] = 'text/event-stream';
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  if (base64) headers['stream-sse-data-encoding'] = 'base64';
  // The first read happens before the 200 is sent, so a reader starting in sealed history while
  // the object store fails gets the 503 with Retry-After, not an event stream that ends empty.
  let first: EncodedDataEvent | undefined;
  try {
    if (startPosition < stream.durableOffset) first = await sharedDataEvent(context, stream, startPosition, base64);
  } catch (error) {
    releaseClient();
    throw error;
  }
  reply.hijack();
  raw.writeHead(200, headers);
  flattenResponseHead(raw);
  // Waits between events are silent: the socket's inactivity timeout (--body-timeout-ms) must not end them.
  disableSilenceTimeout(request.raw);

  const session = new SseSession(context, stream, startPosition, clientCursor, base64, first, releaseClient);
  // HTTP/1.1: the head goes out now and the connection leaves node:http and Fastify
  // (../sse-hand-off.ts); the session then owns the socket, and the request and reply are let go.
  if (context.sseHandOff !== false && !('stream' in request.raw)) {
    raw.flushHeaders();
    const socket = handOffSocket(request.raw, raw);
    if (socket !== undefined) {
      const startedMs = context.clock.monotonicMs() - reply.elapsedTime;
      session.start(new SocketOutput(socket), { log: request.log, id: request.id, url: request.url, startedMs });
      return;
    }
  }
  session.start(new ResponseOutput(raw), { log: request.log, id: request.id, url: request.url, startedMs: undefined });
}

/** What the session needs of the request once it is let go: for the warning log and the request metric. */
interface RequestFacts {
  log: FastifyBaseLogger;
  id: string;
  url: string;
  /** Handed off: when the request started (monotonic ms); Fastify's onResponse no longer sees it. */
  startedMs: number | undefined;
}

/** Where one SSE connection's events go: node's response (HTTP/2, or a refused hand-off) or its handed-off socket. */
interface SseOutput {
  /** The client went away: nothing written now reaches it. */
  readonly gone: boolean;
  /** What the live wait watches for `close` (the client going away). */
  readonly connection: EventEmitter & { destroyed: boolean };
  /** One chunk: a data event (if any) and its control event; resolves at once unless the socket's buffer is full. */
  write(data: Buffer | undefined, control: string): Promise<void> | undefined;
  /** Ends the response (the last chunk); `keepAlive` false: the connection closes too (shutdown). */
  end(keepAlive: boolean): void;
}

/** Events through node:http's or node:http2's response, which frames them. */
class ResponseOutput implements SseOutput {
  readonly #raw: FastifyReply['raw'];
  gone = false;

  constructor(raw: FastifyReply['raw']) {
    this.#raw = raw;
    raw.once('close', () => {
      this.gone = true;
    });
  }

  get connection(): EventEmitter & { destroyed: boolean } {
    return this.#raw;
  }

  write(data: Buffer | undefined, control: string): Promise<void> | undefined {
    const flushed = this.#raw.write(data === undefined ? control : Buffer.concat([data, Buffer.from(control)]));
    return flushed || this.gone ? undefined : drained(this.#raw);
  }

  end(): void {
    this.#raw.end();
  }
}

/** The last chunk of a chunked body (no trailers), as node:http writes it. */
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

/**
 * Events straight onto the handed-off socket, framed as node:http frames a `write` of the same
 * bytes with `Transfer-Encoding: chunked`: `<size in hex>\r\n<bytes>\r\n`, one chunk per write,
 * and `0\r\n\r\n` at the end, so a client sees exactly the bytes of the node:http path. After the
 * last chunk the connection waits for the client's next request, which gives it back to node:http
 * (closed instead on shutdown).
 */
class SocketOutput implements SseOutput {
  readonly connection: Socket;

  constructor(socket: Socket) {
    this.connection = socket;
  }

  get gone(): boolean {
    return this.connection.destroyed;
  }

  write(data: Buffer | undefined, control: string): Promise<void> | undefined {
    const dataBytes = data === undefined ? 0 : data.length;
    const bodyBytes = dataBytes + Buffer.byteLength(control);
    const size = `${bodyBytes.toString(16)}\r\n`;
    const chunk = Buffer.allocUnsafe(size.length + bodyBytes + 2);
    let at = chunk.write(size, 0, 'latin1');
    if (data !== undefined) at += data.copy(chunk, at);
    at += chunk.write(control, at, 'utf8');
    chunk.write('\r\n', at, 'latin1');
    const flushed = this.connection.write(chunk);
    return flushed || this.gone ? undefined : drained(this.connection);
  }

  end(keepAlive: boolean): void {
    if (this.connection.destroyed) return;
    if (!keepAlive) {
      this.connection.end(LAST_CHUNK);
      return;
    }
    this.connection.write(LAST_CHUNK);
    awaitNextRequest(this.connection);
  }
}

/** Resolves when `output` drains or closes (write backpressure). */
function drained(output: EventEmitter): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      output.off('drain', done);
      output.off('close', done);
      resolve();
    };
    output.once('drain', done);
    output.once('close', done);
  });
}

/** One SSE connection after its head was written: its position, cursor and deadline, and the loop that feeds it. */
class SseSession {
  readonly #context: HttpContext;
  readonly #stream: StreamState;
  readonly #base64: boolean;
  readonly #releaseClient: () => void;
  /** When the server closes the connection (§10.2: about 60 s after it opened), wall-clock ms. */
  readonly #deadlineMs: number;
  #position: number;
  #cursor: string | undefined;
  #first: EncodedDataEvent | undefined;
  #sentControl = false;
  #output: SseOutput | undefined;
  #request: RequestFacts | undefined;
  /** The wait in progress (LiveReaders.startWait's handle); undefined while writing. */
  #waitTick: DeadlineTick | undefined;

  constructor(
    context: HttpContext,
    stream: StreamState,
    position: number,
    cursor: string | undefined,
    base64: boolean,
    first: EncodedDataEvent | undefined,
    releaseClient: () => void,
  ) {
    this.#context = context;
    this.#stream = stream;
    this.#position = position;
    this.#cursor = cursor;
    this.#base64 = base64;
    this.#first = first;
    this.#releaseClient = releaseClient;
    this.#deadlineMs = context.clock.nowMs() + context.limits.sseReconnectMs;
  }

  /**
   * Feeds `output` until the deadline, the closure, a delete, the client leaving or shutdown. Between
   * events the session waits by callback (LiveReaders.startWait): an idle connection holds no
   * suspended function, promise or closure per wait, only the session's two callbacks.
   */
  start(output: SseOutput, request: RequestFacts): void {
    this.#output = output;
    this.#request = request;
    this.#context.live.sseOpened();
    output.connection.on('close', this.#onClose);
    void this.#step();
  }

  /** Writes what is due, then waits (returns) or ends the session; never rejects. */
  async #step(): Promise<void> {
    const context = this.#context;
    const registry = context.registry;
    const stream = this.#stream;
    const output = this.#output!;
    try {
      while (!output.gone && !stream.softDeleted && registry.isCurrent(stream)) {
        if (context.live.closing) {
          // Graceful shutdown: a last control event with where to resume, then end; the client
          // reconnects (to another node or after the restart) from streamNextOffset.
          await output.write(undefined, this.#controlEvent(this.#position === stream.durableOffset, false));
          break;
        }
        if (this.#position < stream.durableOffset) {
          const { event, end } = this.#first ?? (await sharedDataEvent(context, stream, this.#position, this.#base64));
          this.#first = undefined;
          this.#position = end;
          const upToDate = end === stream.durableOffset;
          const closed = upToDate && stream.durableClosed;
          await output.write(event, this.#controlEvent(upToDate, closed));
          if (closed) break;
          continue;
        }
        if (stream.durableClosed) {
          await output.write(undefined, this.#controlEvent(true, true));
          break;
        }
        if (!this.#sentControl) await output.write(undefined, this.#controlEvent(true, false));
        const remainingMs = this.#deadlineMs - context.clock.nowMs();
        if (remainingMs <= 0) break;
        if (output.gone) break;
        this.#waitTick = context.live.startWait(stream, remainingMs, this.#onWake);
        return;
      }
    } catch (error) {
      // Headers are sent: end the connection and let the client reconnect (it then gets the status).
      const request = this.#request!;
      request.log.warn({ err: error, reqId: request.id, url: loggableUrl(request.url) }, 'SSE read failed; closing the connection');
    }
    this.#finish();
  }

  /** The wait ended: the stream changed (no reason), the time ran out, the server is stopping, or the client left. */
  readonly #onWake = (reason?: WakeReason): void => {
    const tick = this.#waitTick;
    if (tick === undefined) return;
    this.#waitTick = undefined;
    this.#context.live.endWait(this.#stream, this.#onWake, tick);
    if (reason === undefined || reason === 'changed' || reason === 'shutdown') void this.#step();
    else this.#finish();
  };

  /** The client's connection closed: a waiting session ends now (a writing one sees `gone`). */
  readonly #onClose = (): void => {
    this.#onWake('disconnected');
  };

  #finish(): void {
    const context = this.#context;
    const output = this.#output!;
    const request = this.#request!;
    output.connection.off('close', this.#onClose);
    this.#releaseClient();
    context.live.sseClosed();
    // While the server stops, the connection closes with the response (as the drain would close it idle).
    output.end(!context.live.closing);
    if (request.startedMs !== undefined) {
      context.observeRequest?.('read_sse', 200, (context.clock.monotonicMs() - request.startedMs) / 1000);
    }
  }

  #controlEvent(upToDate: boolean, closed: boolean): string {
    const event: Record<string, unknown> = { streamNextOffset: this.#context.registry.offsetOf(this.#stream, this.#position) };
    if (!closed) {
      this.#cursor = responseCursor(this.#cursor, this.#context.clock, this.#context.random);
      event.streamCursor = this.#cursor;
    }
    if (upToDate) event.upToDate = true;
    if (closed) event.streamClosed = true;
    this.#sentControl = true;
    return `event: control\ndata:${JSON.stringify(event)}\n\n`;
  }
}

/**
 * node:http builds the response head by string concatenation and keeps it (`_header`) for the
 * life of the response; written as it is, it stays a tree of some 45 string pieces, about 1.5 KiB
 * of heap per open SSE connection. Reading a character of it makes V8 flatten it in place into
 * one string (the pieces become garbage). HTTP/2 responses have no such string.
 */
function flattenResponseHead(raw: object): void {
  const head = (raw as { _header?: unknown })._header;
  if (typeof head === 'string' && head.length > 0) head.charCodeAt(head.length - 1);
}

interface EncodedDataEvent {
  /** The `data` event, UTF-8. */
  event: Buffer;
  /** Position after the bytes it carries. */
  end: number;
}

/**
 * The newest data event encoded per stream, by start position and encoding. Every SSE reader woken
 * by one append asks for the same range: the first builds it, the rest share its bytes (DESIGN.md,
 * collapsing on the live tail: one encoded body per append). Valid while `durableOffset` is unchanged.
 */
const latestDataEvents = new WeakMap<StreamState, { from: number; durableOffset: number; base64: boolean; encoded: Promise<EncodedDataEvent> }>();

/** The data event for a read of `stream` from `from`, built once per append for all readers at `from`. */
function sharedDataEvent(context: HttpContext, stream: StreamState, from: number, base64: boolean): Promise<EncodedDataEvent> {
  const latest = latestDataEvents.get(stream);
  if (latest !== undefined && latest.from === from && latest.durableOffset === stream.durableOffset && latest.base64 === base64) {
    return latest.encoded;
  }
  const encoded = context.reads.read(stream, from).then(({ body, end }) => ({
    event: Buffer.from(dataEvent(body.length === 1 ? body[0] : Buffer.concat(body), base64)),
    end,
  }));
  latestDataEvents.set(stream, { from, durableOffset: stream.durableOffset, base64, encoded });
  // A failed read is not shared with later readers.
  encoded.catch(() => {
    if (latestDataEvents.get(stream)?.encoded === encoded) latestDataEvents.delete(stream);
  });
  return encoded;
}

/**
 * One `data` event: text split into `data:` lines, or base64 on one line. An SSE parser drops one
 * space after `data:`, so a line that itself starts with a space gets one more (`data:  x` is ` x`);
 * other lines, base64 and the control event's JSON never start with one and are written as
 * `data:<line>`, the form the conformance suite expects.
 */
function dataEvent(payload: Buffer, base64: boolean): string {
  if (base64) return `event: data\ndata:${payload.toString('base64')}\n\n`;
  const lines = payload.toString('utf8').split(/\r\n|\r|\n/);
  return `event: data\n${lines.map((line) => (line.startsWith(' ') ? `data: ${line}` : `data:${line}`)).join('\n')}\n\n`;
}
