/**
 * A mock LLM API for the durable proxy demo and README walk-through: `POST /v1/chat/completions`
 * answers with Server-Sent Events in the shape of OpenAI's streaming chat completions, one word
 * every `tokenDelayMs` (`data: {"choices":[{"delta":{"content":"word "}}]}`), then `data: [DONE]`.
 * It counts the requests it answered, so a test can show that a reload never re-requests (and
 * never re-bills) the model.
 *
 * Standalone: `node_modules/.bin/node demo/proxy/mock-llm.ts [--port 8787] [--token-delay-ms 200]`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The words of the mock answer (the same for every prompt). */
export const ANSWER_WORDS = (
  'Durable streams make a streamed answer outlive the connection that carried it. ' +
  'The proxy makes the request once, writes every token to an append-only log as it arrives, ' +
  'and hands the browser a signed link. A reload, a lost network or a second tab reads the same ' +
  'log from where it stopped, so no token is lost, none is shown twice, and the model is never ' +
  'asked, or billed, again.'
).split(' ');

/** The whole answer text, as a reader assembles it from the deltas. */
export const ANSWER_TEXT = ANSWER_WORDS.map((word, i) => (i < ANSWER_WORDS.length - 1 ? `${word} ` : word)).join('');

export interface MockLlm {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Completions requested so far. */
  requests(): number;
  close(): Promise<void>;
}

export async function startMockLlm(options: { port?: number; tokenDelayMs?: number } = {}): Promise<MockLlm> {
  const tokenDelayMs = options.tokenDelayMs ?? 200;
  let requests = 0;
  const server = http.createServer((request, response) => {
    if (request.method !== 'POST' || request.url !== '/v1/chat/completions') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    request.resume();
    request.on('end', () => {
      requests++;
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      const timer = setInterval(() => {
        if (i < ANSWER_WORDS.length) {
          const content = i < ANSWER_WORDS.length - 1 ? `${ANSWER_WORDS[i]} ` : ANSWER_WORDS[i];
          response.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content } }] })}\n\n`);
          i++;
          return;
        }
        clearInterval(timer);
        response.end('data: [DONE]\n\n');
      }, tokenDelayMs);
      response.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const flag = (name: string, fallback: number) => {
    const at = process.argv.indexOf(name);
    return at === -1 ? fallback : Number(process.argv[at + 1]);
  };
  const llm = await startMockLlm({ port: flag('--port', 8787), tokenDelayMs: flag('--token-delay-ms', 200) });
  process.stdout.write(`mock LLM at ${llm.origin}/v1/chat/completions\n`);
}
