/**
 * The HTTP transport under the S3 client (src/object-store/s3-store.ts): an undici connection pool
 * in place of the SDK's default `node:http` handler. The SDK still builds, signs (SigV4, with its
 * credential provider chain) and parses every request; this only sends the signed request and
 * hands back the status, headers and body. The body is received whole before the response is
 * handed back, straight into one buffer of `Content-Length` bytes (`ReceivedBody`, which the S3
 * store takes as it is): Cairn reads whole segments and read units, never streams them.
 *
 * Why: cold reads move hundreds of MB/s of segment bytes through this client. With `node:http`
 * and the SDK's body collector a 4 MiB ranged GET cost about 17 ms of CPU (64 KiB chunks through
 * `IncomingMessage`, then one more copy to join them); undici's parser and pooled sockets cost a
 * fraction of that (bench/README.md, "Profiles behind the misses").
 *
 * Timeouts keep the SDK handler's meaning: `connectionTimeoutMs` to open a connection,
 * `requestTimeoutMs` until the response head arrives and, as the longest silence, while its body
 * arrives. Errors are undici's, with their `code` (`UND_ERR_*`, `ECONNREFUSED`, …), which
 * s3-store.ts maps to the object-store errors.
 */
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
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
    const signal = options.abortSignal as AbortSignal | undefined;
    signal?.throwIfAborted();
    const received = await new Promise<Received>((resolve, reject) => {
      this.#agent.dispatch(
        { origin, path, method: request.method as Dispatcher.HttpMethod, headers, body: request.body as string | Uint8Array | undefined },
        new ReceivingHandler(resolve, reject, signal),
      );
    });
    return {
      response: new HttpResponse({ statusCode: received.statusCode, headers: received.headers, body: new ReceivedBody(received.body) }),
    };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    void this.#agent.destroy();
  }
}

/** A whole response as the handler received it. */
interface Received {
  statusCode: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

/**
 * Largest `Content-Length` preallocated as one buffer: 1 GiB (S3 objects Cairn reads are segments
 * of megabytes; a larger announced length is collected in chunks as they arrive instead).
 */
const PREALLOCATED_BYTES_MAX = 1024 * 1024 * 1024;

/**
 * An undici dispatch handler that copies the response body, chunk by chunk as the parser hands it
 * over, into one buffer of `Content-Length` bytes allocated at the first chunk (the body of a HEAD
 * has none): no stream between the socket and that buffer, and no second copy to join chunks.
 * A body longer than announced is kept whole (joined), a shorter one cut to what arrived, so the
 * caller's length check sees the truth.
 */
class ReceivingHandler implements Dispatcher.DispatchHandlers {
  readonly #resolve: (received: Received) => void;
  readonly #reject: (error: Error) => void;
  readonly #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #statusCode = 0;
  #headers: Record<string, string> = {};
  #contentLength: number | undefined;
  #bytes: Uint8Array | undefined;
  #filled = 0;
  /** Chunks of a body of unknown length (or longer than announced), joined at the end. */
  #chunks: Uint8Array[] | undefined;
  #settled = false;

  constructor(resolve: (received: Received) => void, reject: (error: Error) => void, signal: AbortSignal | undefined) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.#signal === undefined) return;
    const onAbort = () => abort(this.#signal!.reason instanceof Error ? this.#signal!.reason : new Error('request aborted'));
    if (this.#signal.aborted) return onAbort();
    this.#onAbort = onAbort;
    this.#signal.addEventListener('abort', onAbort, { once: true });
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[]): boolean {
    this.#statusCode = statusCode;
    const headers: Record<string, string> = {};
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1').toLowerCase();
      const value = rawHeaders[i + 1]!.toString('latin1');
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    this.#headers = headers;
    const length = headers['content-length'] === undefined ? Number.NaN : Number(headers['content-length']);
    if (Number.isSafeInteger(length) && length > 0 && length <= PREALLOCATED_BYTES_MAX) this.#contentLength = length;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#chunks === undefined && this.#contentLength !== undefined) {
      // Not zero-filled: every byte is overwritten, or the shorter view is returned.
      this.#bytes ??= asUint8Array(Buffer.allocUnsafeSlow(this.#contentLength));
      if (this.#filled + chunk.length <= this.#bytes.length) {
        this.#bytes.set(chunk, this.#filled);
        this.#filled += chunk.length;
        return true;
      }
      this.#chunks = [this.#bytes.subarray(0, this.#filled)];
    }
    // Copied: undici may hand over a view of a buffer it reuses.
    (this.#chunks ??= []).push(Uint8Array.prototype.slice.call(chunk));
    return true;
  }

  onComplete(): void {
    let body: Uint8Array;
    if (this.#chunks !== undefined) body = asUint8Array(Buffer.concat(this.#chunks));
    else if (this.#bytes !== undefined) body = this.#filled === this.#bytes.length ? this.#bytes : this.#bytes.subarray(0, this.#filled);
    else body = new Uint8Array(0);
    this.#settle();
    this.#resolve({ statusCode: this.#statusCode, headers: this.#headers, body });
  }

  onError(error: Error): void {
    this.#settle();
    this.#reject(error);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/**
 * A response body already in memory, as the Node stream the SDK expects of a response (it reads
 * error bodies through it and hands a GET's body to its caller). `bytes` is the body itself: the
 * S3 store takes it from there without streaming it.
 */
export class ReceivedBody extends Readable {
  readonly bytes: Uint8Array;
  #pushed = false;

  constructor(bytes: Uint8Array) {
    super();
    this.bytes = bytes;
  }

  override _read(): void {
    if (!this.#pushed && this.bytes.length > 0) this.push(this.bytes);
    this.#pushed = true;
    this.push(null);
  }
}

/** A plain Uint8Array over a Buffer's bytes (no copy). */
function asUint8Array(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
