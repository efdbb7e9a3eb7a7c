/**
 * crc32 (IEEE 802.3, the polynomial of zlib's `crc32`) of WAL frames and checkpoints.
 *
 * `@node-rs/crc32` computes it with the CPU's carry-less multiply (PCLMULQDQ / PMULL): about
 * 2-3x faster than `zlib.crc32` here (bench/README.md "recovery"), which matters because every
 * appended byte is checksummed once when written and once when replayed at restart. Both give the
 * same value, so files written with either stay valid; where the native package cannot load
 * (a platform without a prebuilt binary) `zlib.crc32` is used.
 */
import { createRequire } from 'node:module';
import { crc32 as zlibCrc32 } from 'node:zlib';

/** crc32 of `data`, continuing from the crc32 `initial` of the bytes before it (default 0). */
export type Crc32 = (data: Uint8Array, initial?: number) => number;

function loadCrc32(): Crc32 {
  try {
    return (createRequire(import.meta.url)('@node-rs/crc32') as { crc32: Crc32 }).crc32;
  } catch {
    return zlibCrc32;
  }
}

export const crc32: Crc32 = loadCrc32();
