/**
 * A tiny loopback upstream for the durable proxy's tests (node:http, port 0). Routes:
 * - `GET|POST /sse?tokens=N&delayMs=D&id=X`: an SSE answer of N events (`data: {"i":k,"token":"tN"}`),
 *   one every D ms, then the end; it records whether the connection closed before the end
 *   (`closedEarly(X)`), so tests can see an abort reach the upstream.
 * - `/status?code=C`: status C with a JSON body (4xx/5xx) or a `Location` (3xx).
 * - `/reset?bytes=B[&how=rst]`: B bytes, then the connection ended mid-body (FIN, so the bytes
 *   arrive first; `how=rst`: the socket destroyed, a reset that may overtake them).
 * - `/stall?bytes=B`: B bytes, then silence (idle timeout); `/hang`: no response head at all.
 * - `/echo`: the request's method, headers and body as JSON.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockUpstream {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** Requests seen, by `id` query parameter. */
  closedEarly(id: string): boolean;
  /** Resolves when request `id` ended (finished or closed early). */
  ended(id: string): Promise<void>;
  /** Number of requests that reached the upstream, by path. */
  hits(path: string): number;
  close(): Promise<void>;
}

export function sseToken(i: number): string {
  return `data: ${JSON.stringify({ i, token: `t${i}` })}\n\n`;
}

export async function startMockUpstream(): Promise<MockUpstream> {
  const early = new Map<string, boolean>();
  const endings = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const hits = new Map<string, number>();
  const ending = (id: string) => {
    let entry = endings.get(id);
    if (entry === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      entry = { promise, resolve };
      endings.set(id, entry);
    }
    return entry;
  };
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const id = url.searchParams.get('id') ?? '';
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      switch (url.pathname) {
        case '/sse': {
          const tokens = Number(url.searchParams.get('tokens') ?? '10');
          const delayMs = Number(url.searchParams.get('delayMs') ?? '20');
          response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          response.flushHeaders();
          let i = 0;
          let finished = false;
          const timer = setInterval(() => {
            if (i >= tokens) {
              clearInterval(timer);
              finished = true;
              response.end();
              ending(id).resolve();
              return;
            }
            response.write(sseToken(i++));
          }, delayMs);
          response.on('close', () => {
            clearInterval(timer);
            if (!finished) early.set(id, true);
            ending(id).resolve();
          });
          return;
        }
        case '/status': {
          const code = Number(url.searchParams.get('code') ?? '500');
          if (code >= 300 && code < 400) {
            response.writeHead(code, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
            return;
          }
          const body = JSON.stringify({ error: { message: `upstream says ${code}`, padding: 'x'.repeat(Number(url.searchParams.get('pad') ?? '0')) } });
          response.writeHead(code, { 'content-type': 'application/json' }).end(body);
          return;
        }
        case '/reset': {
          response.writeHead(200, { 'content-type': 'text/plain' });
          response.write('x'.repeat(Number(url.searchParams.get('bytes') ?? '100')));
          setTimeout(() => (url.searchParams.get('how') === 'rst' ? response.socket?.destroy() : response.socket?.end()), 50);
          return;
        }
        case '/stall': {
          response.writeHead(200, { 'content-type': 'text/plain' });
          response.write('y'.repeat(Number(url.searchParams.get('bytes') ?? '100')));
          response.on('close', () => ending(id).resolve());
          return;
        }
        case '/hang':
          response.on('close', () => ending(id).resolve());
          return;
        case '/echo':
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ method: request.method, headers: request.headers, body: Buffer.concat(chunks).toString('utf8') }));
          return;
        default:
          response.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    closedEarly: (id) => early.get(id) === true,
    ended: (id) => ending(id).promise,
    hits: (path) => hits.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
