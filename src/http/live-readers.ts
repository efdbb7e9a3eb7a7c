/**
 * Bounded waiting for live readers (long-poll and SSE). One append wakes every waiter of its
 * stream at once (StreamState.notify). The number of waiting readers is limited; past the limit
 * the request is refused with 503 + Retry-After instead of growing memory without bound.
 */
import { ServiceUnavailableError } from '../protocol/errors.ts';
import type { StreamState } from '../stream/stream-state.ts';

export type WakeReason = 'changed' | 'timeout' | 'aborted';

export class LiveReaders {
  readonly #maxWaiters: number;
  #waiting = 0;
  #closing = false;
  readonly #all = new Set<() => void>();

  /** @param maxWaiters most readers that may wait at once. */
  constructor(maxWaiters: number) {
    this.#maxWaiters = maxWaiters;
  }

  /** Readers waiting right now. */
  get waitingCount(): number {
    return this.#waiting;
  }

  /** Throws ServiceUnavailableError when no more readers may wait. */
  admit(): void {
    if (this.#closing) throw new ServiceUnavailableError('server is shutting down');
    if (this.#waiting >= this.#maxWaiters) throw new ServiceUnavailableError('too many live readers');
  }

  /**
   * Waits until the stream changes (data durable, closed, deleted), `timeoutMs` passes, or `signal`
   * aborts or the server shuts down (reported as `aborted`).
   */
  wait(stream: StreamState, timeoutMs: number, signal: AbortSignal): Promise<WakeReason> {
    this.admit();
    this.#waiting++;
    return new Promise<WakeReason>((resolve) => {
      const finish = (reason: WakeReason) => {
        clearTimeout(timer);
        stream.waiters.delete(onChange);
        this.#all.delete(onAbort);
        signal.removeEventListener('abort', onAbort);
        this.#waiting--;
        resolve(reason);
      };
      const onChange = () => finish('changed');
      const onAbort = () => finish('aborted');
      const timer = setTimeout(() => finish('timeout'), timeoutMs);
      stream.waiters.add(onChange);
      this.#all.add(onAbort);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Ends every wait (graceful shutdown) and refuses new ones. */
  closeAll(): void {
    this.#closing = true;
    for (const abort of [...this.#all]) abort();
  }
}
