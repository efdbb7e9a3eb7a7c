import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import type { SegmentRef } from '../../src/manifest/manifest.ts';
import { retainedStartAfter, type RetentionLimits } from '../../src/tiering/retention.ts';

/** Contiguous segments from `start`, one per `[sizeBytes, sealedAtMs]`. */
function segmentsOf(specs: readonly (readonly [number, number])[], start = 0): SegmentRef[] {
  const segments: SegmentRef[] = [];
  let at = start;
  for (const [sizeBytes, sealedAtMs] of specs) {
    segments.push({ start: at, end: at + sizeBytes, unitEnds: [at + sizeBytes], sealedAtMs });
    at += sizeBytes;
  }
  return segments;
}

// [0, 100) sealed at 0, [100, 300) at 100, [300, 600) at 200; the tail is at 1000.
const segments = segmentsOf([
  [100, 0],
  [200, 100],
  [300, 200],
]);

describe('retainedStartAfter', () => {
  test('no limits, or no segments: the retained start is unchanged', () => {
    expect(retainedStartAfter(segments, 0, 1000, {}, 1e12)).toBe(0);
    expect(retainedStartAfter([], 0, 1000, { retentionMs: 0, retentionBytes: 0 }, 1e12)).toBe(0);
    expect(retainedStartAfter([], 250, 1000, { retentionMs: 0 }, 1e12)).toBe(250);
  });

  test('by age: segments sealed at least retentionMs ago go, from the head', () => {
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 100 }, 150)).toBe(100);
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 100 }, 200)).toBe(300); // exactly retentionMs: old
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 100 }, 199)).toBe(100);
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 100 }, 99)).toBe(0);
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 100 }, 1e9)).toBe(600);
  });

  test('by bytes: segments with at least retentionBytes after them go', () => {
    // After each segment: 900, 700 and 400 bytes.
    expect(retainedStartAfter(segments, 0, 1000, { retentionBytes: 800 }, 0)).toBe(100);
    expect(retainedStartAfter(segments, 0, 1000, { retentionBytes: 700 }, 0)).toBe(300); // exactly: goes
    expect(retainedStartAfter(segments, 0, 1000, { retentionBytes: 400 }, 0)).toBe(600);
    expect(retainedStartAfter(segments, 0, 1000, { retentionBytes: 901 }, 0)).toBe(0);
  });

  test('hot-tail bytes are always kept: at most the last segment end', () => {
    expect(retainedStartAfter(segments, 0, 1000, { retentionBytes: 0 }, 0)).toBe(600);
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 0 }, 1e9)).toBe(600);
  });

  test('either limit drops a segment', () => {
    // By age alone only [0, 100) goes; by bytes alone only the first two; together, the most either says.
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 150, retentionBytes: 700 }, 150)).toBe(300);
    // By age the first two; by bytes none.
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 50, retentionBytes: 5000 }, 150)).toBe(300);
    // Neither says so.
    expect(retainedStartAfter(segments, 0, 1000, { retentionMs: 500, retentionBytes: 5000 }, 150)).toBe(0);
  });

  test('either limit per segment: one segment surplus but young, the next old but not surplus', () => {
    // After each segment: 900, 700, 400 bytes. Bytes alone drop only [0, 100); age alone nothing
    // (the young head stops it); together the first two go.
    const mixed = segmentsOf([
      [100, 1000],
      [200, 0],
      [300, 1000],
    ]);
    const limits = { retentionMs: 500, retentionBytes: 800 };
    expect(retainedStartAfter(mixed, 0, 1000, { retentionBytes: 800 }, 1000)).toBe(100);
    expect(retainedStartAfter(mixed, 0, 1000, { retentionMs: 500 }, 1000)).toBe(0);
    expect(retainedStartAfter(mixed, 0, 1000, limits, 1000)).toBe(300);
  });

  test('never past a segment that must be kept, even if later ones could go', () => {
    const outOfOrder = segmentsOf([
      [100, 1000], // young
      [200, 0], // old
    ]);
    expect(retainedStartAfter(outOfOrder, 0, 1000, { retentionMs: 500 }, 1000)).toBe(0);
  });

  test('segments already below the retained start are skipped, and the start never moves back', () => {
    // The first two are already dropped; the third is young.
    expect(retainedStartAfter(segments, 300, 1000, { retentionMs: 100 }, 250)).toBe(300);
    // A young first segment below the retained start does not stop the old third one from going.
    const youngHead = segmentsOf([
      [100, 5000],
      [200, 0],
      [300, 0],
    ]);
    expect(retainedStartAfter(youngHead, 100, 1000, { retentionMs: 100 }, 5000)).toBe(600);
    expect(retainedStartAfter(youngHead, 0, 1000, { retentionMs: 100 }, 5000)).toBe(0);
    // A retained start inside a segment: that segment is still judged as a whole.
    expect(retainedStartAfter(segments, 150, 1000, { retentionMs: 100 }, 150)).toBe(150);
    expect(retainedStartAfter(segments, 150, 1000, { retentionMs: 100 }, 250)).toBe(300);
    // A retained start past every segment.
    expect(retainedStartAfter(segments, 700, 1000, { retentionMs: 0 }, 1e9)).toBe(700);
  });

  test('segments need not start at 0 (a fork or an earlier trim)', () => {
    const later = segmentsOf(
      [
        [100, 0],
        [100, 0],
      ],
      5000,
    );
    expect(retainedStartAfter(later, 5000, 5300, { retentionBytes: 150 }, 0)).toBe(5100);
  });

  test('property: everything dropped may go, the first segment kept may not', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 100 }), fc.nat({ max: 1000 })), { maxLength: 12 }),
        fc.nat({ max: 200 }),
        fc.nat(),
        fc.option(fc.nat({ max: 1000 }), { nil: undefined }),
        fc.option(fc.nat({ max: 1500 }), { nil: undefined }),
        fc.nat({ max: 2000 }),
        (specs, hotBytes, startPick, retentionMs, retentionBytes, nowMs) => {
          const list = segmentsOf(specs);
          const sealedEnd = list.length === 0 ? 0 : list[list.length - 1].end;
          const tailOffset = sealedEnd + hotBytes;
          const retainedStart = startPick % (sealedEnd + 1);
          const limits: RetentionLimits = { retentionMs, retentionBytes };
          const result = retainedStartAfter(list, retainedStart, tailOffset, limits, nowMs);

          const goes = (segment: SegmentRef) =>
            (retentionMs !== undefined && nowMs - segment.sealedAtMs >= retentionMs) ||
            (retentionBytes !== undefined && tailOffset - segment.end >= retentionBytes);
          // Every segment between the old and the new retained start is one a limit lets go…
          for (const segment of list) {
            if (segment.end > retainedStart && segment.end <= result) expect(goes(segment)).toBe(true);
          }
          // …and the first one kept is one no limit lets go.
          const firstKept = list.find((segment) => segment.end > result);
          if (firstKept !== undefined) expect(goes(firstKept)).toBe(false);
          expect(result).toBeGreaterThanOrEqual(retainedStart);
          expect(result).toBeLessThanOrEqual(Math.max(retainedStart, sealedEnd));
          if (result !== retainedStart) expect(list.map((segment) => segment.end)).toContain(result);
        },
      ),
    );
  });
});
