/**
 * What every route needs: the registry, the limits, the injected clock and random source.
 */
import type { Clock, RandomSource } from '../clock.ts';
import type { ReadPath } from '../read-path/read-path.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { LiveClients } from './live-clients.ts';
import type { LiveReaders } from './live-readers.ts';
import type { RequestOperation } from '../observability/server-metrics.ts';

export interface HttpLimits {
  /** Largest accepted request body (413 above). */
  appendBytesMax: number;
  /** Largest catch-up response body before the response is cut (Stream-Up-To-Date absent). */
  chunkBytesMax: number;
  /** How long a long-poll waits for data before 204. */
  longPollTimeoutMs: number;
  /** How long an SSE connection stays open before the server closes it (§10.2: ~60 s). */
  sseReconnectMs: number;
  /** Longest decoded stream path, in bytes (400 above). */
  streamPathBytesMax: number;
  /** Deepest nesting of a JSON body (400 above). */
  jsonDepthMax: number;
  /** Streams held at once; creates past it get 503. */
  streamsMax: number;
}

export interface HttpContext {
  registry: StreamRegistry;
  reads: ReadPath;
  limits: HttpLimits;
  clock: Clock;
  random: RandomSource;
  live: LiveReaders;
  /** Live readers per client key (IP, or token when auth is on). */
  liveClients: LiveClients;
  /** Auth is on: reads are `Cache-Control: private` unless their grant is public. */
  authEnabled: boolean;
  /**
   * Cluster mode: `registry` and `reads` are a read-only view of a stream another node owns
   * (./sealed-views.ts): its sealed end is not the stream's tail, so reads never claim up-to-date.
   */
  sealedView?: boolean;
  /**
   * HTTP/1.1 SSE connections leave node:http and Fastify once their head is written
   * (./sse-hand-off.ts); default true. False keeps them on node:http (tests compare the two).
   */
  sseHandOff?: boolean;
  /**
   * Records a finished request in the request metrics (operation, HTTP status, duration in seconds),
   * for requests Fastify's onResponse hook never sees: handed-off SSE connections. Absent: no metrics.
   */
  observeRequest?: (operation: RequestOperation, status: number, seconds: number) => void;
}
