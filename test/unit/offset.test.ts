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

  test('adding 1 to the part after `_` names the same position (the slack digit)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 2 ** 49 }), (incarnation, position) => {
        const token = formatOffset(incarnation, position);
        const [head, tail] = token.split('_');
        const plusOne = `${head}_${(BigInt(tail) + 1n).toString().padStart(tail.length, '0')}`;
        expect(parseOffsetToken(plusOne)).toEqual({ incarnation, position });
      }),
    );
  });

  test('tokens minted before the slack digit existed still parse', () => {
    expect(parseOffsetToken('0000000000000012_0000000000003456')).toEqual({ incarnation: 12, position: 3456 });
    expect(parseOffsetToken('0000000000000012_00000000000034560')).toEqual({ incarnation: 12, position: 3456 });
    expect(parseOffsetToken('0000000000000012_000000000000345600')).toBeUndefined();
  });
});
