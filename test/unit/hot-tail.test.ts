import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { HotTail } from '../../src/stream/hot-tail.ts';

describe('hot tail', () => {
  test('reads any range byte-exact, cut at maxBytes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { minLength: 1, maxLength: 30 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 1, max: 200 }),
        (chunks, a, b, maxBytes) => {
          const tail = new HotTail(100);
          for (const chunk of chunks) tail.append(Buffer.from(chunk));
          const all = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
          const from = 100 + (a % (all.length + 1));
          const to = from + (b % (100 + all.length - from + 1));
          const { parts, end } = tail.read(from, to, maxBytes, false);
          const got = Buffer.concat(parts);
          expect(end - from).toBe(Math.min(maxBytes, to - from));
          expect(got.equals(all.subarray(from - 100, end - 100))).toBe(true);
        },
      ),
    );
  });

  test('whole-entry mode never splits an entry but always returns one', () => {
    const tail = new HotTail(0);
    tail.append(Buffer.from('aaaa'));
    tail.append(Buffer.from('bbbbbb'));
    expect(tail.read(0, 10, 5, true).end).toBe(4);
    expect(tail.read(0, 10, 2, true).end).toBe(4);
    expect(tail.read(4, 10, 2, true).end).toBe(10);
    expect(tail.read(0, 10, 100, true).end).toBe(10);
  });
});

