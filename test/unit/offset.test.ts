import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { formatOffset, parseOffsetQuery, parseOffsetToken, POSITION_MAX } from '../../src/protocol/offset.ts';

describe('offset codec', () => {
  test('round-trips incarnation and position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: POSITION_MAX }), (incarnation, position) => {
        expect(parseOffsetToken(formatOffset(incarnation, position))).toEqual({ incarnation, position });
      }),
    );
  });

  test('tokens of one incarnation sort lexicographically by position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1e9 }), fc.nat(), fc.nat(), (incarnation, a, b) => {
        const order = Math.sign(a - b);
        const textOrder = Math.sign(formatOffset(incarnation, a).localeCompare(formatOffset(incarnation, b)));
        expect(textOrder).toBe(order);
      }),
    );
  });

  test('a later incarnation (a fork) sorts after every earlier token', () => {
    expect(formatOffset(8, 0) > formatOffset(7, POSITION_MAX)).toBe(true);
  });

  test('tokens use only URL-safe characters and never the sentinels', () => {
    const token = formatOffset(12, 3456);
    expect(token).toMatch(/^[0-9_]+$/);
    expect(['-1', 'now']).not.toContain(token);
  });

  test('sentinels and malformed values', () => {
    expect(parseOffsetQuery(undefined)).toEqual({ kind: 'start' });
    expect(parseOffsetQuery('-1')).toEqual({ kind: 'start' });
    expect(parseOffsetQuery('now')).toEqual({ kind: 'now' });
    for (const bad of ['', '0', '1_2', 'abc', '0000000000000001_000000000000001', '0000000000000001_0000000000000001 ', '../x']) {
      expect(parseOffsetQuery(bad)).toBeUndefined();
    }
  });
});
