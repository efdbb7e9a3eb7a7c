import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { chooseCut, forkSourceStored, pressureVictims, sealReason, type HotTailView, type SealPolicy } from '../../src/tiering/seal-policy.ts';

const policy: SealPolicy = { segmentSizeBytes: 1000, sealIdleMs: 5_000, unsealedAgeMsMax: 60_000 };

/** A hot tail that no rule would seal, apart from the fields overridden. */
function view(overrides: Partial<HotTailView>): HotTailView {
  return { sealableBytes: 10, idleMs: 0, unsealedAgeMs: 0, closed: false, ...overrides };
}

/** Append entries of the given sizes, the first starting at `base`. */
function entriesOf(sizes: readonly number[], base = 0): { start: number; data: { length: number } }[] {
  const entries: { start: number; data: { length: number } }[] = [];
  let at = base;
  for (const length of sizes) {
    entries.push({ start: at, data: { length } });
    at += length;
  }
  return entries;
}

/** Entry boundaries: `base` and the end of every entry. */
function boundariesOf(sizes: readonly number[], base = 0): number[] {
  const boundaries = [base];
  for (const size of sizes) boundaries.push(boundaries[boundaries.length - 1] + size);
  return boundaries;
}

describe('sealReason', () => {
  test('nothing to seal without sealable bytes, whatever else holds', () => {
    for (const sealableBytes of [0, -1]) {
      expect(sealReason(view({ sealableBytes, idleMs: 1e9, unsealedAgeMs: 1e9, closed: true }), policy)).toBeUndefined();
    }
  });

  test('a fresh, small, open hot tail is left alone', () => {
    expect(sealReason(view({ sealableBytes: 999, idleMs: 4_999, unsealedAgeMs: 59_999 }), policy)).toBeUndefined();
  });

  test('each rule fires at its limit (inclusive)', () => {
    expect(sealReason(view({ sealableBytes: 1000 }), policy)).toBe('size');
    expect(sealReason(view({ sealableBytes: 5000 }), policy)).toBe('size');
    expect(sealReason(view({ closed: true }), policy)).toBe('closed');
    expect(sealReason(view({ idleMs: 5_000 }), policy)).toBe('idle');
    expect(sealReason(view({ unsealedAgeMs: 60_000 }), policy)).toBe('age');
  });

  test('precedence: size, then closed, then idle, then age', () => {
    const all = { sealableBytes: 1000, closed: true, idleMs: 5_000, unsealedAgeMs: 60_000 };
    expect(sealReason(view(all), policy)).toBe('size');
    expect(sealReason(view({ ...all, sealableBytes: 1 }), policy)).toBe('closed');
    expect(sealReason(view({ ...all, sealableBytes: 1, closed: false }), policy)).toBe('idle');
    expect(sealReason(view({ ...all, sealableBytes: 1, closed: false, idleMs: 0 }), policy)).toBe('age');
  });
});

