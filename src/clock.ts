/**
 * Injected time and randomness (STYLE.md: no ambient clock or Math.random in logic), so tests
 * can replay a failing run exactly.
 */

/** Wall-clock milliseconds since the Unix epoch. */
export interface Clock {
  nowMs(): number;
}

/** Uniform random numbers in [0, 1). */
export interface RandomSource {
  next(): number;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

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
