/**
 * A minimal HTTP/1.1 client on node:http for fault tests. One client (with its own keep-alive
 * agent) per server life, so no socket survives a restart. A request either resolves with the
 * complete response or rejects; a rejection while the server is being killed means "unknown
 * outcome" to the caller.
 */
import http from 'node:http';

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  timeoutMs?: number;
}

export class HttpClient {
  readonly #port: number;
  readonly #agent: http.Agent;

  constructor(port: number) {
    this.#port = port;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) headers['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port: this.#port, method, path, headers, agent: this.#agent }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('aborted', () => reject(new Error('response aborted')));
        response.on('end', () => {
          if (!response.complete) reject(new Error('response incomplete'));
          else resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) });
        });
      });
      request.setTimeout(options.timeoutMs ?? 30_000, () => request.destroy(new Error(`${method} ${path} timed out`)));
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Closes every pooled socket. */
  destroy(): void {
    this.#agent.destroy();
  }
}

/** A header as one string ('' when absent). */
export function header(response: Response, name: string): string {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : (value ?? '');
}
