/**
 * The pieces the live benchmarks (`live`, `fan-out`) run inside their load-generator process: a
 * writer, long-poll and SSE readers that tail one stream, and the message format that lets every
 * reader check it got every append, in order, byte-exact.
 *
 * Messages are fixed-size ASCII records (`m` + 9-digit sequence number + `:` + filler derived from
 * the number), so a reader recognises each append in whatever batches the server delivers them
 * (one SSE `data` event per append, or several appends in one long-poll body). The stream is
 * `text/plain`, so SSE data events carry the text itself (PROTOCOL.md §5.8) on both servers.
 * Send and receive times come from one clock, `performance.now()`, in the same process.
 *
 * Readers run on bench/lib/raw-http-client.ts (one keep-alive socket each, optionally sharing one
 * read buffer and connecting from a chosen loopback address), not node:http: the fan-out
 * benchmark holds 10,000 of them in one process.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuSeconds } from './cpu.ts';
import { RawHttpClient, type RawResponse } from './raw-http-client.ts';

/** Content type of the benchmark stream: text, so SSE data events are not base64 on either server. */
export const LIVE_CONTENT_TYPE = 'text/plain';
/** `m` + 9 digits + `:`: the smallest message. */
export const MESSAGE_BYTES_MIN = 11;
const FILLER = 'abcdefghijklmnopqrstuvwxyz0123456789';
/** An SSE line longer than this (no newline yet) is a broken stream, not a big message. */
const SSE_LINE_CHARS_MAX = 4 * 1024 * 1024;
/** A reader whose connection keeps failing gives up after this many reconnects. */
const RECONNECTS_MAX = 5;

/** Message `seq` as text of exactly `messageBytes` ASCII characters. */
export function messageText(seq: number, messageBytes: number): string {
  const head = `m${String(seq).padStart(9, '0')}:`;
  let text = head;
  for (let index = 0; text.length < messageBytes; index++) text += FILLER[(seq + index) % FILLER.length];
  return text;
}

function latin1(chunk: Uint8Array): string {
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length).toString('latin1');
}

/**
 * Splits delivered text into messages and checks each is the next expected one, byte-exact.
 * Calls `onMessage(seq, atMs)` per complete message; after the first mismatch `failure` is set
 * and nothing more is reported.
 */
export class MessageSequence {
  readonly #messageBytes: number;
  readonly #onMessage: (seq: number, atMs: number) => void;
  #partial = '';
  /** The sequence number of the next message expected. */
  nextSeq: number;
  failure: string | undefined;

  constructor(messageBytes: number, firstSeq: number, onMessage: (seq: number, atMs: number) => void) {
    this.#messageBytes = messageBytes;
    this.nextSeq = firstSeq;
    this.#onMessage = onMessage;
  }

