/**
 * The demo's readers, all through the upstream client's `stream()`: live tailers (SSE and
 * long-poll) that follow the JSON stream while it is written, and fresh catch-up readers from
 * `-1` (no live mode) that read a finished stream to its end. Each feeds a checker.
 */
import { stream, type StreamResponse } from '@durable-streams/client';
import { ByteChecker, finalMessageError, MessageChecker } from './checkers.ts';
import type { Corpus, MailMessage } from './corpus.ts';

export interface LiveTailer {
  mode: 'sse' | 'long-poll';
  checker: MessageChecker;
  /** Batches delivered (one per long-poll response, one per SSE data-and-control group). */
  batchCount: number;
  /** Resolves when every mail has arrived; rejects on the first discrepancy or a read error. */
  received: Promise<void>;
  /** Resolves when the tailer has seen the stream closed (EOF); the session then ends by itself. */
  closed: Promise<void>;
  /** Aborts the session (for failures; a finished demo ends tailers by closing the stream). */
  abort(): void;
}

/** Starts following `url` from the beginning, live; resolves once the first response is in. */
export async function startLiveTailer(url: string, mode: 'sse' | 'long-poll', corpus: Corpus): Promise<LiveTailer> {
  const response = await stream<MailMessage>({ url, live: mode, offset: '-1' });
  const checker = new MessageChecker(corpus);
  const received = Promise.withResolvers<void>();
  const closed = Promise.withResolvers<void>();
  const tailer: LiveTailer = {
    mode,
    checker,
    batchCount: 0,
    received: received.promise,
    closed: closed.promise,
    abort: () => response.cancel(),
  };
  if (corpus.mails.length === 0) received.resolve();
  response.subscribeJson<MailMessage>((batch) => {
    tailer.batchCount++;
    for (const item of batch.items) checker.accept(item);
    if (checker.error !== undefined) received.reject(new Error(`${mode} tailer: ${checker.error}`));
    else if (checker.complete) received.resolve();
    if (batch.streamClosed) {
      // A discrepancy is reported once, by `received`; here only a stream that ended short.
      if (checker.error !== undefined || checker.complete) closed.resolve();
      else closed.reject(new Error(`${mode} tailer: stream closed after ${checker.receivedCount} of ${corpus.mails.length} mails`));
    }
  });
  response.closed.catch((error: unknown) => {
    const failure = new Error(`${mode} tailer: ${(error as Error).message}`, { cause: error });
    received.reject(failure);
    closed.reject(failure);
  });
  // Both are awaited later, maybe after a failure elsewhere; never leave a rejection unhandled.
  received.promise.catch(() => {});
  closed.promise.catch(() => {});
  return tailer;
}

export interface CatchUpResult {
  /** Responses (batches) the read took. */
  responseCount: number;
  /** Mails verified. */
  mailCount: number;
  /** Bytes of mail text verified. */
  bytes: number;
  elapsedMs: number;
  /** Undefined when everything matched. */
  error: string | undefined;
}

/**
 * A catch-up read (no live mode) from `-1` to the end: one `stream({ live: false })` session per
 * response, each from the previous response's `Stream-Next-Offset`, until a response is
 * up-to-date. (A `live: false` session of `@durable-streams/client` 0.2.7 ends after its first
 * response even when that response is not up-to-date, so one session reads at most one chunk.)
 * `read` consumes one session and returns its batch's offset and up-to-date flag. Returns the
 * message of a read error, or undefined.
 */
async function readToEnd(
  url: string,
  read: (response: StreamResponse<MailMessage>) => Promise<{ offset: string; upToDate: boolean }>,
): Promise<string | undefined> {
  let offset = '-1';
  try {
    for (;;) {
      const response = await stream<MailMessage>({ url, live: false, offset });
      const last = await read(response);
      if (last.upToDate) return undefined;
      if (last.offset === offset) return `read made no progress at offset ${offset}`;
      offset = last.offset;
    }
  } catch (error) {
    return `read from offset ${offset} failed: ${(error as Error).message}`;
  }
}

/**
 * Consumes a one-response catch-up session with `subscribe`, resolving with its batch's offset
 * and up-to-date flag. The session's `closed` promise is no end signal: it resolves once the
 * response is fetched, before the subscriber has seen it.
 */
function onlyBatchOf<B extends { offset: string; upToDate: boolean }>(
  response: StreamResponse<MailMessage>,
  subscribe: (onBatch: (batch: B) => void) => void,
): Promise<{ offset: string; upToDate: boolean }> {
  return new Promise((resolve, reject) => {
    subscribe((batch) => resolve({ offset: batch.offset, upToDate: batch.upToDate }));
    response.closed.catch(reject);
  });
}

/** Reads the JSON stream from `-1` to its end and checks every message. */
export async function catchUpJson(url: string, corpus: Corpus): Promise<CatchUpResult> {
  const startedMs = performance.now();
  const checker = new MessageChecker(corpus);
  let responseCount = 0;
  const readError = await readToEnd(url, (response) =>
    onlyBatchOf(response, (onBatch) =>
      response.subscribeJson<MailMessage>((batch) => {
        responseCount++;
        for (const item of batch.items) checker.accept(item);
        onBatch(batch);
      }),
    ),
  );
  return {
    responseCount,
    mailCount: checker.receivedCount,
    bytes: checker.receivedBytes,
    elapsedMs: performance.now() - startedMs,
    error: readError ?? finalMessageError(checker, corpus.mails.length),
  };
}

/** Reads the raw-bytes stream from `-1` to its end and checks every mail's byte range. */
export async function catchUpBytes(url: string, corpus: Corpus): Promise<CatchUpResult> {
  const startedMs = performance.now();
  const checker = new ByteChecker(corpus);
  let responseCount = 0;
  const readError = await readToEnd(url, (response) =>
    onlyBatchOf(response, (onBatch) =>
      response.subscribeBytes((chunk) => {
        responseCount++;
        checker.accept(chunk.data);
        onBatch(chunk);
      }),
    ),
  );
  return {
    responseCount,
    mailCount: checker.receivedCount,
    bytes: checker.receivedBytes,
    elapsedMs: performance.now() - startedMs,
    error: readError ?? checker.finalError(),
  };
}

export interface ReadPass {
  /** One result per reader, for each stream. */
  json: CatchUpResult[];
  raw: CatchUpResult[];
  elapsedMs: number;
}

/** `readersPerStream` fresh readers from `-1` on each stream, all at once. */
export async function readPass(urls: { json: string; raw: string }, corpus: Corpus, readersPerStream: number): Promise<ReadPass> {
  const startedMs = performance.now();
  const readers = Array.from({ length: readersPerStream }, (_, i) => i);
  const [json, raw] = await Promise.all([
    Promise.all(readers.map(() => catchUpJson(urls.json, corpus))),
    Promise.all(readers.map(() => catchUpBytes(urls.raw, corpus))),
  ]);
  return { json, raw, elapsedMs: performance.now() - startedMs };
}
