import { describe, expect, test } from 'vitest';
import { BadRequestError, GoneError } from '../../src/protocol/errors.ts';
import { formatOffset } from '../../src/protocol/offset.ts';
import {
  childBase,
  earliestPosition,
  forkPosition,
  lineage,
  offsetOf,
  ownerOf,
  resolvePosition,
} from '../../src/stream/lineage.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';
import { StreamTable } from '../../src/stream/stream-table.ts';
import { testClock, segment } from '../support/record-log.ts';

const bytes = (text: string) => Buffer.from(text);

/**
 * Three generations: `/a` (inc 1, bytes [0, 10)), `/b` forked from it at 6 (inc 2, own bytes
 * [6, 12)), `/c` forked from `/b` at 8 (inc 3, own bytes [8, 11)). Everything durable.
 */
function family(): { t: StreamTable; a: StreamState; b: StreamState; c: StreamState } {
  const t = new StreamTable(testClock());
  const a = t.apply({ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, data: bytes('0123456789'), createdAtMs: 1 })!;
  const b = t.apply({ t: 'create', inc: 2, path: '/b', contentType: 'text/plain', closed: false, fork: { inc: 1, position: 6 }, data: bytes('BBBBBB'), createdAtMs: 1 })!;
  const c = t.apply({ t: 'create', inc: 3, path: '/c', contentType: 'text/plain', closed: false, fork: { inc: 2, position: 8 }, data: bytes('CCC'), createdAtMs: 1 })!;
  t.markAllDurable();
  return { t, a, b, c };
}

describe('lineage', () => {
  test('a stream and its fork sources, nearest first', () => {
    const { a, b, c } = family();
    expect(lineage(a)).toEqual([a]);
    expect(lineage(c)).toEqual([c, b, a]);
  });

  test('ownerOf: the stream whose own bytes hold a position', () => {
    const { a, b, c } = family();
    expect([0, 5, 6, 7, 8, 10].map((p) => ownerOf(c, p).path)).toEqual(['/a', '/a', '/b', '/b', '/c', '/c']);
    expect(ownerOf(b, 11)).toBe(b);
    expect(ownerOf(a, 3)).toBe(a);
  });

  test("childBase: where an owner's bytes stop being the reader's", () => {
    const { a, b, c } = family();
    expect(childBase(c, c)).toBe(Number.POSITIVE_INFINITY);
    expect(childBase(c, b)).toBe(8);
    expect(childBase(c, a)).toBe(6);
    expect(childBase(b, a)).toBe(6);
  });

  test('offsetOf formats the stream incarnation and the position', () => {
    const { c } = family();
    expect(offsetOf(c, 9)).toBe(formatOffset(3, 9));
  });
});

describe('resolvePosition', () => {
  test("a fork accepts its own tokens and its sources' tokens below each fork point", () => {
    const { c } = family();
    expect(resolvePosition(c, { incarnation: 3, position: 11 })).toBe(11);
    expect(resolvePosition(c, { incarnation: 2, position: 8 })).toBe(8);
    expect(resolvePosition(c, { incarnation: 1, position: 6 })).toBe(6);
    expect(resolvePosition(c, { incarnation: 1, position: 0 })).toBe(0);
  });

  test("a source's token past a fork point (bytes the fork does not have) is a 400", () => {
    const { c } = family();
    expect(() => resolvePosition(c, { incarnation: 1, position: 7 })).toThrow(BadRequestError);
    expect(() => resolvePosition(c, { incarnation: 2, position: 9 })).toThrow(BadRequestError);
  });

  test('past the durable tail is a 400; the zero token means the earliest position', () => {
    const { t, c } = family();
    expect(() => resolvePosition(c, { incarnation: 3, position: 12 })).toThrow(/beyond the tail/);
    t.apply({ t: 'append', inc: 3, data: bytes('more') }); // applied, not yet durable
    expect(() => resolvePosition(c, { incarnation: 3, position: 12 })).toThrow(BadRequestError);
    expect(resolvePosition(c, { incarnation: 0, position: 0 })).toBe(0);
  });

  test('a token of an earlier incarnation of the path is 410; of an unrelated later stream, 400', () => {
    const t = new StreamTable(testClock());
    t.apply({ t: 'create', inc: 1, path: '/x', contentType: 'text/plain', closed: false, createdAtMs: 1 });
    t.apply({ t: 'delete', inc: 1 });
    const x = t.apply({ t: 'create', inc: 5, path: '/x', contentType: 'text/plain', closed: false, data: bytes('ab'), createdAtMs: 1 })!;
    t.markAllDurable();
    expect(() => resolvePosition(x, { incarnation: 1, position: 0 })).toThrow(GoneError);
    expect(() => resolvePosition(x, { incarnation: 9, position: 0 })).toThrow(/does not belong/);
  });
});

