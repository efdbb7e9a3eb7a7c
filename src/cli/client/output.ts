/**
 * Writing to stdout with backpressure, and JSON-mode output: one message per line (JSON Lines),
 * so `read` and `tail` of a JSON stream compose with line tools such as `jq -c`.
 */
import { once } from 'node:events';

/** Writes bytes or text to stdout, waiting when its buffer is full. */
export async function writeOut(chunk: Uint8Array | string): Promise<void> {
  if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
}

/** A JSON-mode body (a JSON array of messages, PROTOCOL.md §9.1.5) as one line per message. */
export function jsonLines(body: string): string {
  const parsed: unknown = JSON.parse(body);
  const messages = Array.isArray(parsed) ? parsed : [parsed];
  return messages.map((message) => `${JSON.stringify(message)}\n`).join('');
}

/** Whether a content type is JSON mode (`application/json`, parameters ignored). */
export function isJson(contentType: string | null): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json';
}