describe('pressureVictims', () => {
  const tails = [
    ['a', 10],
    ['b', 30],
    ['c', 20],
  ] as const;

  test('largest first until the total falls to the target', () => {
    expect(pressureVictims(tails, 60, 0)).toEqual(['b', 'c', 'a']);
    expect(pressureVictims(tails, 60, 35)).toEqual(['b']);
    expect(pressureVictims(tails, 60, 30)).toEqual(['b']); // 60 − 30 = 30 ≤ 30: stop
    expect(pressureVictims(tails, 60, 29)).toEqual(['b', 'c']);
  });

  test('nothing when already at or below the target', () => {
    expect(pressureVictims(tails, 60, 60)).toEqual([]);
    expect(pressureVictims(tails, 40, 100)).toEqual([]);
  });

  test('the total counts unsealable bytes too: all victims may not reach the target', () => {
    // 100 held, only 60 sealable: after b and c, 50 remain.
    expect(pressureVictims(tails, 100, 50)).toEqual(['b', 'c']);
    expect(pressureVictims(tails, 100, 10)).toEqual(['b', 'c', 'a']);
  });

  test('ties keep the input order', () => {
    const tied = [
      ['x', 5],
      ['y', 5],
      ['big', 9],
      ['z', 5],
    ] as const;
    expect(pressureVictims(tied, 100, 0)).toEqual(['big', 'x', 'y', 'z']);
    expect(pressureVictims(tied, 20, 6)).toEqual(['big', 'x']);
  });

  test('tails with nothing sealable are never victims', () => {
    expect(
      pressureVictims(
        [
          ['a', 0],
          ['b', 0],
        ],
        100,
        0,
      ),
    ).toEqual([]);
    expect(
      pressureVictims(
        [
          ['a', 0],
          ['b', 5],
          ['c', 0],
        ],
        100,
        0,
      ),
    ).toEqual(['b']);
  });

  test('does not reorder its input', () => {
    const input: [string, number][] = [
      ['a', 1],
      ['b', 3],
      ['c', 2],
    ];
    pressureVictims(input, 100, 0);
    expect(input.map(([id]) => id)).toEqual(['a', 'b', 'c']);
  });

  test('property: a minimal prefix of the stable descending order, reaching the target when possible', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 50 }), { maxLength: 20 }),
        fc.nat({ max: 200 }),
        fc.nat({ max: 600 }),
        (sizes, extraBytes, targetBytes) => {
          const input = sizes.map((bytes, id) => [id, bytes] as const);
          const totalBytes = sizes.reduce((sum, bytes) => sum + bytes, 0) + extraBytes;
          const victims = pressureVictims(input, totalBytes, targetBytes);
          // Reference order: sealable tails by size descending, then by input position.
          const order = input
            .filter(([, bytes]) => bytes > 0)
            .sort((a, b) => b[1] - a[1] || a[0] - b[0])
            .map(([id]) => id);
          expect(victims).toEqual(order.slice(0, victims.length));
          const freed = (count: number) => order.slice(0, count).reduce((sum, id) => sum + sizes[id], 0);
          // Minimal: without the last victim the total was still above the target.
          if (victims.length > 0) expect(totalBytes - freed(victims.length - 1)).toBeGreaterThan(targetBytes);
          // Enough: either the target is reached or every sealable tail is a victim.
          if (victims.length < order.length) expect(totalBytes - freed(victims.length)).toBeLessThanOrEqual(targetBytes);
        },
      ),
    );
  });
});

describe('chooseCut, byte streams', () => {
  const entries = entriesOf([100, 100, 100, 100, 100]); // [0, 500)

  test('nothing to cut when to ≤ from', () => {
    expect(chooseCut(entries, 200, 200, 1000, 64, false)).toBeUndefined();
    expect(chooseCut(entries, 300, 200, 1000, 64, false)).toBeUndefined();
  });

  test('cuts at from + segmentSizeBytes when more is durable', () => {
    expect(chooseCut(entries, 0, 500, 250, 100, false)).toEqual({ end: 250, unitEnds: [100, 200, 250] });
  });

  test('cuts at to when less than a segment is durable', () => {
    expect(chooseCut(entries, 0, 230, 1000, 100, false)).toEqual({ end: 230, unitEnds: [100, 200, 230] });
  });

  test('unit ends step by chunkBytesMax from the segment start; the last unit may be short or exact', () => {
    expect(chooseCut(entries, 0, 300, 1000, 100, false)).toEqual({ end: 300, unitEnds: [100, 200, 300] });
    expect(chooseCut(entries, 0, 50, 1000, 100, false)).toEqual({ end: 50, unitEnds: [50] });
    expect(chooseCut(entries, 0, 500, 1000, 1000, false)).toEqual({ end: 500, unitEnds: [500] });
  });

  test('from may lie inside the first entry: steps count from it, not from entry starts', () => {
    expect(chooseCut(entries, 130, 500, 250, 100, false)).toEqual({ end: 380, unitEnds: [230, 330, 380] });
  });

  test('the cut may fall inside an entry', () => {
    const cut = chooseCut(entries, 0, 500, 150, 150, false);
    expect(cut).toEqual({ end: 150, unitEnds: [150] });
  });
});

