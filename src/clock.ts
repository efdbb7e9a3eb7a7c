/**
 * Injected time, timers and randomness (STYLE.md: no ambient clock, global timers or
 * Math.random in logic), so tests can drive time by hand and replay a failing run exactly.
 * This is the only module that may touch `Date.now`, `performance.now`, the global timer
 * functions and `Math.random`; `npm run lint` enforces it.
 */

/** A scheduled callback; `cancel` is idempotent. */
export interface Timer {
  cancel(): void;
  /** Do not keep the process alive for this timer alone (Node's `unref`). Returns the timer. */
  unref(): Timer;
}

/**
 * Wall-clock time for timestamps (expiry, retention, cursors) and timers for everything that
 * waits. Durations are measured with `monotonicMs`, which never goes backwards.
 */
export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Milliseconds from an arbitrary origin; never decreases (for durations and deadlines). */
  monotonicMs(): number;
  /** Calls `callback` once after `delayMs` (≥ 0) milliseconds. */
  setTimeout(callback: () => void, delayMs: number): Timer;
  /** Calls `callback` every `periodMs` (> 0) milliseconds until cancelled. */
  setInterval(callback: () => void, periodMs: number): Timer;
  /** Resolves after `delayMs` milliseconds. */
  sleep(delayMs: number): Promise<void>;
}

/** Only the wall clock: for code that reads the time and never waits. */
export type WallClock = Pick<Clock, 'nowMs'>;

/** Uniform random numbers in [0, 1). */
export interface RandomSource {
  next(): number;
}

function wrapNodeTimer(handle: ReturnType<typeof setTimeout>, clear: (h: ReturnType<typeof setTimeout>) => void): Timer {
  const timer: Timer = {
    cancel: () => clear(handle),
    unref: () => {
      handle.unref();
      return timer;
    },
  };
  return timer;
}

/** The real clock: `Date.now`, `performance.now` and Node's timers. */
export const systemClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimeout: (callback, delayMs) => wrapNodeTimer(setTimeout(callback, delayMs), clearTimeout),
  setInterval: (callback, periodMs) => wrapNodeTimer(setInterval(callback, periodMs), clearInterval),
  sleep: (delayMs) => new Promise((resolve) => setTimeout(resolve, delayMs)),
};

/** A clock for tests: time moves only when `advance` is called; due timers fire in order. */
export interface ManualClock extends Clock {
  /** Moves both clocks forward by `deltaMs` (≥ 0), firing every timer that falls due. */
  advance(deltaMs: number): void;
  /** Number of timers scheduled and not yet fired or cancelled. */
  readonly pendingTimerCount: number;
}

/**
 * A manual clock starting at wall time `startMs` (monotonic time starts at 0). Timers due at the
 * same instant fire in the order they were scheduled.
 */
export function manualClock(startMs = 0): ManualClock {
  let elapsedMs = 0;
  let nextId = 0;
  const timers = new Map<number, { dueMs: number; periodMs: number | undefined; callback: () => void }>();
  const schedule = (callback: () => void, delayMs: number, periodMs: number | undefined): Timer => {
    const id = nextId++;
    timers.set(id, { dueMs: elapsedMs + Math.max(0, delayMs), periodMs, callback });
    const timer: Timer = { cancel: () => void timers.delete(id), unref: () => timer };
    return timer;
  };
  const clock: ManualClock = {
    nowMs: () => startMs + elapsedMs,
    monotonicMs: () => elapsedMs,
    setTimeout: (callback, delayMs) => schedule(callback, delayMs, undefined),
    setInterval: (callback, periodMs) => {
      if (!(periodMs > 0)) throw new RangeError(`periodMs must be > 0, got ${periodMs}`);
      return schedule(callback, periodMs, periodMs);
    },
    sleep: (delayMs) => new Promise((resolve) => schedule(resolve, delayMs, undefined)),
    advance(deltaMs) {
      if (!(deltaMs >= 0)) throw new RangeError(`deltaMs must be >= 0, got ${deltaMs}`);
      const targetMs = elapsedMs + deltaMs;
      for (;;) {
        let dueId: number | undefined;
        let dueMs = Infinity;
        for (const [id, entry] of timers) {
          if (entry.dueMs <= targetMs && entry.dueMs < dueMs) {
            dueId = id;
            dueMs = entry.dueMs;
          }
        }
        if (dueId === undefined) break;
        const entry = timers.get(dueId)!;
        elapsedMs = Math.max(elapsedMs, entry.dueMs);
        if (entry.periodMs === undefined) timers.delete(dueId);
        else entry.dueMs += entry.periodMs;
        entry.callback();
      }
      elapsedMs = targetMs;
    },
    get pendingTimerCount() {
      return timers.size;
    },
  };
  return clock;
}

/** A seeded generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** A fresh seed for a run that was given none (log it so the run can be replayed). */
export function freshSeed(): number {
  return Math.floor(Math.random() * 2 ** 32);
}
