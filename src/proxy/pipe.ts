/**
 * Pipes an upstream response body into its stream (the Proxy Protocol v0.1 §8.2, §8.3). One
 * append is in flight at a time; whatever arrives meanwhile goes into the next one, so small
 * chunks are batched by the group commit itself rather than a timer, and above
 * PROXY_PIPE_BUFFER_BYTES_MAX of unwritten bytes the upstream is not read (TCP backpressure).
 * Every byte received before the end (abort, timeout, reset) is written before the stream is
 * closed. Appends refused for now (503) are retried for up to PROXY_STORAGE_RETRY_MS_MAX.
 */
import type { Clock } from '../clock.ts';
import { PROXY_PIPE_BUFFER_BYTES_MAX, PROXY_STORAGE_RETRY_DELAY_MS, PROXY_STORAGE_RETRY_MS_MAX } from '../config/limits.ts';
import { CairnError } from '../protocol/error-table.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { ProxyOutcome } from './proxy-streams.ts';
import type { UpstreamResponse } from './upstream.ts';

/** How a pipe ended: an outcome, or `deleted` (the streams are gone; nothing left to record). */
export type PipeEnd = { outcome: ProxyOutcome; upstreamBytes: number } | { outcome: 'deleted'; upstreamBytes: number };

/** A stream that is gone (deleted, expired): the pipe stops and records nothing. */
function isGone(error: unknown): boolean {
  return error instanceof CairnError && (error.code === 'STREAM_NOT_FOUND' || error.code === 'GONE' || error.code === 'STREAM_CLOSED');
}

/**
 * Appends `data` to `path`, retrying refusals that may pass later (503 + Retry-After).
 * @throws the registry's error once it is final or PROXY_STORAGE_RETRY_MS_MAX has passed.
 */
export async function appendRetrying(registry: StreamRegistry, clock: Clock, path: string, contentType: string, data: Buffer, close: boolean): Promise<void> {
  const deadline = clock.monotonicMs() + PROXY_STORAGE_RETRY_MS_MAX;
  for (;;) {
    try {
      await registry.append({ path, contentType: data.length > 0 ? contentType : undefined, body: data, close, producer: undefined, streamSeq: undefined });
      return;
    } catch (error) {
      if (!(error instanceof CairnError) || !error.retryable || clock.monotonicMs() >= deadline) throw error;
      await clock.sleep(PROXY_STORAGE_RETRY_DELAY_MS);
    }
  }
}

/**
 * Writes `response.body` to the stream at `path` until the body ends or fails; does not close it.
 * @returns the outcome (`deleted` when the stream disappeared meanwhile) and the bytes received.
 */
export async function pipeBody(registry: StreamRegistry, clock: Clock, path: string, contentType: string, response: UpstreamResponse): Promise<PipeEnd> {
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let upstreamBytes = 0;
  let writing: Promise<void> | undefined;
  let writeError: unknown;

  const writeLoop = async () => {
    while (pendingBytes > 0 && writeError === undefined) {
      const data = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
      pending.length = 0;
      pendingBytes = 0;
      try {
        await appendRetrying(registry, clock, path, contentType, data, false);
      } catch (error) {
        writeError = error;
        response.body.destroy();
      }
    }
    writing = undefined;
  };

  let bodyError: unknown;
  try {
    for await (const chunk of response.body) {
      const buffer = chunk as Buffer;
      if (buffer.length === 0) continue;
      upstreamBytes += buffer.length;
      pending.push(buffer);
      pendingBytes += buffer.length;
      writing ??= writeLoop();
      if (pendingBytes >= PROXY_PIPE_BUFFER_BYTES_MAX) await writing;
      if (writeError !== undefined) break;
    }
  } catch (error) {
    bodyError = error;
  }
  // Flush what arrived before the end, whatever ended it (§8.2, §8.3).
  while (writing !== undefined) await writing;
  if (writeError === undefined && pendingBytes > 0) await writeLoop();

  if (writeError !== undefined) return { outcome: isGone(writeError) ? 'deleted' : 'storage-error', upstreamBytes };
  if (response.endReason !== undefined) return { outcome: response.endReason, upstreamBytes };
  if (bodyError !== undefined) {
    const code = (bodyError as { code?: string }).code;
    return { outcome: code === 'UND_ERR_BODY_TIMEOUT' ? 'timed-out' : 'upstream-error', upstreamBytes };
  }
  return { outcome: 'complete', upstreamBytes };
}
