/**
 * The file-system calls of the filesystem object store (fs-store.ts), behind one small interface
 * so power-loss tests can run the store on a simulated page cache. `nodeStoreFs` is the real one:
 * node:fs/promises, whose functions already have these shapes.
 */
import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';

/** An open object or temporary file. */
export interface StoreFileHandle {
  stat(): Promise<{ size: number }>;
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  /** Writes `data` (parts: their concatenation, in order) to the new, empty file. */
  writeFile(data: Uint8Array | readonly Uint8Array[]): Promise<void>;
  /** fdatasync: the file's data and size, not its name. */
  datasync(): Promise<void>;
  /** fsync: for a directory, makes the entries in it durable. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

export interface StoreFs {
  /** `'r'` to read (also a directory, to fsync it); `'wx'` creates a new file, EEXIST if it exists. */
  open(path: string, flags: 'r' | 'wx'): Promise<StoreFileHandle>;
  stat(path: string): Promise<{ size: number }>;
  readdir(dir: string): Promise<string[]>;
  /**
   * Optional: true when nothing exists at `dir`, known at once (a synchronous stat, a few µs). A
   * LIST for a path the store has never seen (every stream create's lookup) then skips the
   * asynchronous readdir whose ENOENT costs ~40 µs of CPU. Absent: readdir decides.
   */
  missing?(dir: string): boolean;
  /** Creates `dir` and missing parents; resolves the first directory created, or undefined. */
  mkdir(dir: string, options: { recursive: true }): Promise<string | undefined>;
  link(existing: string, created: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(dir: string): Promise<void>;
}

export const nodeStoreFs: StoreFs = {
  open: (path, flags) => fsp.open(path, flags),
  stat: (path) => fsp.stat(path),
  readdir: (dir) => fsp.readdir(dir),
  missing: (dir) => !existsSync(dir),
  mkdir: (dir, options) => fsp.mkdir(dir, options),
  link: (existing, created) => fsp.link(existing, created),
  rename: (from, to) => fsp.rename(from, to),
  unlink: (path) => fsp.unlink(path),
  rmdir: (dir) => fsp.rmdir(dir),
};
