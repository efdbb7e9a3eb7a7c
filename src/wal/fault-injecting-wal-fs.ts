/**
 * A `WalFs` decorator for fault and crash tests: before every operation it calls `hook(op,
 * path)`. The hook may throw (the operation fails with that error and is not performed),
 * return a promise (the operation waits for it: to hold a write in flight, or to model a crash
 * by never resolving), or return nothing (the operation proceeds; use it to count calls).
 */
import type { WalFileHandle, WalFs } from './wal-fs.ts';

export type WalFsOperation =
  | 'openFile'
  | 'readFile'
  | 'fileBytes'
  | 'readdir'
  | 'mkdir'
  | 'rename'
  | 'unlink'
  | 'truncateFile'
  | 'syncDir'
  | 'syncFile'
  | 'writev'
  | 'datasync'
  | 'close';

export type WalFsHook = (op: WalFsOperation, path: string) => void | Promise<void>;

export function faultInjectingWalFs(inner: WalFs, hook: WalFsHook): WalFs {
  const wrapHandle = (path: string, fh: WalFileHandle): WalFileHandle => ({
    async writev(buffers) {
      await hook('writev', path);
      return fh.writev(buffers);
    },
    async datasync() {
      await hook('datasync', path);
      return fh.datasync();
    },
    async close() {
      await hook('close', path);
      return fh.close();
    },
  });
  return {
    async openFile(path, flags) {
      await hook('openFile', path);
      return wrapHandle(path, await inner.openFile(path, flags));
    },
    async readFile(path) {
      await hook('readFile', path);
      return inner.readFile(path);
    },
    async fileBytes(path) {
      await hook('fileBytes', path);
      return inner.fileBytes(path);
    },
    async readdir(dir) {
      await hook('readdir', dir);
      return inner.readdir(dir);
    },
    async mkdir(dir) {
      await hook('mkdir', dir);
      return inner.mkdir(dir);
    },
    async rename(from, to) {
      await hook('rename', from);
      return inner.rename(from, to);
    },
    async unlink(path) {
      await hook('unlink', path);
      return inner.unlink(path);
    },
    async truncateFile(path, lengthBytes, sync) {
      await hook('truncateFile', path);
      return inner.truncateFile(path, lengthBytes, sync);
    },
    async syncDir(dir) {
      await hook('syncDir', dir);
      return inner.syncDir(dir);
    },
    async syncFile(path) {
      await hook('syncFile', path);
      return inner.syncFile(path);
    },
    // Not a disk operation: never failed or delayed.
    bootId: () => inner.bootId(),
  };
}
