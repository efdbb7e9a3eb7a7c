import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/clock.ts';
import { CURSOR_EPOCH_MS, CURSOR_INTERVAL_MS, currentCursorInterval, responseCursor } from '../../src/protocol/cursor.ts';

const clockAt = (ms: number) => ({ nowMs: () => ms });

describe('protocol cursor', () => {
  test('intervals of 20 s since 2024-10-09', () => {
    expect(currentCursorInterval(CURSOR_EPOCH_MS)).toBe(0);
    expect(currentCursorInterval(CURSOR_EPOCH_MS + CURSOR_INTERVAL_MS - 1)).toBe(0);
    expect(currentCursorInterval(CURSOR_EPOCH_MS + 5 * CURSOR_INTERVAL_MS)).toBe(5);
  });

  test('no, malformed or old client cursor: the current interval', () => {
    const clock = clockAt(CURSOR_EPOCH_MS + 100 * CURSOR_INTERVAL_MS);
    const random = seededRandom(1);
    expect(responseCursor(undefined, clock, random)).toBe('100');
    expect(responseCursor('abc', clock, random)).toBe('100');
    expect(responseCursor('-5', clock, random)).toBe('100');
    expect(responseCursor('99', clock, random)).toBe('100');
  });

  test('a client cursor at or past the current interval jumps ahead by 1 to 3600 s', () => {
    const clock = clockAt(CURSOR_EPOCH_MS + 100 * CURSOR_INTERVAL_MS);
    const random = seededRandom(42);
    const maxJumpIntervals = Math.ceil((3600 * 1000) / CURSOR_INTERVAL_MS);
    for (const client of [100, 150]) {
      for (let i = 0; i < 200; i++) {
        const cursor = Number(responseCursor(String(client), clock, random));
        expect(cursor).toBeGreaterThan(client);
        expect(cursor - client).toBeLessThanOrEqual(maxJumpIntervals);
      }
    }
  });

  test('the same seed gives the same cursors', () => {
    const clock = clockAt(CURSOR_EPOCH_MS + 100 * CURSOR_INTERVAL_MS);
    const a = seededRandom(7);
    const b = seededRandom(7);
    for (let i = 0; i < 10; i++) expect(responseCursor('100', clock, a)).toBe(responseCursor('100', clock, b));
  });
});
