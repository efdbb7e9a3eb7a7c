/**
 * A Server-Sent Events parser for `cairn tail`: bytes in, `{ event, data }` out, per the SSE format
 * (lines ending in LF, CRLF or CR; `data:` lines of one event joined with LF; one space after the
 * colon removed; comments and unknown fields ignored). PROTOCOL.md §5.8 uses the events `data` and
 * `control`.
 */

export interface SseEvent {
  /** The `event:` field; `message` when absent. */
  event: string;
  data: string;
}

/** Yields each complete event of an SSE body; an event cut off by the end of the body is dropped. */
export async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (match === null) break;
      // A CR at the very end may be the first half of CRLF: wait for the next chunk.
      if (match[0] === '\r' && match.index === buffer.length - 1) break;
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length > 0) yield { event: event === '' ? 'message' : event, data: data.join('\n') };
        event = '';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
  }
}
