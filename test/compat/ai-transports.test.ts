/**
 * The AI transports against Cairn, embedded and sealed, with no network model:
 * - @durable-streams/aisdk-transport with `ai`'s `streamText` over `MockLanguageModelV3` (ai/test):
 *   the app's route writes the UI message stream into a durable stream (`toDurableStreamResponse`)
 *   and the chat transport reads it over SSE; a second reader reconnects mid-generation
 *   (`reconnectToStream`) and still sees the whole answer, then the stream closes.
 * - @durable-streams/tanstack-ai-transport: a chat session (`toDurableChatSessionResponse`) with
 *   AG-UI chunks, followed live by `durableStreamConnection().subscribe()` (snapshot, then live
 *   chunks), and materialised afterwards by `materializeSnapshotFromDurableStream` (`live: false`).
 * The app's HTTP routes are called in process through the transports' `fetchClient`; every
 * durable-stream request goes to Cairn over HTTP.
 *
 * How it fails on a broken server: a lost, repeated or reordered JSON message between the
 * catch-up and the live tail garbles or truncates the assembled answer (text assertions), a
 * missing `streamClosed` leaves the readers waiting (timeouts). Checked by serving offset `-1` as
 * `now` (the history is skipped): the text assertions fail.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { simulateReadableStream, streamText, type UIMessage, type UIMessageChunk } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { createDurableChatTransport, toDurableStreamResponse } from '@durable-streams/aisdk-transport';
import { durableStreamConnection, materializeSnapshotFromDurableStream, toDurableChatSessionResponse } from '@durable-streams/tanstack-ai-transport';
import type { TestServer } from '../support/server.ts';
import { COMPAT_MODES, startCompatServer } from './support.ts';

const WORDS = Array.from({ length: 40 }, (_, i) => `word${i} `);
const ANSWER = WORDS.join('');

/** A model that streams WORDS, `delayMs` apart. */
function mockModel(delayMs: number): MockLanguageModelV3 {
  return new MockLanguageModelV3({
    doStream: async () => ({
      stream: simulateReadableStream({
        initialDelayInMs: delayMs,
        chunkDelayInMs: delayMs,
        chunks: [
          { type: 'stream-start' as const, warnings: [] },
          { type: 'text-start' as const, id: 't1' },
          ...WORDS.map((delta) => ({ type: 'text-delta' as const, id: 't1', delta })),
          { type: 'text-end' as const, id: 't1' },
          {
            type: 'finish' as const,
            finishReason: { unified: 'stop' as const, raw: 'stop' },
            usage: { inputTokens: { total: 3, noCache: 3, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 40, text: 40, reasoning: 0 } },
          },
        ],
      }),
    }),
  });
}

async function textOf(chunks: ReadableStream<UIMessageChunk>, stopAfter?: number): Promise<string> {
  let text = '';
  let seen = 0;
  const reader = chunks.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (value.type === 'text-delta') text += value.delta;
    if (stopAfter !== undefined && ++seen >= stopAfter) {
      await reader.cancel();
      break;
    }
  }
  return text;
}

describe.each(COMPAT_MODES)('AI transports, %s', (mode) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCompatServer(mode);
  });
  afterAll(() => server.stop());

  test('aisdk-transport: the chat reads the generated answer; a reconnect mid-generation gets all of it', async () => {
    const streamUrl = `${server.url}/v1/stream/chats/chat-1`;
    // The app's two routes, called in process: POST starts a generation, GET …/stream resumes it.
    const app: typeof fetch = async (input, init) => {
      const url = String(input);
      if (init?.method === 'POST') {
        const result = streamText({ model: mockModel(15), prompt: 'say forty words' });
        return toDurableStreamResponse({ source: result.toUIMessageStream(), stream: { writeUrl: streamUrl } });
      }
      if (url.endsWith('/chat-1/stream')) return new Response(null, { status: 200, headers: { Location: streamUrl } });
      return new Response('not found', { status: 404 });
    };
    const transport = createDurableChatTransport({ api: 'http://app.invalid/api/chat', fetchClient: app });
    const messages: UIMessage[] = [{ id: 'u1', role: 'user', parts: [{ type: 'text', text: 'say forty words' }] }];
    const first = await transport.sendMessages({ trigger: 'submit-message', chatId: 'chat-1', messageId: undefined, messages, abortSignal: undefined });
    // The first reader goes away after a few chunks, while the model is still generating.
    const partial = await textOf(first, 8);
    expect(ANSWER.startsWith(partial)).toBe(true);
    expect(partial.length).toBeLessThan(ANSWER.length);

    const resumed = await transport.reconnectToStream({ chatId: 'chat-1' });
    expect(resumed).not.toBeNull();
    expect(await textOf(resumed as ReadableStream<UIMessageChunk>)).toBe(ANSWER);
    // After the close, a late reader replays the same answer from history (sealed in sealed mode).
    const replay = await transport.reconnectToStream({ chatId: 'chat-1' });
    expect(await textOf(replay as ReadableStream<UIMessageChunk>)).toBe(ANSWER);
  }, 60_000);

  test('tanstack-ai-transport: a session followed live, then materialised from history', async () => {
    const streamUrl = `${server.url}/v1/stream/sessions/s-1`;
    async function* assistant(): AsyncGenerator<Record<string, unknown>> {
      yield { type: 'TEXT_MESSAGE_START', messageId: 'a1', role: 'assistant' };
      for (const delta of WORDS) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        yield { type: 'TEXT_MESSAGE_CONTENT', messageId: 'a1', delta };
      }
      yield { type: 'TEXT_MESSAGE_END', messageId: 'a1' };
      yield { type: 'RUN_FINISHED', runId: 'r1' };
    }
    let writing: Promise<unknown> = Promise.resolve();
    const app: typeof fetch = async (_input, init) => {
      const { messages } = JSON.parse(String(init?.body)) as { messages: { id: string; role: string; parts: { type: string; content: string }[] }[] };
      return toDurableChatSessionResponse({
        stream: { writeUrl: streamUrl },
        newMessages: messages,
        responseStream: assistant(),
        waitUntil: (promise) => {
          writing = promise;
        },
      });
    };
    const connection = durableStreamConnection({ sendUrl: 'http://app.invalid/api/session', readUrl: streamUrl, fetchClient: app });
    await connection.send([{ id: 'u1', role: 'user', parts: [{ type: 'text', content: 'say forty words' }] }]);

    const abort = new AbortController();
    let live = '';
    let snapshot: unknown[] | undefined;
    for await (const chunk of connection.subscribe(abort.signal)) {
      if (chunk.type === 'MESSAGES_SNAPSHOT') snapshot = chunk.messages;
      if (chunk.type === 'TEXT_MESSAGE_CONTENT') live += chunk.delta;
      if (chunk.type === 'RUN_FINISHED') break;
    }
    abort.abort();
    await writing;
    expect(snapshot).toBeDefined();
    // What the snapshot already held plus what came live is the whole answer, once.
    const snapshotText = JSON.stringify(snapshot).match(/word\d+ /g)?.join('') ?? '';
    expect(snapshotText + live).toBe(ANSWER);

    const history = await materializeSnapshotFromDurableStream({ readUrl: streamUrl });
    const assistantMessage = history.messages.find((message: { id?: string }) => message.id === 'a1');
    expect(JSON.stringify(assistantMessage).match(/word\d+ /g)?.join('')).toBe(ANSWER);
    expect(history.messages.some((message: { id?: string; role?: string }) => message.id === 'u1' && message.role === 'user')).toBe(true);
  }, 60_000);
});
