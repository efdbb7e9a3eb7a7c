/**
 * Writing a benchmark stream and waiting for it to be sealed, over plain HTTP so Cairn and the
 * reference server are fed identically.
 *
 * Append i's body is `bodyBytes` of one random (incompressible) buffer whose first 8 bytes are
 * replaced by i as a little-endian integer: bench/lib/catch-up-reader.ts checks those stamps, so a
 * replay that returns wrong or reordered bytes is caught without keeping 256 MiB around.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** One append should never take this long, even with fsync and a busy object store. */
const APPEND_TIMEOUT_MS = 30_000;
const SEALED_POLL_MS = 100;

export interface IngestResult {
  bytes: number;
  appendCount: number;
  elapsedMs: number;
  /** Responses other than 2xx (503 = hot-tail budget, 429 = rate limit); each was retried. */
  rejectedCount: number;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

function send(agent: Agent, url: string, method: string, headers: Record<string, string>, body?: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const allHeaders = body === undefined ? headers : { ...headers, 'content-length': String(body.length) };
    const outgoing = request(url, { agent, method, headers: allHeaders, timeout: APPEND_TIMEOUT_MS }, (response) => {
      response.resume();
      response.once('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
      response.once('error', reject);
    });
    outgoing.once('timeout', () => outgoing.destroy(new Error(`${method} ${url} timed out after ${APPEND_TIMEOUT_MS} ms`)));
    outgoing.once('error', reject);
    outgoing.end(body);
  });
}

/** Creates the stream as `application/octet-stream`; 200 (exists) and 201 are both fine. */
export async function createStream(streamUrl: string): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  const answer = await send(agent, streamUrl, 'PUT', { 'content-type': 'application/octet-stream' });
  if (answer.status !== 201 && answer.status !== 200) throw new Error(`PUT ${streamUrl} answered ${answer.status}`);
}

/**
 * Appends `totalBytes / bodyBytes` stamped bodies one after another (one connection, in order).
 * A 503/429 answer is retried after its `Retry-After` (default 100 ms) until `deadlineMs`
 * (a `performance.now()` value); other errors reject.
 */
export async function ingest(streamUrl: string, totalBytes: number, bodyBytes: number, deadlineMs: number): Promise<IngestResult> {
  if (totalBytes % bodyBytes !== 0) throw new Error(`stream size ${totalBytes} is not a multiple of the append size ${bodyBytes}`);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = randomBytes(bodyBytes);
  const appendCount = totalBytes / bodyBytes;
  let rejectedCount = 0;
  const startedMs = performance.now();
  try {
    for (let index = 0; index < appendCount; index++) {
      body.writeBigUInt64LE(BigInt(index), 0);
      for (;;) {
        const answer = await send(agent, streamUrl, 'POST', { 'content-type': 'application/octet-stream' }, body);
        if (answer.status >= 200 && answer.status < 300) break;
        if (answer.status !== 503 && answer.status !== 429) throw new Error(`append ${index} answered ${answer.status}`);
        rejectedCount++;
        if (performance.now() > deadlineMs) throw new Error(`append ${index} still refused (${answer.status}) at the deadline`);
        const retryAfterS = Number(answer.headers['retry-after']);
        await sleep(Number.isFinite(retryAfterS) && retryAfterS > 0 ? Math.min(retryAfterS * 1000, 1000) : 100);
      }
      if (performance.now() > deadlineMs) throw new Error(`ingest not finished by the deadline (${index + 1} of ${appendCount} appends)`);
    }
  } finally {
    agent.destroy();
  }
  return { bytes: totalBytes, appendCount, elapsedMs: performance.now() - startedMs, rejectedCount };
}

export interface StreamOffsets {
  /** `Stream-Next-Offset` of a HEAD: the durable tail. */
  next: string;
  /** Cairn's `Cairn-Sealed-Offset`, absent on servers without tiering. */
  sealed: string | undefined;
}

export async function headOffsets(streamUrl: string): Promise<StreamOffsets> {
  const agent = new Agent({ keepAlive: false });
  const answer = await send(agent, streamUrl, 'HEAD', {});
  if (answer.status !== 200) throw new Error(`HEAD ${streamUrl} answered ${answer.status}`);
  const next = answer.headers['stream-next-offset'];
  const sealed = answer.headers['cairn-sealed-offset'];
  if (typeof next !== 'string') throw new Error(`HEAD ${streamUrl} has no Stream-Next-Offset`);
  return { next, sealed: typeof sealed === 'string' ? sealed : undefined };
}

/**
 * Polls HEAD until `Cairn-Sealed-Offset` equals `Stream-Next-Offset` (everything is in segments);
 * resolves with the wait in ms. Rejects at `timeoutMs`, or at once when the header is missing.
 */
export async function waitUntilSealed(streamUrl: string, timeoutMs: number): Promise<number> {
  const startedMs = performance.now();
  for (;;) {
    const offsets = await headOffsets(streamUrl);
    if (offsets.sealed === undefined) throw new Error('the server sends no Cairn-Sealed-Offset header (no tiering?)');
    if (offsets.sealed === offsets.next) return performance.now() - startedMs;
    if (performance.now() - startedMs > timeoutMs) {
      throw new Error(`not sealed within ${timeoutMs} ms: sealed ${offsets.sealed}, tail ${offsets.next}`);
    }
    await sleep(SEALED_POLL_MS);
  }
}
