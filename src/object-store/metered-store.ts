/**
 * An `ObjectStore` decorator that counts, per operation, requests, errors (by `code`), body
 * bytes and latency. `snapshot()` returns a plain copy, so a test can assert "exactly one GET"
 * and an exporter (Prometheus, later) can read it without this module knowing about it.
 *
 * It counts calls that reach it: wrapped inside `retrying-store.ts` (`retrying(metered(s3))`)
 * it counts every attempt, i.e. the requests the store really saw; outside, logical operations.
 */
import { systemClock, type WallClock } from '../clock.ts';
import {
  ObjectStoreError,
  objectBodyBytes,
  putBody,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';

export interface OperationMetrics {
  /** Calls started (successful or not). */
  requestCount: number;
  /** Calls that failed, in all. */
  errorCount: number;
  /** Failed calls by error `code` (`OBJECT_NOT_FOUND`, …); errors without a code count as `UNKNOWN`. */
  errorCountByCode: Record<string, number>;
  /** Body bytes of successful calls: sent (`put`) or received (`get`); 0 for other operations. */
  bodyBytes: number;
  /** Sum of the latencies of finished calls, in ms (divide by requestCount − inFlightCount for a mean). */
  latencyMsTotal: number;
  /** Slowest finished call, in ms. */
  latencyMsMax: number;
  /** Calls started and not yet finished. */
  inFlightCount: number;
}

export type ObjectStoreMetricsSnapshot = Record<ObjectStoreOperation, OperationMetrics>;

/** Told of every finished call (successful or not): its operation and latency in ms. */
export type ObjectStoreFinishListener = (operation: ObjectStoreOperation, latencyMs: number) => void;

const OPERATIONS: readonly ObjectStoreOperation[] = ['put', 'get', 'head', 'list', 'delete', 'deleteMany'];

function emptyMetrics(): OperationMetrics {
  return { requestCount: 0, errorCount: 0, errorCountByCode: {}, bodyBytes: 0, latencyMsTotal: 0, latencyMsMax: 0, inFlightCount: 0 };
}

export class MeteredObjectStore implements ObjectStore {
  readonly description: string;
  readonly #inner: ObjectStore;
  readonly #clock: WallClock;
  readonly #onFinish: ObjectStoreFinishListener | undefined;
  #metrics: ObjectStoreMetricsSnapshot;

  /**
   * `clock` times the calls; default the system clock. `onFinish` is told each finished call's
   * operation and latency (a Prometheus histogram observes it); it must not throw.
   */
  constructor(inner: ObjectStore, options: { clock?: WallClock; onFinish?: ObjectStoreFinishListener } = {}) {
    this.#inner = inner;
    this.description = inner.description;
    this.#clock = options.clock ?? systemClock;
    this.#onFinish = options.onFinish;
    this.#metrics = MeteredObjectStore.#emptySnapshot();
  }

  /** A copy of the counters; later calls do not change it. */
  snapshot(): ObjectStoreMetricsSnapshot {
    return structuredClone(this.#metrics);
  }

  /** Sets every counter back to zero (calls in flight still finish into the new counters). */
  reset(): void {
    const inFlight = OPERATIONS.map((op) => this.#metrics[op].inFlightCount);
    this.#metrics = MeteredObjectStore.#emptySnapshot();
    OPERATIONS.forEach((op, i) => (this.#metrics[op].inFlightCount = inFlight[i]!));
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#measure('put', () => this.#inner.put(key, body, options), () => body.length);
  }

  putParts(key: string, parts: readonly Uint8Array[], options?: PutOptions): Promise<void> {
    return this.#measure('put', () => putBody(this.#inner, key, parts, options), () => objectBodyBytes(parts));
  }

  get(key: string, range?: ByteRange): Promise<GetResult> {
    return this.#measure('get', () => this.#inner.get(key, range), (result) => result.body.length);
  }

  head(key: string): Promise<ObjectInfo> {
    return this.#measure('head', () => this.#inner.head(key));
  }

  list(options: ListOptions): Promise<ListPage> {
    return this.#measure('list', () => this.#inner.list(options));
  }

  delete(key: string): Promise<void> {
    return this.#measure('delete', () => this.#inner.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#measure('deleteMany', () => this.#inner.deleteMany(keys));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #measure<T>(operation: ObjectStoreOperation, call: () => Promise<T>, bodyBytesOf?: (result: T) => number): Promise<T> {
    const started = this.#metrics[operation];
    started.requestCount++;
    started.inFlightCount++;
    const startedMs = this.#clock.nowMs();
    const finish = (): OperationMetrics => {
      // After a reset() the counters object is new; record into the current one.
      const metrics = this.#metrics[operation];
      const latencyMs = this.#clock.nowMs() - startedMs;
      metrics.inFlightCount--;
      metrics.latencyMsTotal += latencyMs;
      metrics.latencyMsMax = Math.max(metrics.latencyMsMax, latencyMs);
      this.#onFinish?.(operation, latencyMs);
      return metrics;
    };
    try {
      const result = await call();
      const metrics = finish();
      if (bodyBytesOf) metrics.bodyBytes += bodyBytesOf(result);
      return result;
    } catch (error) {
      const metrics = finish();
      const code = error instanceof ObjectStoreError ? error.code : 'UNKNOWN';
      metrics.errorCount++;
      metrics.errorCountByCode[code] = (metrics.errorCountByCode[code] ?? 0) + 1;
      throw error;
    }
  }

  static #emptySnapshot(): ObjectStoreMetricsSnapshot {
    return Object.fromEntries(OPERATIONS.map((op) => [op, emptyMetrics()])) as ObjectStoreMetricsSnapshot;
  }
}
