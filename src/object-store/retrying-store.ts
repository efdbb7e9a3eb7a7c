/**
 * An `ObjectStore` decorator that retries retryable failures (`error.retryable`, i.e.
 * `ObjectStoreUnavailableError`) with exponential backoff and full jitter: before attempt n+1 it
 * sleeps a uniform random time in [0, min(backoffMaxMs, backoffBaseMs · 2^(n-1))), drawn from the
 * injected `RandomSource` so a failing run replays exactly. It stops after `attemptsMax`
 * attempts or when the next sleep would end more than `elapsedMsMax` after the first attempt,
 * and then throws the last error unchanged.
 *
 * Never retried: non-retryable errors, in particular `ObjectAlreadyExistsError` — a lost
 * create-if-absent race means another writer exists, and the caller must stop, not try again —
 * and a failed fsync of the filesystem store (`ObjectStoreRequestError`, storeCode
 * `FSYNC_FAILED`): after one, a retry's fsync could report success for data not on disk.
 *
 * An ambiguous create-if-absent put: an attempt that failed retryably may still have stored the
 * object (the response was lost), so a retry can meet `ObjectAlreadyExistsError` for its own
 * write. Then the decorator reads the object back: identical bytes mean the put succeeded;
 * different bytes are a real conflict and throw. (Identical bytes from another writer are
 * indistinguishable, and harmless: the object holds exactly what this caller meant to write.)
 *
 * Compose it outside `metered-store.ts` to count real requests: `retrying(metered(s3))`.
 */
import { systemClock, type RandomSource, type WallClock } from '../clock.ts';
import {
  ObjectAlreadyExistsError,
  ObjectStoreError,
  putBody,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';
import { storedBytesEqual } from './overwrite-check.ts';

export interface RetryPolicy {
  /** Attempts in all, including the first; ≥ 1. */
  attemptsMax: number;
  /** Cap of the first backoff sleep, in ms; each further one doubles it. */
  backoffBaseMs: number;
  /** Cap of any one backoff sleep, in ms. */
  backoffMaxMs: number;
  /** No sleep may end later than this after the first attempt started, in ms. */
  elapsedMsMax: number;
}

/**
 * 8 attempts, sleeps capped at 100, 200, 400 … 5,000 ms, within 30 s: rides out an S3 503
 * SlowDown burst or a gateway restart of a few seconds, while a sealer blocked on a dead store
 * gives up within 30 s and reports it (appends keep flowing into the WAL meanwhile).
 */
export const RETRY_POLICY_DEFAULT: RetryPolicy = {
  attemptsMax: 8,
  backoffBaseMs: 100,
  backoffMaxMs: 5_000,
  elapsedMsMax: 30_000,
};

export interface RetryEvent {
  operation: ObjectStoreOperation;
  key: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** Sleep before the next attempt, in ms. */
  delayMs: number;
  error: ObjectStoreError;
}

export interface RetryingObjectStoreOptions {
  random: RandomSource;
  clock: WallClock;
  policy?: Partial<RetryPolicy>;
  /** Default: a `setTimeout` sleep. Tests pass one that only records. */
  sleep?: (delayMs: number) => Promise<void>;
  /** Called before each backoff sleep, e.g. to log. */
  onRetry?: (event: RetryEvent) => void;
}


export class RetryingObjectStore implements ObjectStore {
  readonly description: string;
  readonly policy: RetryPolicy;
  readonly #inner: ObjectStore;
  readonly #random: RandomSource;
  readonly #clock: WallClock;
  readonly #sleep: (delayMs: number) => Promise<void>;
  readonly #onRetry: ((event: RetryEvent) => void) | undefined;

  constructor(inner: ObjectStore, options: RetryingObjectStoreOptions) {
    this.#inner = inner;
    this.description = inner.description;
    this.policy = { ...RETRY_POLICY_DEFAULT, ...options.policy };
    if (!(this.policy.attemptsMax >= 1)) throw new RangeError(`attemptsMax must be ≥ 1, got ${this.policy.attemptsMax}`);
    this.#random = options.random;
    this.#clock = options.clock;
    this.#sleep = options.sleep ?? systemClock.sleep;
    this.#onRetry = options.onRetry;
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#put(key, body, options);
  }

  putParts(key: string, parts: readonly Uint8Array[], options?: PutOptions): Promise<void> {
    return this.#put(key, parts, options);
  }

  async #put(key: string, body: ObjectBody, options: PutOptions | undefined): Promise<void> {
    let ambiguous = false;
    return this.#retry('put', key, async () => {
      try {
        await putBody(this.#inner, key, body, options);
      } catch (error) {
        if (error instanceof ObjectAlreadyExistsError && ambiguous) {
          // May be our own earlier attempt: compare. A retryable read failure is retried like any other.
          let same: boolean;
          try {
            same = await storedBytesEqual(this.#inner, key, body);
          } catch (readError) {
            throw readError instanceof ObjectStoreError && readError.retryable ? readError : error;
          }
          if (same) return;
        }
        if (error instanceof ObjectStoreError && error.retryable && !options?.overwrite) ambiguous = true;
        throw error;
      }
    });
  }

  get(key: string, range?: ByteRange): Promise<GetResult> {
    return this.#retry('get', key, () => this.#inner.get(key, range));
  }

  head(key: string): Promise<ObjectInfo> {
    return this.#retry('head', key, () => this.#inner.head(key));
  }

  list(options: ListOptions): Promise<ListPage> {
    return this.#retry('list', options.prefix, () => this.#inner.list(options));
  }

  delete(key: string): Promise<void> {
    return this.#retry('delete', key, () => this.#inner.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#retry('deleteMany', '', () => this.#inner.deleteMany(keys));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #retry<T>(operation: ObjectStoreOperation, key: string, attempt: () => Promise<T>): Promise<T> {
    const { attemptsMax, backoffBaseMs, backoffMaxMs, elapsedMsMax } = this.policy;
    const startedMs = this.#clock.nowMs();
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof ObjectStoreError) || !error.retryable || error instanceof ObjectAlreadyExistsError) throw error;
        if (n >= attemptsMax) throw error;
        const capMs = Math.min(backoffMaxMs, backoffBaseMs * 2 ** (n - 1));
        const delayMs = Math.floor(this.#random.next() * capMs);
        if (this.#clock.nowMs() - startedMs + delayMs > elapsedMsMax) throw error;
        this.#onRetry?.({ operation, key, attempt: n, delayMs, error });
        await this.#sleep(delayMs);
      }
    }
  }
}
