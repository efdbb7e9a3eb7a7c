/**
 * The HTTP transport under the S3 client (src/object-store/s3-store.ts): an undici connection pool
 * in place of the SDK's default `node:http` handler. The SDK still builds, signs (SigV4, with its
 * credential provider chain) and parses every request; this only sends the signed request and
 * hands back the status, headers and body stream.
 *
 * Why: cold reads move hundreds of MB/s of segment bytes through this client. With `node:http`
 * and the SDK's body collector a 4 MiB ranged GET cost about 17 ms of CPU (64 KiB chunks through
 * `IncomingMessage`, then one more copy to join them); undici's parser and pooled sockets cost a
 * fraction of that (bench/README.md, "Profiles behind the misses").
 *
 * Timeouts keep the SDK handler's meaning: `connectionTimeoutMs` to open a connection,
 * `requestTimeoutMs` until the response head arrives and, as the longest silence, while its body
 * streams. Errors are undici's, with their `code` (`UND_ERR_*`, `ECONNREFUSED`, …), which
 * s3-store.ts maps to the object-store errors.
 */
import { Agent } from 'undici';
import { buildQueryString, HttpResponse, type HttpRequest } from '@smithy/core/protocols';
import type { HttpHandlerOptions } from '@smithy/types';

export interface S3HttpHandlerOptions {
  /** Until the response head arrives, and the longest silence of a body; ms. */
  requestTimeoutMs: number;
  /** To open a TCP/TLS connection; ms. */
  connectionTimeoutMs: number;
  /** Connections kept per origin (concurrent requests beyond wait for one). */
  connectionsPerOriginMax: number;
}

/** Hop-by-hop request headers undici sets itself (or refuses); none of them is signed by SigV4. */
const UNSENT_HEADERS = new Set(['expect', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade']);

/** An SDK `requestHandler` (the shape of @smithy's HttpHandler) sending requests through undici. */
export class S3HttpHandler {
  readonly metadata = { handlerProtocol: 'http/1.1' };
  readonly #agent: Agent;

  constructor(options: S3HttpHandlerOptions) {
    this.#agent = new Agent({
      connect: { timeout: options.connectionTimeoutMs },
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
      connections: options.connectionsPerOriginMax,
    });
  }

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    const query = request.query === undefined ? '' : buildQueryString(request.query);
    let path = query === '' ? request.path : `${request.path}?${query}`;
    if (request.fragment) path += `#${request.fragment}`;
    const origin = `${request.protocol}//${request.hostname}${request.port === undefined ? '' : `:${request.port}`}`;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (!UNSENT_HEADERS.has(name.toLowerCase())) headers[name] = value;
    }
    const response = await this.#agent.request({
      origin,
      path,
      method: request.method as 'GET',
      headers,
      body: request.body as string | Uint8Array | undefined,
      signal: options.abortSignal as AbortSignal | undefined,
    });
    const responseHeaders: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return { response: new HttpResponse({ statusCode: response.statusCode, headers: responseHeaders, body: response.body }) };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    void this.#agent.destroy();
  }
}
