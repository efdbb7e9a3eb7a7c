/**
 * Test doubles for the stream layer's unit tests: a manual clock, an in-memory record log whose
 * appends can be held or failed, and a listener that records what it hears.
 */
import { manualClock, type ManualClock } from '../../src/clock.ts';
import type { SegmentRef } from '../../src/manifest/manifest.ts';
import type { RecordLog, RegistryListener } from '../../src/stream/registry.ts';
import type { StreamRecord } from '../../src/stream/records.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';

export type { ManualClock };

/** A clock the test moves by hand (`advance`), starting at wall time `startMs`. */
export function testClock(startMs = 1_000_000): ManualClock {
  return manualClock(startMs);
}

/**
 * Keeps every appended record in order. By default an append is durable at once; `hold()` makes
 * the next appends wait until `release()`, `fail(error)` makes them reject.
 */
export class MemoryRecordLog implements RecordLog {
  readonly records: StreamRecord[] = [];
  #held: { resolve: () => void; reject: (error: unknown) => void }[] | undefined;
  #failure: unknown;
  #refusal: unknown;

  append(record: StreamRecord): Promise<void> {
    if (this.#refusal !== undefined) {
      const refusal = this.#refusal;
      this.#refusal = undefined;
      throw refusal;
    }
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    this.records.push(record);
    if (this.#held === undefined) return Promise.resolve();
    const held = this.#held;
    return new Promise((resolve, reject) => held.push({ resolve, reject }));
  }

  hold(): void {
    this.#held ??= [];
  }

  /** Makes every held append durable and stops holding. */
  release(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const { resolve } of held) resolve();
  }

  /** Refuses the next append synchronously (the WAL's queue is full): nothing is queued. */
  refuseNext(error: unknown): void {
    this.#refusal = error;
  }

  /** Rejects every later append (the WAL failed). */
  fail(error: unknown): void {
    this.#failure = error;
  }
}

export type ListenerEvent =
  | { event: 'durable'; inc: number; tail: number }
  | { event: 'removed'; inc: number }
  | { event: 'segmentsDropped'; inc: number; ranges: [number, number][] };

export class RecordingListener implements RegistryListener {
  readonly events: ListenerEvent[] = [];
  durable(stream: StreamState): void {
    this.events.push({ event: 'durable', inc: stream.incarnation, tail: stream.durableOffset });
  }
  removed(stream: StreamState): void {
    this.events.push({ event: 'removed', inc: stream.incarnation });
  }
  segmentsDropped(stream: StreamState, segments: readonly SegmentRef[]): void {
    this.events.push({ event: 'segmentsDropped', inc: stream.incarnation, ranges: segments.map((s) => [s.start, s.end]) });
  }
}

/** A segment `[start, end)` with one read unit per `unitBytes` (default: one unit). */
export function segment(start: number, end: number, unitBytes = end - start, sealedAtMs = 0): SegmentRef {
  const unitEnds: number[] = [];
  for (let at = start + unitBytes; at < end; at += unitBytes) unitEnds.push(at);
  unitEnds.push(end);
  return { start, end, unitEnds, sealedAtMs };
}
