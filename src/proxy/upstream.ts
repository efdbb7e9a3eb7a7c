/**
 * The upstream request of a proxy create (the Proxy Protocol v0.1 §4.1, §5, §6.1, §8.1), made with
 * undici: the host is resolved once, every address checked (./allowlist.ts), and the connection
 * made to a checked address (a lookup pinned to them), so a DNS answer that changes between check
 * and connect (rebinding) cannot reach a private address. Redirects are never followed. Timeouts:
 * connect (undici's connector), first byte (undici's headersTimeout), idle between body chunks
 * (undici's bodyTimeout), total (an injected-clock timer aborting the request).
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { Clock } from '../clock.ts';
import type { UpstreamAllowlist } from './allowlist.ts';
import { UpstreamNotAllowedError, UpstreamTimeoutError, UpstreamUnreachableError } from './errors.ts';
import type { UpstreamRequest } from './upstream-request.ts';

export type { UpstreamRequest } from './upstream-request.ts';

/** Why the proxy itself ended an upstream request: PATCH abort, a timeout, the server stopping. */
export type EndReason = 'aborted' | 'timed-out' | 'interrupted';

export interface UpstreamTimeouts {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  totalTimeoutMs: number;
}


/** An upstream response head, its body still to be read. */
export interface UpstreamResponse {
  status: number;
  contentType: string | undefined;
  body: Readable;
  /** Why the request ended early, if it did: set by `abort`, the total timeout. */
  readonly endReason: EndReason | undefined;
  /** Cancels the request (idempotent: the first reason stays); the body then ends with an error. */
  abort(reason: EndReason): void;
  /** Releases the connection and timers; call once the body is done with. */
  close(): void;
}

/** The upstream request of one create; see the module comment. */
export class UpstreamClient {
  readonly #allowlist: UpstreamAllowlist;
  readonly #timeouts: UpstreamTimeouts;
  readonly #clock: Clock;

  constructor(allowlist: UpstreamAllowlist, timeouts: UpstreamTimeouts, clock: Clock) {
    this.#allowlist = allowlist;
    this.#timeouts = timeouts;
    this.#clock = clock;
  }

  /**
   * Checks the URL and its addresses, then sends the request and waits for the response head.
   * @throws UpstreamNotAllowedError (403: allowlist, private address), UpstreamTimeoutError (504:
   *   connect or first byte), UpstreamUnreachableError (502: DNS failure, refused, reset).
   */
  async send(upstream: UpstreamRequest): Promise<UpstreamResponse> {
    const permit = this.#allowlist.checkUrl(upstream.url);
    const host = permit.url.hostname.replace(/^\[|\]$/g, '');
    let resolved: { address: string; family: number }[];
    try {
      resolved = await dnsLookup(host, { all: true, verbatim: true });
    } catch (error) {
      throw new UpstreamUnreachableError(`cannot resolve the upstream host: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, error);
    }
    this.#allowlist.checkAddresses(
      permit,
      resolved.map((entry) => entry.address),
    );
    const pinned: LookupFunction = (_hostname, options, callback) => {
      const family = typeof options === 'object' ? options.family : undefined;
      const fitting = resolved.filter((entry) => family === undefined || family === 0 || entry.family === family);
      const candidates = fitting.length > 0 ? fitting : resolved;
      if (typeof options === 'object' && options.all === true) {
        (callback as unknown as (error: null, addresses: { address: string; family: number }[]) => void)(null, candidates);
      } else {
        callback(null, candidates[0]?.address ?? '', candidates[0]?.family ?? 4);
      }
    };
    const agent = new Agent({
      connect: { lookup: pinned, timeout: this.#timeouts.connectTimeoutMs },
      connections: 1,
      pipelining: 0,
    });
    const controller = new AbortController();
    let endReason: EndReason | undefined;
    const abort = (reason: EndReason) => {
      endReason ??= reason;
      controller.abort(new Error(`upstream request ${reason}`));
    };
    const total = this.#clock.setTimeout(() => abort('timed-out'), this.#timeouts.totalTimeoutMs).unref();
    const close = () => {
      total.cancel();
      agent.destroy().catch(() => {});
    };
    let response: Dispatcher.ResponseData;
    try {
      response = await request(permit.url, {
        method: upstream.method,
        headers: upstream.headers,
        body: upstream.body,
        dispatcher: agent,
        signal: controller.signal,
        headersTimeout: this.#timeouts.firstByteTimeoutMs,
        bodyTimeout: this.#timeouts.idleTimeoutMs,
        maxRedirections: 0,
      });
    } catch (error) {
      close();
      throw headError(error, endReason, this.#timeouts);
    }
    // Destroying the body (abort, an error body dropped) makes it emit an error; whoever reads it
    // sees that through its iterator, and nobody else must crash on it.
    response.body.on('error', () => {});
    const contentType = response.headers['content-type'];
    return {
      status: response.statusCode,
      contentType: Array.isArray(contentType) ? contentType[0] : contentType,
      body: response.body,
      get endReason() {
        return endReason;
      },
      abort,
      close,
    };
  }
}

/** The error of a request that failed before its response head. */
function headError(error: unknown, endReason: string | undefined, timeouts: UpstreamTimeouts): Error {
  if (error instanceof UpstreamNotAllowedError) return error;
  const code = (error as { code?: string }).code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamTimeoutError(`no connection to the upstream within ${timeouts.connectTimeoutMs} ms`);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamTimeoutError(`no response head from the upstream within ${timeouts.firstByteTimeoutMs} ms`);
  if (endReason === 'timed-out') return new UpstreamTimeoutError(`the upstream exchange took longer than ${timeouts.totalTimeoutMs} ms`);
  return new UpstreamUnreachableError(`the upstream request failed: ${code ?? (error as Error).message}`, error);
}

/** Reads at most `bytesMax` of a body (an upstream error body, §12.3), then drops the rest. */
export async function readTruncated(body: Readable, bytesMax: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      chunks.push(buffer.subarray(0, bytesMax - length));
      length += Math.min(buffer.length, bytesMax - length);
      if (length >= bytesMax) break;
    }
  } catch {
    // A body cut short still gives what arrived.
  }
  body.destroy();
  return Buffer.concat(chunks);
}
