/**
 * A minimal HTTP/1.1 GET client for reading large bodies cheaply: one keep-alive connection,
 * sequential requests, and socket reads into one reused 1 MiB buffer (`net` `onread`), so a body
 * costs no allocation and no per-chunk stream machinery. Measured on the benchmark machine, it
 * reads a 256 MiB catch-up with about a quarter of the CPU `node:http` needs (~60 ms against
 * ~250 ms), which keeps the load generator far from being the limit.
 *
 * Understands what the two servers under test send: `Content-Length`, `Transfer-Encoding:
 * chunked` (the reference server), bodies ending at connection close, no body for 204/304, and
 * `Connection: close`. Not a general client: no redirects, no pipelining, no TLS, no 1xx.
 * Body bytes are handed to `onBody` as views into the reused buffer, valid only during the call.
 * `post()` sends a body the same way (e.g. one append); the live benchmarks hold thousands of
 * clients in one process, so a client may connect from a given loopback source address and share
 * its read buffer with others (`RawHttpClientOptions`).
 */
import { connect, type Socket } from 'node:net';

const READ_BUFFER_BYTES = 1024 * 1024;
/** A response head larger than this is refused (the servers send about 1 KiB). */
const HEAD_BYTES_MAX = 64 * 1024;
/** Head bytes decoded per step while looking for its end, so a body behind it is not decoded. */
const HEAD_STEP_BYTES = 8 * 1024;

export interface RawHttpClientOptions {
  /** Source address to connect from, e.g. `127.0.0.2`, to spread many connections over loopback addresses. */
  localAddress?: string;
  /**
   * The buffer socket reads land in. Clients in one process may share one: bytes are consumed
   * synchronously in the read callback. Default: a 1 MiB buffer of the client's own.
   */
  readBuffer?: Buffer;
}

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with `, `. */
  headers: Map<string, string>;
  bodyBytes: number;
}

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'until-close' };
type ChunkState = 'size' | 'data' | 'data-end' | 'trailers';

interface Pending {
  onBody: (chunk: Uint8Array) => void;
  resolve: (response: RawResponse) => void;
  reject: (error: Error) => void;
  response?: RawResponse;
  framing?: Framing;
  head: string;
  /** For chunked bodies: where in the framing we are, the line being read, bytes left in the chunk. */
  chunkState: ChunkState;
  line: string;
  chunkRemaining: number;
}

