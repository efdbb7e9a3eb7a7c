/**
 * Live-read cursors for CDN collapsing (PROTOCOL.md §10.1 "Server-Generated Cursors").
 * The cursor is the number of 20-second intervals since 2024-10-09T00:00:00Z; when a client
 * echoes a cursor at or past the current interval, the answer jumps ahead by a random 1–3600 s,
 * so cursors never go backwards and a cached empty response cannot loop.
 */
import type { RandomSource, WallClock } from '../clock.ts';

export const CURSOR_EPOCH_MS = Date.UTC(2024, 9, 9);
export const CURSOR_INTERVAL_MS = 20_000;
const JITTER_SECONDS_MIN = 1;
const JITTER_SECONDS_MAX = 3600;

/** The interval number for `nowMs`. */
export function currentCursorInterval(nowMs: number): number {
  return Math.floor((nowMs - CURSOR_EPOCH_MS) / CURSOR_INTERVAL_MS);
}

/**
 * The cursor to send on a live response, given the client's `cursor` parameter (if any).
 * Always ≥ the current interval and strictly greater than a client cursor that is not behind.
 */
export function responseCursor(clientCursor: string | undefined, clock: WallClock, random: RandomSource): string {
  const current = currentCursorInterval(clock.nowMs());
  if (clientCursor === undefined || !/^\d{1,15}$/.test(clientCursor)) return String(current);
  const client = Number(clientCursor);
  if (client < current) return String(current);
  const jitterSeconds = JITTER_SECONDS_MIN + Math.floor(random.next() * (JITTER_SECONDS_MAX - JITTER_SECONDS_MIN + 1));
  return String(client + Math.max(1, Math.ceil((jitterSeconds * 1000) / CURSOR_INTERVAL_MS)));
}
