/**
 * Appended bytes that recovery left in their WAL file instead of reading them into memory at
 * start (recovery.ts, `deferData`). Recovery checked the whole frame's checksum; `load()` reads the
 * bytes again and checks them against the same checksum, so a file damaged since is still caught.
 *
 * Why: holding 1 GiB of replayed appends means faulting in 1 GiB of fresh memory, which was most
 * of a restart's CPU (bench/README.md "recovery"); checking a file through one reused buffer and
 * reading each append when it is first served, sealed or checkpointed costs a copy from the page
 * cache instead. Replayed WAL files are never written again, and deleted only by a checkpoint,
 * whose snapshot loads every hot-tail entry first (src/stream/hot-tail.ts keeps what it loads).
 */
import { crc32 } from './crc32.ts';
import { WalCorruptError } from './errors.ts';

/** Reads `into.length` bytes of `path` from `positionBytes` into `into`; returns the bytes read. */
export type WalReadSync = (path: string, positionBytes: number, into: Buffer) => number;

export class WalFileBytes {
  /** Bytes, as of a Buffer. */
  readonly length: number;
  readonly #readSync: WalReadSync;
  readonly #path: string;
  readonly #positionBytes: number;
  readonly #headCrc: number;
  readonly #frameCrc: number;

  /**
   * @param positionBytes where the bytes start in the file at `path`.
   * @param headCrc crc32 of the frame's payload before these bytes; `frameCrc` = crc32(bytes, headCrc).
   */
  constructor(readSync: WalReadSync, path: string, positionBytes: number, length: number, headCrc: number, frameCrc: number) {
    this.#readSync = readSync;
    this.#path = path;
    this.#positionBytes = positionBytes;
    this.length = length;
    this.#headCrc = headCrc;
    this.#frameCrc = frameCrc;
  }

  /**
   * Reads the bytes (a new Buffer each call; the caller keeps it) synchronously.
   * @throws WalCorruptError if the file is shorter now or the bytes fail their checksum.
   * @throws the I/O error of the read.
   */
  load(): Buffer {
    const data = Buffer.allocUnsafeSlow(this.length);
    const readBytes = this.#readSync(this.#path, this.#positionBytes, data);
    if (readBytes !== this.length) {
      throw new WalCorruptError(this.#path, this.#positionBytes, `replayed append data of ${this.length} bytes: only ${readBytes} left in the file`);
    }
    const actual = crc32(data, this.#headCrc);
    if (actual !== this.#frameCrc) {
      throw new WalCorruptError(this.#path, this.#positionBytes, `replayed append data changed since recovery: crc32 ${actual} != frame ${this.#frameCrc}`);
    }
    return data;
  }
}