export class RawHttpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #localAddress: string | undefined;
  readonly #buffer: Buffer;
  #socket: Socket | undefined;
  #connected: Promise<void> | undefined;
  #pending: Pending | undefined;
  /** Set after `Connection: close` or a failure: the next request opens a new connection. */
  #reusable = false;

  constructor(host: string, port: number, options: RawHttpClientOptions = {}) {
    this.#host = host;
    this.#port = port;
    this.#localAddress = options.localAddress;
    this.#buffer = options.readBuffer ?? Buffer.allocUnsafe(READ_BUFFER_BYTES);
  }

  /** GET `pathAndQuery` (e.g. `/v1/stream/x?offset=-1`); resolves when the whole body was read. */
  get(pathAndQuery: string, onBody: (chunk: Uint8Array) => void): Promise<RawResponse> {
    return this.#request(`GET ${pathAndQuery} HTTP/1.1\r\n`, undefined, onBody);
  }

  /**
   * POST `body` to `pathAndQuery` with `Content-Type: contentType`; resolves when the whole
   * response was read. `beforeWrite` runs right before the request is written to the connected
   * socket (where a latency measurement starts).
   */
  post(pathAndQuery: string, contentType: string, body: Uint8Array, onBody: (chunk: Uint8Array) => void, beforeWrite?: () => void): Promise<RawResponse> {
    const head = `POST ${pathAndQuery} HTTP/1.1\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n`;
    return this.#request(head, body, onBody, beforeWrite);
  }

  async #request(requestLine: string, body: Uint8Array | undefined, onBody: (chunk: Uint8Array) => void, beforeWrite?: () => void): Promise<RawResponse> {
    if (this.#pending !== undefined) throw new Error('RawHttpClient: one request at a time');
    if (!this.#reusable) this.#open();
    await this.#connected;
    const socket = this.#socket;
    if (socket === undefined) throw new Error('RawHttpClient: not connected');
    return new Promise<RawResponse>((resolve, reject) => {
      this.#pending = { onBody, resolve, reject, head: '', chunkState: 'size', line: '', chunkRemaining: 0 };
      const head = `${requestLine}Host: ${this.#host}:${this.#port}\r\nAccept-Encoding: identity\r\nConnection: keep-alive\r\n\r\n`;
      beforeWrite?.();
      if (body === undefined) socket.write(head);
      else {
        socket.cork();
        socket.write(head);
        socket.write(body);
        socket.uncork();
      }
    });
  }

  close(): void {
    this.#reusable = false;
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #open(): void {
    this.#socket?.destroy();
    const socket = connect({
      host: this.#host,
      port: this.#port,
      ...(this.#localAddress === undefined ? {} : { localAddress: this.#localAddress }),
      noDelay: true,
      onread: {
        buffer: this.#buffer,
        callback: (byteCount: number, buffer: Uint8Array) => {
          try {
            this.#feed(buffer.subarray(0, byteCount));
          } catch (error) {
            this.#fail(error as Error);
          }
          return true;
        },
      },
    });
    this.#socket = socket;
    this.#reusable = true;
    this.#connected = new Promise((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', (error) => this.#fail(error));
    socket.on('end', () => {
      const pending = this.#pending;
      if (pending?.framing?.kind === 'until-close') this.#finish(pending);
      else if (pending !== undefined) this.#fail(new Error('connection closed before the response was complete'));
      this.#reusable = false;
    });
    socket.on('close', () => {
      this.#reusable = false;
      if (this.#pending !== undefined) this.#fail(new Error('connection closed before the response was complete'));
    });
  }

  #fail(error: Error): void {
    this.#reusable = false;
    this.#socket?.destroy();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(error);
  }

  #finish(pending: Pending): void {
    this.#pending = undefined;
    const response = pending.response;
    if (response === undefined) {
      pending.reject(new Error('no response head'));
      return;
    }
    if (response.headers.get('connection')?.toLowerCase() === 'close' || pending.framing?.kind === 'until-close') {
      this.#reusable = false;
      this.#socket?.destroy();
    }
    pending.resolve(response);
  }

  #feed(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const pending = this.#pending;
      if (pending === undefined) throw new Error('bytes received with no request outstanding');
      if (pending.response === undefined) {
        at = this.#readHead(pending, bytes, at);
        continue;
      }
      at = this.#readBody(pending, bytes, at);
    }
  }

  /** Reads head bytes from `at`; returns where the body starts (or `bytes.length`). */
  #readHead(pending: Pending, bytes: Uint8Array, at: number): number {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + at, Math.min(bytes.length - at, HEAD_STEP_BYTES)).toString('latin1');
    const before = pending.head.length;
    const joined = pending.head + text;
    const end = joined.indexOf('\r\n\r\n');
    if (end === -1) {
      if (joined.length > HEAD_BYTES_MAX) throw new Error(`response head larger than ${HEAD_BYTES_MAX} bytes`);
      pending.head = joined;
      return at + text.length;
    }
    const [statusLine = '', ...lines] = joined.slice(0, end).split('\r\n');
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (match === null) throw new Error(`bad status line: ${statusLine.slice(0, 100)}`);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`bad header line: ${line.slice(0, 100)}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const previous = headers.get(name);
      headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
    }
    const status = Number(match[1]);
    pending.response = { status, headers, bodyBytes: 0 };
    pending.head = '';
    const lengthText = headers.get('content-length');
    if (status === 204 || status === 304) pending.framing = { kind: 'length', remaining: 0 };
    else if (headers.get('transfer-encoding')?.toLowerCase().includes('chunked')) pending.framing = { kind: 'chunked' };
    else if (lengthText !== undefined) {
      const length = Number(lengthText);
      if (!Number.isSafeInteger(length) || length < 0) throw new Error(`bad Content-Length: ${lengthText}`);
      pending.framing = { kind: 'length', remaining: length };
    } else pending.framing = { kind: 'until-close' };
    const bodyStart = at + (end + 4 - before);
    if (pending.framing.kind === 'length' && pending.framing.remaining === 0) this.#finish(pending);
    return bodyStart;
  }

  #deliver(pending: Pending, view: Uint8Array): void {
    if (view.length === 0) return;
    if (pending.response !== undefined) pending.response.bodyBytes += view.length;
    pending.onBody(view);
  }

  /** Reads body bytes from `at`; returns where the next unread byte is. */
  #readBody(pending: Pending, bytes: Uint8Array, at: number): number {
    const framing = pending.framing;
    if (framing === undefined) throw new Error('no framing');
    if (framing.kind === 'until-close') {
      this.#deliver(pending, bytes.subarray(at));
      return bytes.length;
    }
    if (framing.kind === 'length') {
      const take = Math.min(framing.remaining, bytes.length - at);
      this.#deliver(pending, bytes.subarray(at, at + take));
      framing.remaining -= take;
      if (framing.remaining === 0) this.#finish(pending);
      return at + take;
    }
    return this.#readChunked(pending, bytes, at);
  }

  #readChunked(pending: Pending, bytes: Uint8Array, at: number): number {
    switch (pending.chunkState) {
      case 'data': {
        const take = Math.min(pending.chunkRemaining, bytes.length - at);
        this.#deliver(pending, bytes.subarray(at, at + take));
        pending.chunkRemaining -= take;
        if (pending.chunkRemaining === 0) {
          pending.chunkState = 'data-end';
          pending.line = '';
        }
        return at + take;
      }
      case 'size':
      case 'data-end':
      case 'trailers': {
        // Line-oriented states: read up to and including the next LF.
        let index = at;
        while (index < bytes.length && bytes[index] !== 0x0a) index++;
        pending.line += Buffer.from(bytes.buffer, bytes.byteOffset + at, index - at).toString('latin1');
        if (pending.line.length > HEAD_BYTES_MAX) throw new Error('chunk framing line too long');
        if (index === bytes.length) return index;
        const line = pending.line.replace(/\r$/, '');
        pending.line = '';
        if (pending.chunkState === 'data-end') {
          if (line !== '') throw new Error('chunk data not followed by CRLF');
          pending.chunkState = 'size';
        } else if (pending.chunkState === 'size') {
          const size = Number.parseInt(line.split(';')[0] ?? '', 16);
          if (!Number.isSafeInteger(size) || size < 0) throw new Error(`bad chunk size line: ${line.slice(0, 100)}`);
          if (size === 0) pending.chunkState = 'trailers';
          else {
            pending.chunkState = 'data';
            pending.chunkRemaining = size;
          }
        } else if (line === '') {
          this.#finish(pending);
        }
        return index + 1;
      }
    }
  }
}
