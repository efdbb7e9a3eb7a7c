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
