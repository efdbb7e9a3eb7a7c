/**
 * Read-unit checksums (docs/storage-layout.md "Checksums"): the first 16 hex digits (64 bits) of
 * the SHA-256 of a unit's bytes. SHA-256 because node:crypto has it built in and hardware
 * accelerated (no package, no home-made CRC table) and it catches every kind of corruption a CRC
 * does; 64 bits of it per unit keep the manifest small while a random flip escaping detection
 * stays at 2^-64.
 */
import { createHash } from 'node:crypto';
import { CairnError } from '../protocol/error-table.ts';

/**
 * The checksum of `bytes` (16 lowercase hex digits); of their concatenation when given as parts
 * (hot-tail slices: hashing them in turn saves copying a unit into one buffer first).
 */
export function unitChecksum(bytes: Uint8Array | readonly Uint8Array[]): string {
  const hash = createHash('sha256');
  if (bytes instanceof Uint8Array) hash.update(bytes);
  else for (const part of bytes) hash.update(part);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Bytes read from the object store do not match their manifest checksum, or a manifest names an
 * object the store no longer holds (a fork's source). Never served; 503 (STORED_DATA_CORRUPT).
 */
export class StoredDataCorruptError extends CairnError {
  /** The object key at fault. */
  readonly key: string;
  constructor(key: string, message: string) {
    super('STORED_DATA_CORRUPT', message);
    this.key = key;
  }
}