describe('chooseCut, JSON streams (whole entries)', () => {
  test('nothing to cut when to ≤ from, without entries, or when no whole entry is durable', () => {
    const entries = entriesOf([10, 10]);
    expect(chooseCut(entries, 10, 10, 1000, 100, true)).toBeUndefined();
    expect(chooseCut([], 0, 20, 1000, 100, true)).toBeUndefined();
    expect(chooseCut(entries, 0, 5, 1000, 100, true)).toBeUndefined(); // the first entry ends at 10 > to
    expect(chooseCut(entries, 0, 9, 1000, 100, true)).toBeUndefined();
    expect(chooseCut(entries, 10, 15, 1000, 100, true)).toBeUndefined();
  });

  test('cuts only at entry ends, never past to', () => {
    const entries = entriesOf([10, 10, 10, 10]); // ends 10, 20, 30, 40
    expect(chooseCut(entries, 0, 40, 1000, 100, true)).toEqual({ end: 40, unitEnds: [40] });
    expect(chooseCut(entries, 0, 35, 1000, 100, true)).toEqual({ end: 30, unitEnds: [30] });
    expect(chooseCut(entries, 0, 39, 1000, 100, true)).toEqual({ end: 30, unitEnds: [30] }); // one byte short
    expect(chooseCut(entries, 0, 40, 25, 100, true)).toEqual({ end: 20, unitEnds: [20] });
    expect(chooseCut(entries, 0, 40, 20, 100, true)).toEqual({ end: 20, unitEnds: [20] }); // exactly a segment
  });

  test('starts after from, skipping entries already sealed', () => {
    const entries = entriesOf([10, 10, 10, 10], 1000);
    expect(chooseCut(entries, 1020, 1040, 1000, 100, true)).toEqual({ end: 1040, unitEnds: [1040] });
    expect(chooseCut(entries, 1040, 1040, 1000, 100, true)).toBeUndefined();
  });

  test('units group whole entries up to chunkBytesMax', () => {
    const entries = entriesOf([30, 30, 30, 50, 10, 60]); // ends 30 60 90 140 150 210
    expect(chooseCut(entries, 0, 210, 1000, 60, true)).toEqual({ end: 210, unitEnds: [60, 90, 150, 210] });
    expect(chooseCut(entries, 0, 210, 1000, 100, true)).toEqual({ end: 210, unitEnds: [90, 150, 210] });
  });

  test('an oversized entry is a unit alone', () => {
    const entries = entriesOf([10, 500, 10, 10]); // ends 10 510 520 530
    expect(chooseCut(entries, 0, 530, 1000, 100, true)).toEqual({ end: 530, unitEnds: [10, 510, 530] });
  });

  test('an oversized entry is a segment alone: cut before it, then it alone, then the rest', () => {
    const entries = entriesOf([10, 500, 10, 10]);
    expect(chooseCut(entries, 0, 530, 100, 50, true)).toEqual({ end: 10, unitEnds: [10] });
    expect(chooseCut(entries, 10, 530, 100, 50, true)).toEqual({ end: 510, unitEnds: [510] });
    expect(chooseCut(entries, 510, 530, 100, 50, true)).toEqual({ end: 530, unitEnds: [530] });
  });

  test('entries past to do not change the cut', () => {
    const short = entriesOf([20, 20, 20]);
    const long = entriesOf([20, 20, 20, 5, 5, 5]);
    expect(chooseCut(long, 0, 60, 1000, 30, true)).toEqual(chooseCut(short, 0, 60, 1000, 30, true));
  });
});