  feed(text: string, atMs: number): void {
    if (this.failure !== undefined) return;
    const all = this.#partial === '' ? text : this.#partial + text;
    let at = 0;
    while (all.length - at >= this.#messageBytes) {
      const got = all.slice(at, at + this.#messageBytes);
      const expected = messageText(this.nextSeq, this.#messageBytes);
      if (got !== expected) {
        this.failure = `expected message ${this.nextSeq}, got ${JSON.stringify(got.slice(0, 24))}…`;
        return;
      }
      at += this.#messageBytes;
      this.#onMessage(this.nextSeq, atMs);
      this.nextSeq++;
    }
    this.#partial = all.slice(at);
  }
}

/**
 * Server-Sent Events framing (the subset both servers emit): `event:` and `data:` fields, one
 * optional space after the colon, comments, LF or CRLF line ends; an empty line dispatches.
 */
class SseParser {
  #partial = '';
  #eventType = '';
  #data: string[] = [];

  feed(text: string, onEvent: (type: string, data: string) => void): void {
    const all = this.#partial === '' ? text : this.#partial + text;
    let start = 0;
    for (;;) {
      const newline = all.indexOf('\n', start);
      if (newline === -1) break;
      const end = newline > start && all.charCodeAt(newline - 1) === 13 ? newline - 1 : newline;
      this.#line(all.slice(start, end), onEvent);
      start = newline + 1;
    }
    this.#partial = start === all.length ? '' : all.slice(start);
    if (this.#partial.length > SSE_LINE_CHARS_MAX) throw new Error(`SSE line longer than ${SSE_LINE_CHARS_MAX} characters`);
  }

  #line(line: string, onEvent: (type: string, data: string) => void): void {
    if (line === '') {
      if (this.#data.length > 0) onEvent(this.#eventType === '' ? 'message' : this.#eventType, this.#data.join('\n'));
      this.#eventType = '';
      this.#data = [];
      return;
    }
    if (line.charCodeAt(0) === 58) return; // ':' comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (field === 'event') this.#eventType = value;
    else if (field === 'data') this.#data.push(value);
  }
}

export type ReaderKind = 'long-poll' | 'sse';

export interface LiveReaderOptions {
  host: string;
  port: number;
  /** e.g. `/v1/stream/bench/live`. */
  streamPath: string;
  /** The offset to start reading at (a token from `Stream-Next-Offset`, or `-1`). */
  startOffset: string;
  /** Sequence number of the first message at `startOffset`. */
  firstSeq: number;
  messageBytes: number;
  /** Source address, e.g. `127.0.0.2`; the system's choice when absent. */
  localAddress?: string;
  /** Read buffer shared with other readers in this process. */
  readBuffer?: Buffer;
  /** Each message in order, with the `performance.now()` of the socket read that completed it. */
  onMessage: (seq: number, atMs: number) => void;
  /**
   * Once the reader is caught up and waiting: SSE after the first control event with `upToDate`,
   * long-poll after its first (catch-up) response, when its first long-poll is being sent.
   */
  onReady: () => void;
  /** When the reader stops on a failure (bad status, broken connection), with the reason. */
  onFailure?: (reason: string) => void;
}

/** A long-poll or SSE reader of one stream. */
export interface LiveReader {
  readonly kind: ReaderKind;
  /** Why the reader stopped early (bad status, wrong message, too many reconnects); undefined while fine. */
  readonly failure: string | undefined;
  /** Sequence number of the next message the reader expects. */
  readonly nextSeq: number;
  /** HTTP requests sent (long-poll: one per poll; SSE: one per connection). */
  readonly requestCount: number;
  /** Connections the server ended that the reader reopened (SSE), or re-polls after a 204 (long-poll). */
  readonly reconnectCount: number;
  start(): void;
  /** Closes the connection; no failure is recorded for what that interrupts. */
  stop(): void;
}

function query(parameters: [string, string | undefined][]): string {
  // Lexicographic order, as PROTOCOL.md §10.1 recommends for cache keys.
  return parameters
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([name, value]) => `${name}=${encodeURIComponent(value)}`)
    .join('&');
}

/**
 * Long-poll reader (PROTOCOL.md §5.7): one catch-up GET at the start offset, then
 * `GET ?cursor=C&live=long-poll&offset=O` in a loop, following `Stream-Next-Offset` and echoing
 * `Stream-Cursor`. A 204 (timeout) is answered with the next poll.
 */
export class LongPollReader implements LiveReader {
  readonly kind = 'long-poll';
  readonly #options: LiveReaderOptions;
  readonly #client: RawHttpClient;
  readonly #sequence: MessageSequence;
  readonly #onBody: (chunk: Uint8Array) => void;
  #stopped = false;
  #failure: string | undefined;
  requestCount = 0;
  reconnectCount = 0;

  constructor(options: LiveReaderOptions) {
    this.#options = options;
    this.#client = new RawHttpClient(options.host, options.port, {
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      ...(options.readBuffer === undefined ? {} : { readBuffer: options.readBuffer }),
    });
    this.#sequence = new MessageSequence(options.messageBytes, options.firstSeq, options.onMessage);
    this.#onBody = (chunk) => this.#sequence.feed(latin1(chunk), performance.now());
  }

  get failure(): string | undefined {
    return this.#failure ?? this.#sequence.failure;
  }

  get nextSeq(): number {
    return this.#sequence.nextSeq;
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#client.close();
  }

