/**
 * Small helpers shared by the HTTP-level tests.
 */
import { expect } from 'vitest';

/** Polls `condition` every 20 ms until it holds; throws after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads a stream URL from `-1`, following Stream-Next-Offset until Stream-Up-To-Date; expects 200s. */
export async function readToEnd(streamUrl: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let offset = '-1'; ; ) {
    const response = await fetch(`${streamUrl}?offset=${offset}`);
    expect(response.status).toBe(200);
    chunks.push(Buffer.from(await response.arrayBuffer()));
    if (response.headers.get('stream-up-to-date') === 'true') return Buffer.concat(chunks);
    offset = response.headers.get('stream-next-offset') ?? '';
  }
}
