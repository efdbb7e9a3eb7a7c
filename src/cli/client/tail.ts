/**
 * `cairn tail`: live reading with SSE (PROTOCOL.md §5.8). `data` events go to stdout (base64
 * decoded when the server says `stream-sse-data-encoding: base64`; JSON streams one message per
 * line); `control` events carry the offset to reconnect from. The server closes SSE connections
 * every minute or so: tail reconnects from the last offset, and stops when a control event says
 * `streamClosed` (exit 0) or on Ctrl-C.
 */
import { systemClock } from '../../clock.ts';
import { CliError, EXIT_UNAVAILABLE } from '../exit-codes.ts';
import { send, withQuery, type ClientOptions } from './http.ts';
import { isJson, jsonLines, writeOut } from './output.ts';
import { sseEvents } from './sse.ts';

/** Consecutive failed connection attempts before tail gives up with EXIT_UNAVAILABLE. */
const TAIL_CONNECT_ATTEMPTS_MAX = 5;
/** Pause after a failed connection attempt. */
const TAIL_RETRY_PAUSE_MS = 1_000;

interface ControlEvent {
  streamNextOffset?: string;
  streamClosed?: boolean;
}

/** Follows the stream from `offset` (`now`, `-1` or an offset) until it is closed. */
export async function tailStream(url: URL, offset: string, options: ClientOptions): Promise<void> {
  // The SSE response is text/event-stream: JSON mode is learnt from the stream's content type, once,
  // with an empty read at `now` (a GET, which a durable proxy's capability URL allows; HEAD needs a token there).
  const probe = await send(withQuery(url, { offset: 'now' }), { method: 'GET' }, options);
  await probe.body?.cancel();
  const json = isJson(probe.headers.get('content-type'));
  let next = offset;
  let failures = 0;
  for (;;) {
    let response: Response;
    try {
      response = await send(withQuery(url, { offset: next, live: 'sse' }), { method: 'GET', headers: { accept: 'text/event-stream' } }, options);
    } catch (error) {
      // Only an unreachable server is worth retrying; a 404 or 401 will not change.
      if (!(error instanceof CliError) || error.exitCode !== EXIT_UNAVAILABLE || ++failures >= TAIL_CONNECT_ATTEMPTS_MAX) throw error;
      await systemClock.sleep(TAIL_RETRY_PAUSE_MS);
      continue;
    }
    failures = 0;
    const base64 = response.headers.get('stream-sse-data-encoding')?.toLowerCase() === 'base64';
    if (response.body === null) continue;
    try {
      for await (const event of sseEvents(response.body)) {
        if (event.event === 'data') {
          if (base64) await writeOut(Buffer.from(event.data.replace(/[\r\n]/g, ''), 'base64'));
          else if (json) await writeOut(event.data.trim() === '' ? '' : jsonLines(event.data));
          else await writeOut(event.data);
        } else if (event.event === 'control') {
          const control = JSON.parse(event.data) as ControlEvent;
          if (typeof control.streamNextOffset === 'string') next = control.streamNextOffset;
          if (control.streamClosed === true) return;
        }
      }
    } catch (error) {
      if (error instanceof SyntaxError) throw error;
      // The connection broke mid-stream: reconnect from the last control event's offset.
      if (++failures >= TAIL_CONNECT_ATTEMPTS_MAX) throw new CliError(EXIT_UNAVAILABLE, `GET ${url.href}: connection lost (${(error as Error).message})`);
      await systemClock.sleep(TAIL_RETRY_PAUSE_MS);
    }
  }
}
