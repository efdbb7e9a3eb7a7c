/**
 * GET `live=sse` — Server-Sent Events (PROTOCOL.md §5.8, §10.2). Data events carry UTF-8 text for
 * `text/*` and JSON streams and base64 otherwise; each is followed by a control event. The server
 * closes the connection after `sseReconnectMs` (about 60 s) so CDNs can collapse reconnects, and
 * right after the closure signal. On graceful shutdown it sends a final control event (where to
 * resume) and closes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isSseTextContentType } from '../../protocol/content-type.ts';
import { responseCursor } from '../../protocol/cursor.ts';
import type { StreamState } from '../../stream/stream-state.ts';
import type { HttpContext } from '../context.ts';
import { disableSilenceTimeout } from '../node-server.ts';
import { loggableUrl } from '../../observability/log-url.ts';

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
  const registry = context.registry;
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

  let disconnected = false;
  raw.once('close', () => {
    disconnected = true;
  });
  const deadline = context.clock.nowMs() + context.limits.sseReconnectMs;
  let cursor = clientCursor;
  let position = startPosition;
  let sentControl = false;

  /** A data event (if any) and its control event in one write, so readers see them together; then backpressure. */
  const write = async (data: Buffer | undefined, control: string) => {
    const flushed = raw.write(data === undefined ? control : Buffer.concat([data, Buffer.from(control)]));
    if (!flushed && !disconnected) {
      await new Promise<void>((resolve) => {
        const done = () => {
          raw.off('drain', done);
          raw.off('close', done);
          resolve();
        };
        raw.once('drain', done);
        raw.once('close', done);
      });
    }
  };
  const controlEvent = (upToDate: boolean, closed: boolean): string => {
    const event: Record<string, unknown> = { streamNextOffset: registry.offsetOf(stream, position) };
    if (!closed) {
      cursor = responseCursor(cursor, context.clock, context.random);
      event.streamCursor = cursor;
    }
    if (upToDate) event.upToDate = true;
    if (closed) event.streamClosed = true;
    sentControl = true;
    return `event: control\ndata:${JSON.stringify(event)}\n\n`;
  };

  context.live.sseOpened();
  try {
    while (!disconnected && !stream.softDeleted && registry.isCurrent(stream)) {
      if (context.live.closing) {
        // Graceful shutdown: a last control event with where to resume, then end; the client
        // reconnects (to another node or after the restart) from streamNextOffset.
        await write(undefined, controlEvent(position === stream.durableOffset, false));
        break;
      }
      if (position < stream.durableOffset) {
        const { event, end } = first ?? (await sharedDataEvent(context, stream, position, base64));
        first = undefined;
        position = end;
        const upToDate = position === stream.durableOffset;
        const closed = upToDate && stream.durableClosed;
        await write(event, controlEvent(upToDate, closed));
        if (closed) break;
        continue;
      }
      if (stream.durableClosed) {
        await write(undefined, controlEvent(true, true));
        break;
      }
      if (!sentControl) await write(undefined, controlEvent(true, false));
      const remainingMs = deadline - context.clock.nowMs();
      if (remainingMs <= 0) break;
      const reason = await context.live.wait(stream, remainingMs, raw, 'sse');
      if (reason !== 'changed' && reason !== 'shutdown') break;
    }
  } catch (error) {
    // Headers are sent: end the connection and let the client reconnect (it then gets the status).
    request.log.warn({ err: error, reqId: request.id, url: loggableUrl(request.url) }, 'SSE read failed; closing the connection');
  } finally {
    releaseClient();
    context.live.sseClosed();
    raw.end();
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