describe('hot tail dropBefore', () => {
  /** A tail at 10 holding 'aaaa' [10, 14), 'bbbb' [14, 18), 'cccc' [18, 22). */
  function threeEntries(): { tail: HotTail; chunks: Buffer[] } {
    const chunks = [Buffer.from('aaaa'), Buffer.from('bbbb'), Buffer.from('cccc')];
    const tail = new HotTail(10);
    for (const chunk of chunks) tail.append(chunk);
    return { tail, chunks };
  }

  function text(tail: HotTail, from: number, to: number): string {
    return Buffer.concat(tail.read(from, to, Number.MAX_SAFE_INTEGER, false).parts).toString();
  }

  function layout(tail: HotTail): [number, string][] {
    return tail.entries().map((entry) => [entry.start, entry.data.toString()]);
  }

  test('drops whole entries below an entry boundary', () => {
    const { tail } = threeEntries();
    tail.dropBefore(18);
    expect(tail.startPosition).toBe(18);
    expect(tail.endPosition).toBe(22);
    expect(tail.sizeBytes).toBe(4);
    expect(layout(tail)).toEqual([[18, 'cccc']]);
    expect(text(tail, 18, 22)).toBe('cccc');
  });

  test('dropping at the start is a no-op', () => {
    const { tail } = threeEntries();
    tail.dropBefore(10);
    expect(tail.startPosition).toBe(10);
    expect(layout(tail)).toEqual([
      [10, 'aaaa'],
      [14, 'bbbb'],
      [18, 'cccc'],
    ]);
  });

  test('dropping everything leaves an empty tail at the end; appends continue from there', () => {
    const { tail } = threeEntries();
    tail.dropBefore(22);
    expect(tail.startPosition).toBe(22);
    expect(tail.endPosition).toBe(22);
    expect(tail.entries()).toHaveLength(0);
    expect(tail.append(Buffer.from('dd'))).toBe(24);
    expect(layout(tail)).toEqual([[22, 'dd']]);
    expect(text(tail, 22, 24)).toBe('dd');
  });

  test('cutting inside an entry keeps its rest at its own positions', () => {
    const { tail, chunks } = threeEntries();
    tail.dropBefore(15);
    expect(tail.startPosition).toBe(15);
    expect(tail.endPosition).toBe(22);
    expect(tail.sizeBytes).toBe(7);
    expect(layout(tail)).toEqual([
      [15, 'bbb'],
      [18, 'cccc'],
    ]);
    expect(text(tail, 15, 22)).toBe('bbbcccc');
    expect(text(tail, 16, 19)).toBe('bbc');
    expect(tail.read(15, 22, 2, false)).toMatchObject({ end: 17 });
    // The rest counts as one entry for whole-entry reads.
    expect(tail.read(15, 22, 3, true).end).toBe(18);
    expect(tail.read(15, 22, 1, true).end).toBe(18);
    // The rest is a copy: the sealed part's buffer can be released (and is no longer read).
    chunks[1].fill('x');
    expect(text(tail, 15, 18)).toBe('bbb');
    // Whole entries kept are not copied (one Buffer per append, never copied).
    expect(tail.entries()[1].data).toBe(chunks[2]);
  });

  test('successive cuts inside the same entry', () => {
    const { tail } = threeEntries();
    tail.dropBefore(11);
    tail.dropBefore(13);
    expect(layout(tail)).toEqual([
      [13, 'a'],
      [14, 'bbbb'],
      [18, 'cccc'],
    ]);
    expect(text(tail, 13, 22)).toBe('abbbbcccc');
  });

  test('an empty tail may be moved forward (restoring a sealed stream)', () => {
    const tail = new HotTail(0);
    tail.dropBefore(100);
    expect(tail.startPosition).toBe(100);
    expect(tail.endPosition).toBe(100);
    expect(tail.append(Buffer.from('abc'))).toBe(103);
    expect(text(tail, 100, 103)).toBe('abc');

    const drained = threeEntries().tail;
    drained.dropBefore(22);
    drained.dropBefore(50);
    expect(drained.startPosition).toBe(50);
    expect(drained.endPosition).toBe(50);
    drained.dropBefore(50); // staying put is fine too
    expect(drained.startPosition).toBe(50);
  });

  test('RangeError outside the held range', () => {
    const { tail } = threeEntries();
    expect(() => tail.dropBefore(9)).toThrow(RangeError);
    expect(() => tail.dropBefore(23)).toThrow(RangeError);
    tail.dropBefore(15);
    expect(() => tail.dropBefore(14)).toThrow(RangeError);
    // A refused drop changes nothing.
    expect(tail.startPosition).toBe(15);
    expect(text(tail, 15, 22)).toBe('bbbcccc');
    // Reads below the new start are refused as well.
    expect(() => tail.read(14, 22, 100, false)).toThrow(RangeError);

    const empty = new HotTail(100);
    expect(() => empty.dropBefore(99)).toThrow(RangeError);
  });

  test('property: after any drops, the rest reads byte-exact and entries tile [start, end)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.nat(),
        (chunks, drops, a, b) => {
          const base = 1000;
          const tail = new HotTail(base);
          for (const chunk of chunks) tail.append(Buffer.from(chunk));
          const all = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk)));
          const end = base + all.length;
          let start = base;
          for (const pick of [...drops].sort((x, y) => x - y)) {
            const position = start + (pick % (end - start + 1));
            tail.dropBefore(position);
            start = position;
            expect(tail.startPosition).toBe(start);
            expect(tail.endPosition).toBe(end);
          }
          let at = start;
          for (const entry of tail.entries()) {
            expect(entry.start).toBe(at);
            expect(entry.data.length).toBeGreaterThan(0);
            at += entry.data.length;
          }
          expect(at).toBe(end);
          const from = start + (a % (end - start + 1));
          const to = from + (b % (end - from + 1));
          const { parts, end: readEnd } = tail.read(from, to, Number.MAX_SAFE_INTEGER, false);
          expect(readEnd).toBe(to);
          expect(Buffer.concat(parts).equals(all.subarray(from - base, to - base))).toBe(true);
        },
      ),
    );
  });

  test('deferred entries: length without loading, loaded once when first read, cut or checkpointed', () => {
    const loads: string[] = [];
    const deferred = (text: string) => ({
      length: text.length,
      load: () => {
        loads.push(text);
        return Buffer.from(text);
      },
    });
    const tail = new HotTail(0);
    tail.append(deferred('abcd'));
    tail.append(Buffer.from('ef'));
    tail.append(deferred('ghij'));
    tail.append(deferred('kl'));
    expect(tail.endPosition).toBe(12);
    expect(tail.entries().map((e) => [e.start, e.data.length])).toEqual([[0, 4], [4, 2], [6, 4], [10, 2]]);
    expect(loads).toEqual([]);
    expect(Buffer.concat(tail.read(1, 5, 100, false).parts).toString()).toBe('bcde');
    expect(Buffer.concat(tail.read(0, 6, 100, false).parts).toString()).toBe('abcdef');
    expect(loads).toEqual(['abcd']);
    tail.dropBefore(7);
    expect(loads).toEqual(['abcd', 'ghij']);
    expect(tail.loadedEntries().map(String)).toEqual(['hij', 'kl']);
    expect(loads).toEqual(['abcd', 'ghij', 'kl']);
    expect(Buffer.concat(tail.read(7, 12, 100, false).parts).toString()).toBe('hijkl');
    expect(loads).toHaveLength(3);
  });
});
