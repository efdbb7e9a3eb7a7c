/**
 * Waiting for a server's background work to end, seen from outside: a counter it exposes (its
 * object-store PUT count, say) has stopped moving.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitStillOptions {
  /** The value must stay the same this long, ms. */
  quietMs: number;
  /** Read it again this often, ms. */
  pollMs: number;
  /** Give up past this `performance.now()` time. */
  deadlineMs: number;
  /** The error's message when the deadline passes first, e.g. `PUTs still going after 120000 ms`. */
  timeoutMessage: string;
}

/** Polls `read` until it has returned the same number for `quietMs`; rejects past `deadlineMs`. */
export async function waitUntilStill(read: () => Promise<number>, options: WaitStillOptions): Promise<void> {
  let last = await read();
  let stillSinceMs = performance.now();
  while (performance.now() - stillSinceMs < options.quietMs) {
    if (performance.now() > options.deadlineMs) throw new Error(options.timeoutMessage);
    await sleep(options.pollMs);
    const now = await read();
    if (now !== last) {
      last = now;
      stillSinceMs = performance.now();
    }
  }
}
