/**
 * Deadlines of live waits (long-poll and SSE, ./live-readers.ts) on one shared timer instead of
 * one timer per wait: tens of thousands of idle readers hold no timer object each, and a wait
 * that ends early (the usual case: an append woke it) costs a Set deletion, not a timer
 * cancellation. Deadlines are kept to whole milliseconds (rounded up, so a wait never ends early)
 * in buckets, one per millisecond that has waits; a min-heap of those milliseconds says when the
 * one timer fires next.
 */
import type { Clock, Timer } from '../clock.ts';

/** A handle for `remove`: the bucket the entry is in. */
export type DeadlineTick = number;

export class WaitDeadlines<T> {
  readonly #clock: Clock;
  readonly #onExpired: (entry: T) => void;
  /** Entries by deadline (monotonic ms, whole). */
  readonly #buckets = new Map<DeadlineTick, Set<T>>();
  /**
   * Deadlines of the buckets, as a binary min-heap. It may hold deadlines of buckets emptied since
   * (dropped when they reach the top), so it is bounded by the waits added within one timeout.
   */
  readonly #heap: DeadlineTick[] = [];
  #timer: Timer | undefined;
  /** When the armed timer fires (monotonic ms); Infinity when none is armed. */
  #timerTick = Number.POSITIVE_INFINITY;

  /**
   * @param clock the monotonic clock and the one timer.
   * @param onExpired called once for every entry whose deadline passed (it is removed first).
   */
  constructor(clock: Clock, onExpired: (entry: T) => void) {
    this.#clock = clock;
    this.#onExpired = onExpired;
  }

  /** Entries waiting now. */
  get size(): number {
    let count = 0;
    for (const bucket of this.#buckets.values()) count += bucket.size;
    return count;
  }

  /** Adds `entry`, due `timeoutMs` (≥ 0) from now; returns the handle `remove` needs. */
  add(entry: T, timeoutMs: number): DeadlineTick {
    const tick = Math.ceil(this.#clock.monotonicMs() + Math.max(0, timeoutMs));
    let bucket = this.#buckets.get(tick);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(tick, bucket);
      heapPush(this.#heap, tick);
    }
    bucket.add(entry);
    if (tick < this.#timerTick) this.#arm(tick);
    return tick;
  }

  /** Removes `entry` (added with handle `tick`); a no-op when it is not there. */
  remove(entry: T, tick: DeadlineTick): void {
    const bucket = this.#buckets.get(tick);
    if (bucket === undefined || !bucket.delete(entry)) return;
    if (bucket.size === 0) this.#buckets.delete(tick);
    if (this.#buckets.size === 0) this.#disarm();
    else while (this.#heap.length > 0 && !this.#buckets.has(this.#heap[0]!)) heapPop(this.#heap);
  }

  /** Every entry now, in no particular order (e.g. to end all waits at shutdown). */
  entries(): T[] {
    const all: T[] = [];
    for (const bucket of this.#buckets.values()) for (const entry of bucket) all.push(entry);
    return all;
  }

  #arm(tick: DeadlineTick): void {
    this.#timer?.cancel();
    this.#timerTick = tick;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, tick - this.#clock.monotonicMs()));
    this.#timer.unref();
  }

  #disarm(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerTick = Number.POSITIVE_INFINITY;
    this.#heap.length = 0;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerTick = Number.POSITIVE_INFINITY;
    const nowMs = this.#clock.monotonicMs();
    const expired: T[] = [];
    while (this.#heap.length > 0 && this.#heap[0]! <= nowMs) {
      const tick = heapPop(this.#heap);
      const bucket = this.#buckets.get(tick);
      if (bucket === undefined) continue;
      this.#buckets.delete(tick);
      for (const entry of bucket) expired.push(entry);
    }
    // Drop heap entries of buckets emptied meanwhile, then arm for the next live one.
    while (this.#heap.length > 0 && !this.#buckets.has(this.#heap[0]!)) heapPop(this.#heap);
    if (this.#heap.length > 0) this.#arm(this.#heap[0]!);
    for (const entry of expired) this.#onExpired(entry);
  }
}

function heapPush(heap: number[], value: number): void {
  let i = heap.push(value) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= value) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = value;
}

function heapPop(heap: number[]): number {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    if (left >= heap.length) break;
    const right = left + 1;
    const child = right < heap.length && heap[right]! < heap[left]! ? right : left;
    if (heap[child]! >= last) break;
    heap[i] = heap[child]!;
    i = child;
  }
  heap[i] = last;
  return top;
}
