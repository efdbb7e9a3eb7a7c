/**
 * A live tail over SSE (PROTOCOL.md §5.8) read with fetch, not EventSource: EventSource cannot
 * send the Authorization header. Reconnects from the last `streamNextOffset` when the server ends
 * the connection (it does about every 60 s), stops when the stream is closed or on `stop()`.
 */
import { ApiError, call, streamUrl } from './api.ts';
import type { BrowserClock } from './browser-clock.ts';

export interface TailEvent {
  /** Data of one `data` event: text (text and JSON streams) or bytes (base64 on the wire). */
  data: string | Uint8Array;
}

export interface TailHandlers {
  onData(event: TailEvent): void;
  onState(state: string): void;
  onError(error: Error): void;
}

const RECONNECT_DELAY_MS = 1_000;

export function tailStream(path: string, startOffset: string, clock: BrowserClock, handlers: TailHandlers): () => void {
  const abort = new AbortController();
  let offset = startOffset;
  let cancelRetry = () => {};
  const connect = async () => {
    handlers.onState('connecting');
    try {
      const response = await call(`${streamUrl(path)}?${new URLSearchParams({ offset, live: 'sse' })}`, { signal: abort.signal });
      const base64 = response.headers.get('stream-sse-data-encoding') === 'base64';
      handlers.onState('live');
      const closed = await readEvents(response, (type, data) => {
        if (type === 'data') handlers.onData({ data: base64 ? bytesOfBase64(data) : data });
        if (type === 'control') {
          const control = JSON.parse(data) as { streamNextOffset?: string; streamClosed?: boolean };
          if (control.streamNextOffset !== undefined) offset = control.streamNextOffset;
          if (control.streamClosed === true) return true;
        }
        return false;
      });
      if (closed) {
        handlers.onState('stream closed');
        return;
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      handlers.onError(error as Error);
      if (error instanceof ApiError && error.status < 500) {
        handlers.onState('stopped');
        return;
      }
    }
    if (abort.signal.aborted) return;
    handlers.onState('reconnecting');
    cancelRetry = clock.after(RECONNECT_DELAY_MS, () => void connect());
  };
  void connect();
  return () => {
    abort.abort();
    cancelRetry();
  };
}

/** Calls `onEvent` per SSE event until the body ends or `onEvent` returns true. */
async function readEvents(response: Response, onEvent: (type: string, data: string) => boolean): Promise<boolean> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return false;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
      }
      if (onEvent(type, data.join('\n'))) {
        await reader.cancel();
        return true;
      }
    }
  }
}

function bytesOfBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
