/**
 * Live readers (long-poll and SSE) per client key (`--live-readers-per-client-max`); the total is
 * LiveReaders' limit. The key is the token's when auth is on, else the client IP (from
 * `X-Forwarded-For` only behind a `--trust-proxy`). Past the limit the request gets 503 with
 * `Retry-After` before it starts waiting.
 */
import { ServiceUnavailableError } from '../protocol/errors.ts';

export class LiveClients {
  readonly #perClientMax: number;
  readonly #counts = new Map<string, number>();

  /** @param perClientMax most live readers one client key may hold at once. */
  constructor(perClientMax: number) {
    this.#perClientMax = perClientMax;
  }

  /** Live readers held by `key` right now. */
  countOf(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /**
   * Counts one live reader for `key`; call the returned function exactly once when it ends.
   * @throws ServiceUnavailableError when `key` already holds the maximum.
   */
  acquire(key: string): () => void {
    const count = this.#counts.get(key) ?? 0;
    if (count >= this.#perClientMax) {
      throw new ServiceUnavailableError(`too many live readers from this client (limit ${this.#perClientMax}); retry later`);
    }
    this.#counts.set(key, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#counts.get(key) ?? 1) - 1;
      if (left === 0) this.#counts.delete(key);
      else this.#counts.set(key, left);
    };
  }
}
