/**
 * The inspector's one door to time and timers (the browser's counterpart of src/clock.ts; the
 * lint rule that bans ambient time in src/ exempts this file only). Components take what they need
 * from here, so the rest of the UI has no hidden time source.
 */

export interface BrowserClock {
  /** Wall-clock time, ms since the epoch. */
  nowMs(): number;
  /** Calls `run` every `intervalMs`; returns the function that stops it. */
  every(intervalMs: number, run: () => void): () => void;
  /** Calls `run` once after `delayMs`; returns the function that cancels it. */
  after(delayMs: number, run: () => void): () => void;
}

export const browserClock: BrowserClock = {
  nowMs: () => Date.now(),
  every(intervalMs, run) {
    const id = setInterval(run, intervalMs);
    return () => clearInterval(id);
  },
  after(delayMs, run) {
    const id = setTimeout(run, delayMs);
    return () => clearTimeout(id);
  },
};