  async #poll(pathQuery: string): Promise<RawResponse> {
    this.requestCount++;
    const response = await this.#client.get(pathQuery, this.#onBody);
    if (response.status !== 200 && response.status !== 204) throw new Error(`GET ${pathQuery} answered ${response.status}`);
    return response;
  }

  async #run(): Promise<void> {
    const path = this.#options.streamPath;
    try {
      let response = await this.#poll(`${path}?${query([['offset', this.#options.startOffset]])}`);
      let offset = response.headers.get('stream-next-offset');
      let cursor = response.headers.get('stream-cursor');
      let ready = false;
      while (!this.#stopped && this.failure === undefined) {
        if (offset === undefined) throw new Error('response without Stream-Next-Offset');
        const next = this.#poll(`${path}?${query([['cursor', cursor], ['live', 'long-poll'], ['offset', offset]])}`);
        if (!ready) {
          ready = true;
          this.#options.onReady();
        }
        response = await next;
        if (response.status === 204) this.reconnectCount++;
        offset = response.headers.get('stream-next-offset');
        cursor = response.headers.get('stream-cursor') ?? cursor;
        if (response.headers.get('stream-closed') === 'true') break;
      }
    } catch (error) {
      if (this.#stopped) return;
      this.#failure = (error as Error).message;
      this.#options.onFailure?.(this.#failure);
    }
  }
}

/**
 * SSE reader (PROTOCOL.md §5.8): `GET ?live=sse&offset=O`; `data` events are checked as messages,
 * `control` events give the offset to reconnect at when the server ends the connection (at most
 * RECONNECTS_MAX times). Control events are parsed only when needed (readiness, reconnect), which
 * keeps 10,000 readers cheap.
 */
export class SseReader implements LiveReader {
  readonly kind = 'sse';
  readonly #options: LiveReaderOptions;
  readonly #client: RawHttpClient;
  readonly #sequence: MessageSequence;
  #stopped = false;
  #ready = false;
  #failure: string | undefined;
  /** The last control event's JSON text. */
  #lastControl: string | undefined;
  requestCount = 0;
  reconnectCount = 0;