describe('earliestPosition under retention', () => {
  test("a fork starts where its source's retained bytes start, until it drops its own", () => {
    const { t, a, b, c } = family();
    expect(earliestPosition(c)).toBe(0);
    t.apply({ t: 'seal', inc: 1, segment: segment(0, 4), version: 1 });
    t.apply({ t: 'seal', inc: 1, segment: segment(4, 10), version: 2 });
    t.apply({ t: 'trim', inc: 1, retainedStart: 4, version: 3 });
    expect(earliestPosition(a)).toBe(4);
    expect(earliestPosition(c)).toBe(4);
    expect(() => resolvePosition(c, { incarnation: 1, position: 2 })).toThrow(GoneError);
    expect(resolvePosition(c, { incarnation: 0, position: 0 })).toBe(4);
    // The source dropping everything below its end cannot take the fork below its own base.
    t.apply({ t: 'trim', inc: 1, retainedStart: 10, version: 4 });
    expect(earliestPosition(b)).toBe(6);
    // The fork dropping its own bytes: its own retained start wins.
    t.apply({ t: 'seal', inc: 2, segment: segment(6, 9), version: 1 });
    t.apply({ t: 'trim', inc: 2, retainedStart: 9, version: 2 });
    expect(earliestPosition(b)).toBe(9);
    expect(earliestPosition(c)).toBe(8);
  });
});

describe('forkPosition', () => {
  test('default: the durable tail; an offset: its position; a sub-offset: bytes into the entry', async () => {
    const { t, a } = family();
    t.apply({ t: 'append', inc: 1, data: bytes('xyz') }); // entries [0, 10) and [10, 13)
    t.markAllDurable();
    expect(await forkPosition(a, undefined, 0, undefined)).toBe(13);
    expect(await forkPosition(a, { incarnation: 1, position: 10 }, 2, undefined)).toBe(12);
    expect(await forkPosition(a, { incarnation: 1, position: 10 }, 3, undefined)).toBe(13);
    await expect(forkPosition(a, { incarnation: 1, position: 10 }, 4, undefined)).rejects.toThrow(/past the next data boundary/);
    await expect(forkPosition(a, { incarnation: 1, position: 99 }, 0, undefined)).rejects.toThrow(BadRequestError);
  });

  test('JSON streams count the sub-offset in messages', async () => {
    const t = new StreamTable(testClock());
    const j = t.apply({ t: 'create', inc: 1, path: '/j', contentType: 'application/json', closed: false, data: bytes('1,{"k":"a,b"},3,'), createdAtMs: 1 })!;
    t.markAllDurable();
    expect(await forkPosition(j, { incarnation: 1, position: 0 }, 2, undefined)).toBe('1,{"k":"a,b"},'.length);
    await expect(forkPosition(j, { incarnation: 1, position: 0 }, 4, undefined)).rejects.toThrow(BadRequestError);
  });

  test("in sealed data the sub-offset reads the rest of the owner's read unit", async () => {
    const { t, c } = family();
    t.apply({ t: 'seal', inc: 1, segment: segment(0, 10, 5), version: 1 });
    const asked: [string, number][] = [];
    const reader = async (owner: StreamState, position: number) => {
      asked.push([owner.path, position]);
      return bytes('0123456789').subarray(position, 5 * Math.ceil((position + 1) / 5));
    };
    expect(await forkPosition(c, { incarnation: 1, position: 2 }, 3, reader)).toBe(5);
    await expect(forkPosition(c, { incarnation: 1, position: 2 }, 4, reader)).rejects.toThrow(BadRequestError);
    expect(asked).toEqual([
      ['/a', 2],
      ['/a', 2],
    ]);
    await expect(forkPosition(c, { incarnation: 1, position: 2 }, 1, undefined)).rejects.toThrow(/no sealed-unit reader/);
  });
});
