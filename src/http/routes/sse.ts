/**
 * GET `live=sse` — Server-Sent Events (PROTOCOL.md §5.8, §10.2). Data events carry UTF-8 text for
 * `text/*` and JSON streams and base64 otherwise; each is followed by a control event. The server
 * closes the connection after `sseReconnectMs` (about 60 s) so CDNs can collapse reconnects, and
 * right after the closure signal.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import { isSseTextContentType } from '../../protocol/content-type.ts';
import { responseCursor } from '../../protocol/cursor.ts';
import type { StreamState } from '../../stream/stream-state.ts';
import type { HttpContext } from '../context.ts';

export async function streamSse(
  context: HttpContext,
  request: FastifyRequest,
  reply: FastifyReply,
  stream: StreamState,
  startPosition: number,
  clientCursor: string | undefined,
): Promise<void> {
  context.live.admit();
  const registry = context.registry;
  const base64 = !isSseTextContentType(stream.contentType);
  const raw = reply.raw;
  const headers: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value as string;
  headers['content-type'] = 'text/event-stream';
  headers['cache-control'] = 'no-cache';
  headers['x-accel-buffering'] = 'no';
  if (base64) headers['stream-sse-data-encoding'] = 'base64';
  reply.hijack();
  raw.writeHead(200, headers);

  const abort = new AbortController();
  request.raw.once('close', () => abort.abort());
  raw.once('close', () => abort.abort());
  const deadline = context.clock.nowMs() + context.limits.sseReconnectMs;
  let cursor = clientCursor;
  let position = startPosition;
  let sentControl = false;

  const write = async (text: string) => {
    if (!raw.write(text)) await once(raw, 'drain', { signal: abort.signal }).catch(() => {});
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

  try {
    while (!abort.signal.aborted && !stream.softDeleted && registry.isCurrent(stream)) {
      if (position < stream.durableOffset) {
        const { body, end } = await context.reads.read(stream, position);
        const payload = body.length === 1 ? body[0] : Buffer.concat(body);
        position = end;
        const upToDate = position === stream.durableOffset;
        const closed = upToDate && stream.durableClosed;
        // One write per data event and its control event: readers see them together.
        await write(dataEvent(payload, base64) + controlEvent(upToDate, closed));
        if (closed) break;
        continue;
      }
      if (stream.durableClosed) {
        await write(controlEvent(true, true));
        break;
      }
      if (!sentControl) await write(controlEvent(true, false));
      const remainingMs = deadline - context.clock.nowMs();
      if (remainingMs <= 0) break;
      const reason = await context.live.wait(stream, remainingMs, abort.signal);
      if (reason !== 'changed') break;
    }
  } catch (error) {
    // Headers are sent: end the connection and let the client reconnect (it then gets the status).
    request.log.warn({ err: error, url: request.url }, 'SSE read failed; closing the connection');
  } finally {
    raw.end();
  }
}

/** One `data` event: text split into `data:` lines, or base64 on one line. */
function dataEvent(payload: Buffer, base64: boolean): string {
  if (base64) return `event: data\ndata:${payload.toString('base64')}\n\n`;
  const lines = payload.toString('utf8').split(/\r\n|\r|\n/);
  return `event: data\n${lines.map((line) => `data:${line}`).join('\n')}\n\n`;
}