describe('chooseCut properties', () => {
  const limits = {
    segmentSizeBytes: fc.integer({ min: 1, max: 300 }),
    chunkBytesMax: fc.integer({ min: 1, max: 120 }),
  };

  /** The checks both modes share: unit ends strictly increasing in (from, end], the last = end. */
  function expectWellFormed(cut: { end: number; unitEnds: number[] }, from: number): void {
    expect(cut.end).toBeGreaterThan(from);
    expect(cut.unitEnds.length).toBeGreaterThan(0);
    expect(cut.unitEnds[cut.unitEnds.length - 1]).toBe(cut.end);
    let previous = from;
    for (const unitEnd of cut.unitEnds) {
      expect(unitEnd).toBeGreaterThan(previous);
      expect(unitEnd).toBeLessThanOrEqual(cut.end);
      previous = unitEnd;
    }
  }

  test('byte streams: segments and units within their limits, units at fixed steps', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 80 }), { minLength: 1, maxLength: 25 }),
        fc.nat({ max: 1000 }),
        fc.nat(),
        fc.nat(),
        limits.segmentSizeBytes,
        limits.chunkBytesMax,
        (sizes, base, a, b, segmentSizeBytes, chunkBytesMax) => {
          const boundaries = boundariesOf(sizes, base);
          const total = boundaries[boundaries.length - 1];
          const from = base + (a % (total - base + 1)); // anywhere, also inside an entry
          const to = from + (b % (total - from + 1));
          const cut = chooseCut(entriesOf(sizes, base), from, to, segmentSizeBytes, chunkBytesMax, false);
          if (to === from) {
            expect(cut).toBeUndefined();
            return;
          }
          expect(cut).toBeDefined();
          if (cut === undefined) return;
          expectWellFormed(cut, from);
          expect(cut.end).toBe(Math.min(to, from + segmentSizeBytes));
          expect(cut.end - from).toBeLessThanOrEqual(segmentSizeBytes);
          let unitStart = from;
          for (const [i, unitEnd] of cut.unitEnds.entries()) {
            expect(unitEnd - unitStart).toBeLessThanOrEqual(chunkBytesMax);
            // Fixed steps: every unit but the last is exactly chunkBytesMax.
            if (i < cut.unitEnds.length - 1) expect(unitEnd - unitStart).toBe(chunkBytesMax);
            unitStart = unitEnd;
          }
        },
      ),
    );
  });

  test('JSON streams: cuts and unit ends on entry boundaries, limits kept except by a lone entry, greedy', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 150 }), { maxLength: 25 }),
        fc.nat({ max: 1000 }),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        limits.segmentSizeBytes,
        limits.chunkBytesMax,
        (sizes, base, a, b, toOnBoundary, segmentSizeBytes, chunkBytesMax) => {
          const boundaries = boundariesOf(sizes, base);
          const total = boundaries[boundaries.length - 1];
          const from = boundaries[a % boundaries.length];
          // The durable offset is normally an entry boundary; elsewhere, nothing past it may be cut.
          const to = toOnBoundary ? boundaries[Math.max(a % boundaries.length, b % boundaries.length)] : from + (b % (total - from + 1));
          const cut = chooseCut(entriesOf(sizes, base), from, to, segmentSizeBytes, chunkBytesMax, true);
          const reachable = boundaries.filter((boundary) => boundary > from && boundary <= to);
          if (reachable.length === 0) {
            expect(cut).toBeUndefined();
            return;
          }
          expect(cut).toBeDefined();
          if (cut === undefined) return;
          expectWellFormed(cut, from);
          expect(cut.end).toBeLessThanOrEqual(to);
          expect(boundaries).toContain(cut.end);
          for (const unitEnd of cut.unitEnds) expect(boundaries).toContain(unitEnd);

          const nextBoundary = (at: number) => boundaries.find((boundary) => boundary > at);
          // Within the segment limit, unless the segment is a single entry.
          if (cut.end - from > segmentSizeBytes) expect(cut.end).toBe(nextBoundary(from));
          // Greedy: the next entry would pass `to` or the segment limit.
          const after = nextBoundary(cut.end);
          if (after !== undefined) expect(after > to || after - from > segmentSizeBytes).toBe(true);

          let unitStart = from;
          for (const [i, unitEnd] of cut.unitEnds.entries()) {
            if (unitEnd - unitStart > chunkBytesMax) expect(unitEnd).toBe(nextBoundary(unitStart));
            // Greedy units: the next entry would not have fitted in this one.
            if (i < cut.unitEnds.length - 1) expect((nextBoundary(unitEnd) ?? Infinity) - unitStart).toBeGreaterThan(chunkBytesMax);
            unitStart = unitEnd;
          }
        },
      ),
    );
  });
});

test('a fork stores no manifest until its source has stored one covering the fork position', () => {
  expect(forkSourceStored({ fork: undefined })).toBe(true);
  expect(forkSourceStored({ fork: { source: { manifestVersion: 0, sealedOffset: 0 }, position: 0 } })).toBe(false);
  expect(forkSourceStored({ fork: { source: { manifestVersion: 2, sealedOffset: 10 }, position: 20 } })).toBe(false);
  expect(forkSourceStored({ fork: { source: { manifestVersion: 3, sealedOffset: 20 }, position: 20 } })).toBe(true);
});
