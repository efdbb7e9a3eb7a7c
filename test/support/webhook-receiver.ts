/**
 * A webhook receiver on 127.0.0.1:0 for subscription tests: records every request (raw body,
 * parsed body, `Webhook-Signature`), answers with what `respond` returns (default 200 `{}`), and
 * lets tests wait for the n-th request. Also verifies signatures against a JWK Set (PROTOCOL.md
 * §7.1: Ed25519 over `<t>.<raw body>`, key chosen by `kid`).
 */
import { createPublicKey, verify, type JsonWebKey } from 'node:crypto';
import http from 'node:http';
import { waitFor } from './streams.ts';

export interface WakeBody {
  subscription_id: string;
  wake_id: string;
  generation: number;
  streams: { path: string; link_type: string; acked_offset: string; tail_offset: string; has_pending: boolean }[];
  callback_url: string;
  callback_token: string;
}

export interface ReceivedWebhook {
  rawBody: string;
  body: WakeBody;
  signature: string | undefined;
}

export interface WebhookResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Resolves with the `count`-th request (1-based) once it arrived. */
  nth(count: number, timeoutMs?: number): Promise<ReceivedWebhook>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(respond: (request: ReceivedWebhook) => WebhookResponse = () => ({ status: 200, body: {} })): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const signature = req.headers['webhook-signature'];
      const request: ReceivedWebhook = { rawBody, body: JSON.parse(rawBody) as WakeBody, signature: typeof signature === 'string' ? signature : undefined };
      received.push(request);
      const answer = respond(request);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('receiver has no port');
  return {
    url: `http://127.0.0.1:${address.port}/hook`,
    received,
    async nth(count, timeoutMs = 20_000) {
      await waitFor(() => received.length >= count, timeoutMs);
      return received[count - 1] as ReceivedWebhook;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** True when `signature` is a valid `Webhook-Signature` of `rawBody` by a key of `jwks`. */
export function verifySignature(rawBody: string, signature: string | undefined, jwks: { keys: (JsonWebKey & { kid?: string })[] }): boolean {
  const match = /^t=(\d+),kid=([^,]+),ed25519=([A-Za-z0-9_-]+)$/.exec(signature ?? '');
  if (match === null) return false;
  const [, timestamp, kid, sig] = match;
  const key = jwks.keys.find((candidate) => candidate.kid === kid);
  if (key === undefined) return false;
  return verify(null, Buffer.from(`${timestamp}.${rawBody}`), createPublicKey({ key, format: 'jwk' }), Buffer.from(sig as string, 'base64url'));
}
