/**
 * Live fan-out: many SSE readers waiting at the tail of one stream all receive an append, and the
 * data event is read and encoded once for all of them (DESIGN.md, collapsing on the live tail).
 */
import { afterEach, expect, test } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.ts';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

/** An SSE connection whose text is collected as it arrives. */
async function openSse(url: string): Promise<{ text: () => string; until: (needle: string) => Promise<void>; close: () => void }> {
  const abort = new AbortController();
  const response = await fetch(url, { signal: abort.signal });
  expect(response.status).toBe(200);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const waiters: { needle: string; resolve: () => void }[] = [];
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        text += value;
        for (const waiter of waiters.splice(0)) {
          if (text.includes(waiter.needle)) waiter.resolve();
          else waiters.push(waiter);
        }
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    text: () => text,
    until: (needle) => (text.includes(needle) ? Promise.resolve() : new Promise((resolve) => waiters.push({ needle, resolve }))),
    close: () => abort.abort(),
  };
}

test('one append reaches 50 SSE readers at the tail with one read of the stream', async () => {
  const server = await startTestServer({ durability: 'memory' });
  servers.push(server);
  const url = `${server.url}/v1/stream/fan-out`;
  expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' } })).status).toBe(201);

  const readers = await Promise.all(Array.from({ length: 50 }, () => openSse(`${url}?offset=now&live=sse`)));
  // Each reader is waiting once it has its first (up-to-date) control event.
  await Promise.all(readers.map((reader) => reader.until('"upToDate":true')));
  const builtBefore = server.tiering.stats().responsesBuilt;

  const append = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello\nfan-out' });
  expect(append.status).toBe(204);
  await Promise.all(readers.map((reader) => reader.until('data:fan-out\n\n')));

  expect(server.tiering.stats().responsesBuilt - builtBefore).toBe(1);
  for (const reader of readers) {
    expect(reader.text()).toContain('event: data\ndata:hello\ndata:fan-out\n\nevent: control\n');
    reader.close();
  }
});
