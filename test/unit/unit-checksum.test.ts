import { describe, expect, it } from 'vitest';
import { unitChecksum } from '../../src/manifest/unit-checksum.ts';

describe('unitChecksum', () => {
  it('is the first 16 hex digits of the SHA-256 of the bytes', () => {
    // SHA-256('abc') = ba7816bf8f01cfea 414140de5dae2223 …
    expect(unitChecksum(Buffer.from('abc'))).toBe('ba7816bf8f01cfea');
  });

  it('of parts equals that of their concatenation, wherever the cuts are', () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) & 0xff));
    const whole = unitChecksum(bytes);
    for (const cuts of [[], [1], [500], [0, 999], [3, 3, 700], [999]]) {
      const parts: Buffer[] = [];
      let at = 0;
      for (const cut of [...cuts, bytes.length]) {
        parts.push(bytes.subarray(at, cut));
        at = cut;
      }
      expect(unitChecksum(parts)).toBe(whole);
    }
    expect(unitChecksum([])).toBe(unitChecksum(Buffer.alloc(0)));
  });
});
