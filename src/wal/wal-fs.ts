/**
 * The file-system operations the WAL uses, behind one small interface so fault tests can inject
 * failing writes, fsyncs or renames (STYLE.md: fault injection wraps an interface). `nodeWalFs`
 * is the real implementation.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** Linux's id of the current boot: a new value after every reboot (proc(5)). */
const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';

/** An open file the WAL writes sequentially (at the current position). */
export interface WalFileHandle {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  close(): Promise<void>;
}

export interface WalFs {
  /** Opens for writing: `'wx'` creates a new file and fails if it exists; `'w'` truncates. */
  openFile(path: string, flags: 'wx' | 'w'): Promise<WalFileHandle>;
  readFile(path: string): Promise<Buffer>;
  /** Size of a file, bytes. */
  fileBytes(path: string): Promise<number>;
  readdir(dir: string): Promise<string[]>;
  mkdir(dir: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Truncates `path` to `lengthBytes`; with `sync`, fsyncs it before returning. */
  truncateFile(path: string, lengthBytes: number, sync: boolean): Promise<void>;
  /** fsyncs a directory, making creates, renames and unlinks in it durable. */
  syncDir(dir: string): Promise<void>;
  /** fdatasyncs an existing file (its data and size; its name needs `syncDir` of its directory). */
  syncFile(path: string): Promise<void>;
  /**
   * The id of the running boot of this machine (changes on every reboot, i.e. whenever the page
   * cache was dropped), or `undefined` where the OS does not tell (not Linux).
   */
  bootId(): Promise<string | undefined>;
  /**
   * Optional: reads `into.length` bytes of `path` from `positionBytes` into `into`, synchronously
   * (an open, reads, a close). Returns the bytes read: fewer only at the end of the file. Recovery
   * uses it to check WAL files through one reused buffer and to read replayed append data back
   * later, when it is first needed (recovery.ts `deferData`); without it everything is read at start.
   * @throws the I/O error.
   */
  readSync?(path: string, positionBytes: number, into: Buffer): number;
}

export const nodeWalFs: WalFs = {
  openFile: (path, flags) => fsp.open(path, flags),
  readFile: (path) => fsp.readFile(path),
  fileBytes: async (path) => (await fsp.stat(path)).size,
  readdir: (dir) => fsp.readdir(dir),
  mkdir: async (dir) => {
    await fsp.mkdir(dir, { recursive: true });
  },
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  async truncateFile(path, lengthBytes, sync) {
    const fh = await fsp.open(path, 'r+');
    try {
      await fh.truncate(lengthBytes);
      if (sync) await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async syncDir(dir) {
    const fh = await fsp.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  },
  async syncFile(path) {
    const fh = await fsp.open(path, 'r');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  },
  async bootId() {
    try {
      return (await fsp.readFile(BOOT_ID_PATH, 'utf8')).trim() || undefined;
    } catch {
      return undefined;
    }
  },
  readSync(path, positionBytes, into) {
    const fd = openSync(path, 'r');
    try {
      let readBytes = 0;
      while (readBytes < into.length) {
        const n = readSync(fd, into, readBytes, into.length - readBytes, positionBytes + readBytes);
        if (n === 0) break;
        readBytes += n;
      }
      return readBytes;
    } finally {
      closeSync(fd);
    }
  },
};

/**
 * Writes all of `buffers` (totalling `totalBytes`) at the file's current position with as few
 * `writev` calls as the OS allows: one, unless it reports a short write, after which the rest
 * is written from where it stopped.
 */
export async function writeFully(fh: WalFileHandle, buffers: Buffer[], totalBytes: number): Promise<void> {
  let remaining = buffers;
  let remainingBytes = totalBytes;
  for (;;) {
    const { bytesWritten } = await fh.writev(remaining);
    if (bytesWritten === remainingBytes) return;
    if (!(bytesWritten > 0 && bytesWritten < remainingBytes)) {
      throw new Error(`writev wrote ${bytesWritten} of ${remainingBytes} bytes`);
    }
    remainingBytes -= bytesWritten;
    let skipBytes = bytesWritten;
    let i = 0;
    while (skipBytes >= remaining[i]!.length) {
      skipBytes -= remaining[i]!.length;
      i++;
    }
    remaining = remaining.slice(i);
    remaining[0] = remaining[0]!.subarray(skipBytes);
  }
}
