/**
 * Bounded waiting for live readers (long-poll and SSE). One append wakes every waiter of its
 * stream at once (StreamState.notify). The number of waiting readers is limited; past the limit
 * the request is refused with 503 + Retry-After instead of growing memory without bound.
 */
import type { EventEmitter } from 'node:events';
import type { Clock } from '../clock.ts';
import { ServiceUnavailableError } from '../protocol/errors.ts';
import type { StreamState } from '../stream/stream-state.ts';
import { WaitDeadlines, type DeadlineTick } from './wait-deadlines.ts';

/** Why a wait ended: the stream changed, the time ran out, the client's connection closed, or the server is stopping. */
export type WakeReason = 'changed' | 'timeout' | 'disconnected' | 'shutdown';

/** Ends one wait with a reason. */
type EndWait = (reason: WakeReason) => void;

export class LiveReaders {
  readonly #maxWaiters: number;
  #waiting = 0;
  #longPollWaiting = 0;
  #sseOpen = 0;
  #closing = false;
  /** Every wait, by deadline, on one shared timer. */
  readonly #deadlines: WaitDeadlines<EndWait>;

  /**
   * @param maxWaiters most readers that may wait at once.
   * @param clock times each wait out.
   */
  constructor(maxWaiters: number, clock: Clock) {
    this.#maxWaiters = maxWaiters;
    this.#deadlines = new WaitDeadlines<EndWait>(clock, (end) => end('timeout'));
  }

  /** Readers waiting right now. */
  get waitingCount(): number {
    return this.#waiting;
  }

  /** Long-poll requests waiting right now (metrics). */
  get longPollWaitingCount(): number {
    return this.#longPollWaiting;
  }

  /** SSE connections open right now, waiting or sending (metrics). */
  get sseOpenCount(): number {
    return this.#sseOpen;
  }

  /** True once `closeAll()` ran: SSE loops send their final control event and end. */
  get closing(): boolean {
    return this.#closing;
  }

  /** An SSE connection started (its headers are sent); pair with `sseClosed()`. */
  sseOpened(): void {
    this.#sseOpen++;
  }

  /** An SSE connection ended. */
  sseClosed(): void {
    this.#sseOpen--;
  }

  /** Throws ServiceUnavailableError when no more readers may wait. */
  admit(): void {
    if (this.#closing) throw new ServiceUnavailableError('server is shutting down');
    if (this.#waiting >= this.#maxWaiters) throw new ServiceUnavailableError('too many live readers');
  }

  /**
   * Waits until the stream changes (data durable, closed, deleted), `timeoutMs` passes, `connection`
   * emits `close` (the client went away), or the server shuts down. Per wait: one promise and
   * three small closures; the deadline sits in the shared WaitDeadlines (no timer of its own),
   * and nothing is left behind (no AbortController, whose abort would also build a DOMException
   * with a stack for every finished request).
   * A long-poll request's wait (SSE sessions wait by callback: `startWait`).
   * @param connection the request's or response's emitter; a destroyed one ends the wait at once.
   */
  wait(stream: StreamState, timeoutMs: number, connection: EventEmitter & { destroyed: boolean }): Promise<WakeReason> {
    this.admit();
    this.#waiting++;
    this.#longPollWaiting++;
    return new Promise<WakeReason>((resolve) => {
      let ended = false;
      const end: EndWait = (reason) => {
        if (ended) return;
        ended = true;
        this.#deadlines.remove(end, tick);
        stream.removeWaiter(onChange);
        connection.off('close', onClose);
        this.#waiting--;
        this.#longPollWaiting--;
        resolve(reason);
      };
      const onChange = () => end('changed');
      const onClose = () => end('disconnected');
      const tick = this.#deadlines.add(end, timeoutMs);
      stream.addWaiter(onChange);
      // `on`, not `once`: `end` removes it anyway, and `once` would wrap it in one more closure.
      connection.on('close', onClose);
      if (connection.destroyed) onClose();
    });
  }

  /**
   * A wait that calls back instead of resolving a promise, for readers that wait again and again
   * (SSE sessions): nothing is allocated per wait beyond the set entries. `wake` is the stream's
   * waiter (called with no reason when the stream changes) and is called with 'timeout' once
   * `timeoutMs` passed and with 'shutdown' by `closeAll()`. The caller ends every wait it started
   * with `endWait` exactly once: when woken, or to give it up (its client went away).
   * @throws ServiceUnavailableError as `admit()` does.
   * @returns the handle `endWait` needs.
   */
  startWait(stream: StreamState, timeoutMs: number, wake: (reason?: WakeReason) => void): DeadlineTick {
    this.admit();
    this.#waiting++;
    stream.addWaiter(wake);
    return this.#deadlines.add(wake, timeoutMs);
  }

  /** Ends a wait begun with `startWait(stream, …, wake)`, which returned `tick`. */
  endWait(stream: StreamState, wake: (reason?: WakeReason) => void, tick: DeadlineTick): void {
    this.#deadlines.remove(wake, tick);
    stream.removeWaiter(wake);
    this.#waiting--;
  }

  /** Ends every wait (graceful shutdown) and refuses new ones. */
  closeAll(): void {
    this.#closing = true;
    for (const end of this.#deadlines.entries()) end('shutdown');
  }
}