  constructor(options: LiveReaderOptions) {
    this.#options = options;
    this.#client = new RawHttpClient(options.host, options.port, {
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
      ...(options.readBuffer === undefined ? {} : { readBuffer: options.readBuffer }),
    });
    this.#sequence = new MessageSequence(options.messageBytes, options.firstSeq, options.onMessage);
  }

  get failure(): string | undefined {
    return this.#failure ?? this.#sequence.failure;
  }

  get nextSeq(): number {
    return this.#sequence.nextSeq;
  }

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#client.close();
  }

  #onEvent = (type: string, data: string, atMs: number): void => {
    if (type === 'data') this.#sequence.feed(data, atMs);
    else if (type === 'control') {
      this.#lastControl = data;
      if (!this.#ready && data.includes('"upToDate":true')) {
        this.#ready = true;
        this.#options.onReady();
      }
    }
  };

  #resumeOffset(): string {
    if (this.#lastControl === undefined) return this.#options.startOffset;
    const control = JSON.parse(this.#lastControl) as { streamNextOffset?: unknown; streamClosed?: unknown };
    if (typeof control.streamNextOffset !== 'string') throw new Error(`control event without streamNextOffset: ${this.#lastControl.slice(0, 200)}`);
    if (control.streamClosed === true) throw new Error('stream closed');
    return control.streamNextOffset;
  }

  async #run(): Promise<void> {
    const path = this.#options.streamPath;
    try {
      while (!this.#stopped && this.failure === undefined) {
        const parser = new SseParser();
        const pathQuery = `${path}?${query([['live', 'sse'], ['offset', this.#resumeOffset()]])}`;
        this.requestCount++;
        let status = 0;
        try {
          const response = await this.#client.get(pathQuery, (chunk) => {
            const atMs = performance.now();
            parser.feed(latin1(chunk), (type, data) => this.#onEvent(type, data, atMs));
          });
          status = response.status;
        } catch (error) {
          if (this.#stopped) return;
          // The connection broke mid-stream: reconnect like a client would.
          if (this.reconnectCount >= RECONNECTS_MAX) throw error;
        }
        if (this.#stopped) return;
        if (status !== 0 && status !== 200) throw new Error(`GET ${pathQuery} answered ${status}`);
        if (this.reconnectCount >= RECONNECTS_MAX) throw new Error(`server ended the SSE connection ${this.reconnectCount + 1} times`);
        this.reconnectCount++;
      }
    } catch (error) {
      if (this.#stopped) return;
      this.#failure = (error as Error).message;
      this.#options.onFailure?.(this.#failure);
    }
  }
}

/** Builds a reader of `kind`. */
export function createReader(kind: ReaderKind, options: LiveReaderOptions): LiveReader {
  return kind === 'sse' ? new SseReader(options) : new LongPollReader(options);
}

export interface AppendResult {
  /** `performance.now()` right before the request was written. */
  sentAtMs: number;
  /** From sending to the end of the response, in ms. */
  ackMs: number;
  status: number;
  /** The response's `Stream-Next-Offset`. */
  nextOffset: string | undefined;
}

/** One writer: sequential POSTs of messages on one keep-alive connection. */
export class LiveWriter {
  readonly #client: RawHttpClient;
  readonly #streamPath: string;
  readonly #messageBytes: number;

  constructor(host: string, port: number, streamPath: string, messageBytes: number) {
    this.#client = new RawHttpClient(host, port);
    this.#streamPath = streamPath;
    this.#messageBytes = messageBytes;
  }

  /** Appends message `seq`; rejects on a connection error, resolves with any status. */
  async append(seq: number): Promise<AppendResult> {
    const body = Buffer.from(messageText(seq, this.#messageBytes), 'latin1');
    let sentAtMs = Number.NaN;
    const response = await this.#client.post(this.#streamPath, LIVE_CONTENT_TYPE, body, () => {}, () => (sentAtMs = performance.now()));
    return { sentAtMs, ackMs: performance.now() - sentAtMs, status: response.status, nextOffset: response.headers.get('stream-next-offset') };
  }

  close(): void {
    this.#client.close();
  }
}

/**
 * Creates the stream (`PUT`, `text/plain`) and returns its tail offset (`Stream-Next-Offset` of
 * the answer, or of a HEAD when the PUT's answer lacks it).
 */
export async function createLiveStream(baseUrl: string, streamPath: string): Promise<string> {
  const url = new URL(streamPath, baseUrl);
  const created = await fetch(url, { method: 'PUT', headers: { 'content-type': LIVE_CONTENT_TYPE }, signal: AbortSignal.timeout(10_000) });
  await created.arrayBuffer();
  if (created.status !== 201 && created.status !== 200) throw new Error(`PUT ${url} answered ${created.status}`);
  const offset = created.headers.get('stream-next-offset');
  if (offset !== null) return offset;
  const head = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
  const headOffset = head.headers.get('stream-next-offset');
  if (headOffset === null) throw new Error(`HEAD ${url} answered ${head.status} without Stream-Next-Offset`);
  return headOffset;
}

/** Resident set size of process `pid` from /proc/<pid>/status (VmRSS), in bytes; NaN when unavailable. */
export function residentBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

export interface IdleWait {
  idle: boolean;
  waitedMs: number;
}

/**
 * Waits until process `pid` used less than `busyPercentMax` of one core in each of
 * `windowCount` consecutive windows of `windowMs`, or `timeoutMs` passed (`idle` false).
 * /proc times tick at 10 ms, so windows much shorter than 200 ms are too coarse.
 */
export async function waitUntilIdle(pid: number, busyPercentMax: number, windowMs: number, windowCount: number, timeoutMs: number): Promise<IdleWait> {
  const startedMs = performance.now();
  let quietWindows = 0;
  while (performance.now() - startedMs < timeoutMs) {
    const beforeS = processCpuSeconds(pid);
    const windowStartMs = performance.now();
    await sleep(windowMs);
    const busyPercent = ((processCpuSeconds(pid) - beforeS) * 1000 * 100) / (performance.now() - windowStartMs);
    if (!Number.isFinite(busyPercent)) return { idle: false, waitedMs: performance.now() - startedMs };
    quietWindows = busyPercent < busyPercentMax ? quietWindows + 1 : 0;
    if (quietWindows >= windowCount) return { idle: true, waitedMs: performance.now() - startedMs };
  }
  return { idle: false, waitedMs: performance.now() - startedMs };
}
