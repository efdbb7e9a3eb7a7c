/**
 * The upstream TypeScript client (@durable-streams/client) as a real peer: create, append,
 * IdempotentProducer, live reads over SSE and long-poll, and resuming from a saved offset.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DurableStream, IdempotentProducer, stream } from '@durable-streams/client';
import { startTestServer, type TestServer } from '../support/server.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ longPollTimeoutMs: 500 });
});
afterAll(() => server.stop());

const url = (name: string) => `${server.url}/v1/stream/${name}`;

describe('@durable-streams/client against Cairn', () => {
  test('create, append and read back bytes', async () => {
    const handle = await DurableStream.create({ url: url('client-bytes'), contentType: 'text/plain' });
    await handle.append('hello ');
    await handle.append('world');
    const response = await stream({ url: url('client-bytes'), live: false });
    expect(await response.text()).toBe('hello world');
  });

  test('IdempotentProducer delivers every JSON message exactly once, in order', async () => {
    const handle = await DurableStream.create({ url: url('client-producer'), contentType: 'application/json' });
    const errors: unknown[] = [];
    const producer = new IdempotentProducer(handle, 'producer-1', { onError: (error) => errors.push(error) });
    for (let i = 0; i < 2000; i++) producer.append(JSON.stringify({ i, text: `message ${i}` }));
    await producer.flush();
    await producer.close();
    expect(errors).toEqual([]);
    const items = await (await stream<{ i: number }>({ url: url('client-producer'), live: false })).json();
    expect(items.map((item) => item.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });

  for (const live of ['sse', 'long-poll'] as const) {
    test(`live tail over ${live} sees appends made after it connected, then EOF`, async () => {
      const name = `client-live-${live}`;
      const handle = await DurableStream.create({ url: url(name), contentType: 'application/json' });
      await handle.append(JSON.stringify({ n: 0 }));
      const response = await stream<{ n: number }>({ url: url(name), live, offset: '-1' });
      const seen: number[] = [];
      const done = new Promise<void>((resolve, reject) => {
        response.subscribeJson((batch) => {
          seen.push(...batch.items.map((item) => item.n));
          if (batch.streamClosed) resolve();
        });
        response.closed.catch(reject);
      });
      for (let n = 1; n <= 5; n++) {
        await new Promise((resolve) => setTimeout(resolve, 30));
        await handle.append(JSON.stringify({ n }));
      }
      await handle.close();
      await done;
      expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
      expect(response.streamClosed).toBe(true);
    });
  }

  test('SSE delivers text starting with spaces intact (one space after `data:` is the separator)', async () => {
    const name = 'client-sse-spaces';
    const handle = await DurableStream.create({ url: url(name), contentType: 'text/plain' });
    const response = await stream({ url: url(name), live: 'sse', offset: '-1' });
    let text = '';
    const done = new Promise<void>((resolve, reject) => {
      response.subscribeText((chunk) => {
        text += chunk.text;
        if (chunk.streamClosed) resolve();
      });
      response.closed.catch(reject);
    });
    const messages = [' one leading space', '  two,\n   then three on the next line', '\ta tab', 'data: looks like a field'];
    for (const message of messages) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      await handle.append(message);
    }
    await handle.close();
    await done;
    expect(text).toBe(messages.join(''));
  });

  test('resume from a saved offset returns only what came after it', async () => {
    const handle = await DurableStream.create({ url: url('client-resume'), contentType: 'text/plain' });
    await handle.append('first;');
    const firstRead = await stream({ url: url('client-resume'), live: false });
    expect(await firstRead.text()).toBe('first;');
    const saved = firstRead.offset;
    await handle.append('second;');
    await handle.append('third;');
    const resumed = await stream({ url: url('client-resume'), live: false, offset: saved });
    expect(await resumed.text()).toBe('second;third;');
  });
});
