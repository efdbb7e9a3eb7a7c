/**
 * A forwarded request whose owner never answers (paused, or cut off by the network) ends with
 * 503 + Retry-After once the answer timeout passes, and is not sent a second time (the owner may
 * have acted on it). The owner here is a real TCP listener that reads requests and answers none.
 */
import { createServer, type Server, type Socket } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { installErrorHandler } from '../../src/http/error-handler.ts';
import { installForwarding, peerAgent } from '../../src/http/forwarding.ts';

const ANSWER_TIMEOUT_MS = 1_000;

let silentOwner: Server;
const requestHeads: string[] = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  silentOwner = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      if (/^(GET|POST|PUT|HEAD|DELETE) /.test(text)) requestHeads.push(text.split('\r\n')[0] ?? '');
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => silentOwner.listen(0, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => silentOwner.close(() => resolve()));
});

async function forwardingApp() {
  const address = silentOwner.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const app = Fastify();
  installErrorHandler(app, 1024 * 1024);
  const forwarding = installForwarding(app, {
    router: {
      nodeId: 'node-a',
      route: () => ({ slot: 7, owner: { nodeId: 'node-b', epoch: 1 }, self: false, url: `http://127.0.0.1:${address.port}`, peerSocketPath: undefined }),
    },
    hosting: { heldHostPath: () => undefined, find: async () => undefined, learnHost: () => undefined, forget: () => undefined },
    clock: systemClock,
    streamPathBytesMax: 1024,
    answerTimeoutMs: ANSWER_TIMEOUT_MS,
    agent: peerAgent(),
  });
  app.post('/v1/stream/*', async () => 'answered locally');
  app.get('/v1/stream/*', async () => 'answered locally');
  await app.ready();
  return { app, forwarding };
}

describe('forwarding to an owner that never answers', () => {
  it('answers 503 with Retry-After after the answer timeout and sends an append once', async () => {
    const { app, forwarding } = await forwardingApp();
    try {
      requestHeads.length = 0;
      const response = await app.inject({ method: 'POST', url: '/v1/stream/silent/a', headers: { 'content-type': 'text/plain' }, payload: 'x' });
      expect(response.statusCode).toBe(503);
      expect(response.headers['retry-after']).toBeDefined();
      expect(response.body).toContain(`did not answer within ${ANSWER_TIMEOUT_MS} ms`);
      expect(requestHeads).toEqual(['POST /v1/stream/silent/a HTTP/1.1']);
      expect(forwarding.counts.retried).toBe(0);
    } finally {
      await forwarding.close().catch(() => undefined);
      await app.close();
    }
  }, 60_000);

  it('bounds a forwarded read the same way', async () => {
    const { app, forwarding } = await forwardingApp();
    try {
      requestHeads.length = 0;
      const response = await app.inject({ method: 'GET', url: '/v1/stream/silent/b?offset=-1' });
      expect(response.statusCode).toBe(503);
      expect(response.body).toContain('did not answer');
      expect(requestHeads).toEqual(['GET /v1/stream/silent/b?offset=-1 HTTP/1.1']);
    } finally {
      await forwarding.close().catch(() => undefined);
      await app.close();
    }
  }, 60_000);
});
