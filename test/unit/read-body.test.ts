import { describe, expect, test } from 'vitest';
import { streamBody, type BodyPiece, type LazyUnit } from '../../src/read-path/read-body.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';

function lazy(from: number, to: number): LazyUnit {
  return { owner: {} as StreamState, segment: { start: from, end: to, unitEnds: [to], sealedAtMs: 0 }, unitStart: from, unitEnd: to, from, to };
}

async function collect(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body) parts.push(part);
  return Buffer.concat(parts);
}

const DATA = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));

describe('streaming catch-up bodies', () => {
  test('lazy units are fetched only once the body is read, each once, in order; small pieces are joined', async () => {
    const pieces: BodyPiece[] = [DATA.subarray(0, 100), ...Array.from({ length: 9 }, (_, i) => lazy(100 + i * 100, 200 + i * 100))];
    const fetched: number[] = [];
    const fetch = async (unit: LazyUnit) => {
      fetched.push(unit.from);
      return DATA.subarray(unit.from, unit.to);
    };
    const body = streamBody(pieces, false, fetch)[Symbol.asyncIterator]();
    expect(fetched).toEqual([]); // nothing fetched before the body is read
    const out: Buffer[] = [];
    for (let next = await body.next(); !next.done; next = await body.next()) out.push(next.value);
    expect(Buffer.concat(out).equals(DATA)).toBe(true);
    expect(fetched).toEqual(Array.from({ length: 9 }, (_, i) => 100 + i * 100));
  });

  test('fetches stay one unit ahead of the consumer (bounded memory)', async () => {
    const unitBytes = 128 * 1024; // above the joining threshold: every unit is its own write
    const pieces: BodyPiece[] = Array.from({ length: 8 }, (_, i) => lazy(i * unitBytes, (i + 1) * unitBytes));
    let fetchedCount = 0;
    const fetch = async (unit: LazyUnit) => {
      fetchedCount++;
      return Buffer.alloc(unit.to - unit.from, unit.from / unitBytes);
    };
    const body = streamBody(pieces, false, fetch)[Symbol.asyncIterator]();
    for (let consumed = 1; consumed <= 8; consumed++) {
      const next = await body.next();
      expect(next.done).toBe(false);
      expect(next.value?.[0]).toBe(consumed - 1);
      expect(fetchedCount).toBeLessThanOrEqual(consumed + 1);
    }
    expect((await body.next()).done).toBe(true);
  });

  test('with aheadUnits, that many fetches are in flight while the current unit is written; order is kept', async () => {
    const unitBytes = 128 * 1024;
    const pieces: BodyPiece[] = [Buffer.alloc(unitBytes, 0), ...Array.from({ length: 9 }, (_, i) => lazy((i + 1) * unitBytes, (i + 2) * unitBytes))];
    const pending: Array<{ unit: LazyUnit; resolve: (bytes: Buffer) => void }> = [];
    const fetch = (unit: LazyUnit) => new Promise<Buffer>((resolve) => pending.push({ unit, resolve }));
    const body = streamBody(pieces, false, fetch, 3)[Symbol.asyncIterator]();
    expect((await body.next()).value?.[0]).toBe(0);
    expect(pending.map((p) => p.unit.from / unitBytes)).toEqual([1, 2, 3]); // three ahead of the first
    // Answer out of order: the body still comes out in order.
    const read: number[] = [];
    for (let unit = 1; unit <= 9; unit++) {
      const next = body.next();
      for (const p of [...pending].reverse()) p.resolve(Buffer.alloc(unitBytes, p.unit.from / unitBytes));
      pending.length = 0;
      const value = (await next).value as Buffer;
      read.push(value[0]!);
      expect(pending.length).toBeLessThanOrEqual(3);
    }
    expect(read).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect((await body.next()).done).toBe(true);
  });

  test('JSON mode wraps stored messages as an array, across lazy units; empty is []', async () => {
    const stored = Buffer.from('{"a":1},{"b":2},[3],');
    const pieces: BodyPiece[] = [stored.subarray(0, 8), lazy(8, 16), lazy(16, stored.length)];
    const body = await collect(streamBody(pieces, true, async (unit) => stored.subarray(unit.from, unit.to)));
    expect(JSON.parse(body.toString())).toEqual([{ a: 1 }, { b: 2 }, [3]]);
    expect((await collect(streamBody([], true, async () => Buffer.alloc(0)))).toString()).toBe('[]');
  });

  test('a failed fetch of a later unit surfaces from the iterator', async () => {
    const pieces: BodyPiece[] = [Buffer.from('ab'), lazy(2, 4)];
    await expect(collect(streamBody(pieces, false, async () => Promise.reject(new Error('store down'))))).rejects.toThrow('store down');
  });
});
