/**
 * `cairn read`: catch-up reads from an offset to the current end (PROTOCOL.md §5.6), following
 * `Stream-Next-Offset` until `Stream-Up-To-Date` or `Stream-Closed`. Bytes go to stdout exactly as
 * stored; a JSON stream prints one message per line.
 */
import { CliError, EXIT_ERROR } from '../exit-codes.ts';
import { send, withQuery, type ClientOptions } from './http.ts';
import { isJson, jsonLines, writeOut } from './output.ts';

/** Reads `[offset, end)` to stdout; resolves with the offset after the last byte. */
export async function readStream(url: URL, offset: string, options: ClientOptions): Promise<string> {
  let next = offset;
  for (;;) {
    const response = await send(withQuery(url, { offset: next }), { method: 'GET' }, options);
    if (isJson(response.headers.get('content-type'))) {
      const body = await response.text();
      if (body.trim() !== '') await writeOut(jsonLines(body));
    } else if (response.body !== null) {
      for await (const chunk of response.body) await writeOut(chunk);
    }
    const following = response.headers.get('stream-next-offset');
    if (following === null) throw new CliError(EXIT_ERROR, `GET ${url.href}: the response has no Stream-Next-Offset`);
    const upToDate = response.headers.get('stream-up-to-date')?.toLowerCase() === 'true';
    const closed = response.headers.get('stream-closed')?.toLowerCase() === 'true';
    if (upToDate || closed) return following;
    if (following === next) throw new CliError(EXIT_ERROR, `GET ${url.href}: no progress at offset ${next} and not up to date`);
    next = following;
  }
}
