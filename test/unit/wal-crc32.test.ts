import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/wal/crc32.ts';

describe('WAL crc32', () => {
  it('equals zlib.crc32, alone and continued, so existing WAL files stay valid', () => {
    for (const length of [0, 1, 7, 64, 1000, 65536 + 13]) {
      const data = randomBytes(length);
      expect(crc32(data)).toBe(zlibCrc32(data));
      const cut = length >> 1;
      expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(zlibCrc32(data));
    }
    expect(crc32(new Uint8Array([104, 101, 108, 108, 111]))).toBe(zlibCrc32('hello'));
  });
});
