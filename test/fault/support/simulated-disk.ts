/**
 * A simulated machine with a page cache, for power-loss tests: it implements the WAL's `WalFs`
 * and the filesystem store's `StoreFs` in memory and keeps, apart from what processes see (the
 * cache), what is durable, by POSIX's rules:
 *   - `fdatasync` (and `fsync`) of a file makes its data and size durable, not its name;
 *   - `fsync` of a directory makes its entries (creates, links, renames, unlinks, mkdirs) durable;
 *   - everything else changes only the cache.
 * `powerLoss()` returns the machine as it boots afterwards: only durable entries, reachable from
 * the root through durable entries, each file with its durable data plus, optionally, a prefix
 * of its unsynced writes (disks may persist some of them, in order). A new boot id.
 * `killProcess()` models `kill -9`: the process's pending and later calls never return; the
 * cache is kept. `failNextSync` models Linux after a failed writeback: the sync throws EIO and
 * the pages count as clean although they never reached the disk, so later syncs "succeed".
 */
import path from 'node:path';
import type { RandomSource } from '../../../src/clock.ts';
import type { StoreFileHandle, StoreFs } from '../../../src/object-store/store-fs.ts';
import type { WalFileHandle, WalFs } from '../../../src/wal/wal-fs.ts';

type PendingWrite = { offsetBytes: number; bytes: Buffer } | { truncateBytes: number };

interface FileNode {
  kind: 'file';
  data: Buffer;
  durable: Buffer;
  /** Writes since the last sync, in order (lost on a power loss, or a prefix kept). */
  pending: PendingWrite[];
}

interface DirNode {
  kind: 'dir';
  entries: Map<string, Node>;
  durableEntries: Map<string, Node>;
}

type Node = FileNode | DirNode;

/** Called before every operation of a live process; may await (holds the operation). */
export type DiskHook = (operation: string, target: string) => void | Promise<void>;

function errno(code: string, operation: string, target: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${operation} '${target}' (simulated)`) as NodeJS.ErrnoException;
  error.code = code;
  return error;
}

function applyWrite(data: Buffer, write: PendingWrite): Buffer {
  if ('truncateBytes' in write) {
    if (write.truncateBytes <= data.length) return Buffer.from(data.subarray(0, write.truncateBytes));
    return Buffer.concat([data, Buffer.alloc(write.truncateBytes - data.length)]);
  }
  const end = write.offsetBytes + write.bytes.length;
  const out = Buffer.alloc(Math.max(data.length, end));
  data.copy(out);
  write.bytes.copy(out, write.offsetBytes);
  return out;
}

const never = new Promise<never>(() => {});

export class SimulatedMachine {
  readonly root: DirNode;
  readonly bootId: string;
  /** Operations performed so far by live processes (every one a possible cut point). */
  operationCount = 0;
  /** When > 0, the next sync of a file fails with EIO the Linux way (see the module doc). */
  failNextSync = 0;
  #process = 0;

  constructor(root?: DirNode, bootNumber = 1) {
    this.root = root ?? { kind: 'dir', entries: new Map(), durableEntries: new Map() };
    this.bootId = `boot-${bootNumber}`;
  }

  /** The machine after a power loss: see the module doc. `keepUnsynced` chooses kept prefixes. */
  powerLoss(random: RandomSource, keepUnsynced: boolean): SimulatedMachine {
    const copies = new Map<Node, Node>();
    const copy = (node: Node): Node => {
      const known = copies.get(node);
      if (known) return known;
      if (node.kind === 'file') {
        let data = node.durable;
        if (keepUnsynced && node.pending.length > 0) {
          const kept = Math.floor(random.next() * (node.pending.length + 1));
          for (const write of node.pending.slice(0, kept)) data = applyWrite(data, write);
        }
        const file: FileNode = { kind: 'file', data, durable: data, pending: [] };
        copies.set(node, file);
        return file;
      }
      const dir: DirNode = { kind: 'dir', entries: new Map(), durableEntries: new Map() };
      copies.set(node, dir);
      for (const [name, child] of node.durableEntries) {
        const c = copy(child);
        dir.entries.set(name, c);
        dir.durableEntries.set(name, c);
      }
      return dir;
    };
    return new SimulatedMachine(copy(this.root) as DirNode, Number(this.bootId.slice(5)) + 1);
  }

  /** Starts a process: its file-system views, and `kill()` (kill -9). */
  startProcess(hook?: DiskHook): SimulatedProcess {
    const id = ++this.#process;
    return new SimulatedProcess(this, () => this.#process === id, hook);
  }

  /** kill -9 of the running process: its calls never return from now on. */
  killProcess(): void {
    this.#process++;
  }

  lookup(target: string): Node | undefined {
    let node: Node = this.root;
    for (const name of path.resolve(target).split('/').filter(Boolean)) {
      if (node.kind !== 'dir') return undefined;
      const child = node.entries.get(name);
      if (!child) return undefined;
      node = child;
    }
    return node;
  }

  parentOf(target: string, operation: string): { dir: DirNode; name: string } {
    const resolved = path.resolve(target);
    const dir = this.lookup(path.dirname(resolved));
    if (!dir) throw errno('ENOENT', operation, target);
    if (dir.kind !== 'dir') throw errno('ENOTDIR', operation, target);
    return { dir, name: path.basename(resolved) };
  }

  file(target: string, operation: string): FileNode {
    const node = this.lookup(target);
    if (!node) throw errno('ENOENT', operation, target);
    if (node.kind !== 'file') throw errno('EISDIR', operation, target);
    return node;
  }

  dir(target: string, operation: string): DirNode {
    const node = this.lookup(target);
    if (!node) throw errno('ENOENT', operation, target);
    if (node.kind !== 'dir') throw errno('ENOTDIR', operation, target);
    return node;
  }

  sync(node: Node, target: string): void {
    if (node.kind === 'dir') {
      node.durableEntries = new Map(node.entries);
      return;
    }
    if (this.failNextSync > 0) {
      this.failNextSync--;
      node.pending = []; // marked clean, never written
      throw errno('EIO', 'fsync', target);
    }
    node.durable = node.data;
    node.pending = [];
  }

  write(node: FileNode, write: PendingWrite): void {
    node.data = applyWrite(node.data, write);
    node.pending.push('truncateBytes' in write ? write : { offsetBytes: write.offsetBytes, bytes: Buffer.from(write.bytes) });
  }

  createFile(target: string, exclusive: boolean, operation: string): FileNode {
    const { dir, name } = this.parentOf(target, operation);
    const existing = dir.entries.get(name);
    if (existing) {
      if (exclusive) throw errno('EEXIST', operation, target);
      if (existing.kind !== 'file') throw errno('EISDIR', operation, target);
      this.write(existing, { truncateBytes: 0 });
      return existing;
    }
    const file: FileNode = { kind: 'file', data: Buffer.alloc(0), durable: Buffer.alloc(0), pending: [] };
    dir.entries.set(name, file);
    return file;
  }

  mkdirs(target: string): string | undefined {
    let first: string | undefined;
    let current = '/';
    for (const name of path.resolve(target).split('/').filter(Boolean)) {
      const dir = this.dir(current, 'mkdir');
      current = path.join(current, name);
      const child = dir.entries.get(name);
      if (child) {
        if (child.kind !== 'dir') throw errno('ENOTDIR', 'mkdir', target);
        continue;
      }
      dir.entries.set(name, { kind: 'dir', entries: new Map(), durableEntries: new Map() });
      first ??= current;
    }
    return first;
  }
}

/** One process's views of the machine. */
export class SimulatedProcess {
  readonly walFs: WalFs;
  readonly storeFs: StoreFs;
  readonly #machine: SimulatedMachine;
  readonly #alive: () => boolean;
  readonly #hook: DiskHook | undefined;

  constructor(machine: SimulatedMachine, alive: () => boolean, hook: DiskHook | undefined) {
    this.#machine = machine;
    this.#alive = alive;
    this.#hook = hook;
    const m = machine;
    const op = this.#op.bind(this);
    const walHandle = (file: FileNode, target: string): WalFileHandle => {
      let positionBytes = 0;
      return {
        writev: (buffers) =>
          op('writev', target, () => {
            const bytes = Buffer.concat(buffers);
            m.write(file, { offsetBytes: positionBytes, bytes });
            positionBytes += bytes.length;
            return { bytesWritten: bytes.length };
          }),
        datasync: () => op('datasync', target, () => m.sync(file, target)),
        close: () => op('close', target, () => {}),
      };
    };
    this.walFs = {
      openFile: (target, flags) => op('openFile', target, () => walHandle(m.createFile(target, flags === 'wx', 'open'), target)),
      readFile: (target) => op('readFile', target, () => Buffer.from(m.file(target, 'read').data)),
      fileBytes: (target) => op('fileBytes', target, () => m.file(target, 'stat').data.length),
      readdir: (target) => op('readdir', target, () => [...m.dir(target, 'readdir').entries.keys()].sort()),
      mkdir: (target) => op('mkdir', target, () => void m.mkdirs(target)),
      rename: (from, to) => op('rename', from, () => this.#rename(from, to)),
      unlink: (target) => op('unlink', target, () => this.#unlink(target)),
      truncateFile: (target, lengthBytes, sync) =>
        op('truncateFile', target, () => {
          const file = m.file(target, 'truncate');
          m.write(file, { truncateBytes: lengthBytes });
          if (sync) m.sync(file, target);
        }),
      syncDir: (target) => op('syncDir', target, () => m.sync(m.dir(target, 'fsync'), target)),
      syncFile: (target) => op('syncFile', target, () => m.sync(m.file(target, 'fsync'), target)),
      bootId: async () => m.bootId,
    };
    const storeHandle = (node: Node, target: string): StoreFileHandle => ({
      stat: () => op('fstat', target, () => ({ size: node.kind === 'file' ? node.data.length : 0 })),
      read: (buffer, offset, length, position) =>
        op('read', target, () => {
          if (node.kind !== 'file') throw errno('EISDIR', 'read', target);
          const slice = node.data.subarray(position, position + length);
          buffer.set(slice, offset);
          return { bytesRead: slice.length };
        }),
      writeFile: (data) =>
        op('write', target, () => {
          if (node.kind !== 'file') throw errno('EISDIR', 'write', target);
          m.write(node, { offsetBytes: 0, bytes: data instanceof Uint8Array ? Buffer.from(data) : Buffer.concat(data) });
        }),
      datasync: () => op('fdatasync', target, () => m.sync(node, target)),
      sync: () => op('fsync', target, () => m.sync(node, target)),
      close: () => op('close', target, () => {}),
    });
    this.storeFs = {
      open: (target, flags) =>
        op('open', target, () => {
          if (flags === 'wx') return storeHandle(m.createFile(target, true, 'open'), target);
          const node = m.lookup(target);
          if (!node) throw errno('ENOENT', 'open', target);
          return storeHandle(node, target);
        }),
      stat: (target) => op('stat', target, () => ({ size: m.file(target, 'stat').data.length })),
      readdir: (target) => op('readdir', target, () => [...m.dir(target, 'readdir').entries.keys()].sort()),
      mkdir: (target) => op('mkdir', target, () => m.mkdirs(target)),
      link: (existing, created) =>
        op('link', created, () => {
          const file = m.file(existing, 'link');
          const { dir, name } = m.parentOf(created, 'link');
          if (dir.entries.has(name)) throw errno('EEXIST', 'link', created);
          dir.entries.set(name, file);
        }),
      rename: (from, to) => op('rename', from, () => this.#rename(from, to)),
      unlink: (target) => op('unlink', target, () => this.#unlink(target)),
      rmdir: (target) =>
        op('rmdir', target, () => {
          const node = m.dir(target, 'rmdir');
          if (node.entries.size > 0) throw errno('ENOTEMPTY', 'rmdir', target);
          const { dir, name } = m.parentOf(target, 'rmdir');
          dir.entries.delete(name);
        }),
    };
  }

  #rename(from: string, to: string): void {
    const m = this.#machine;
    const source = m.parentOf(from, 'rename');
    const node = source.dir.entries.get(source.name);
    if (!node) throw errno('ENOENT', 'rename', from);
    const target = m.parentOf(to, 'rename');
    source.dir.entries.delete(source.name);
    target.dir.entries.set(target.name, node);
  }

  #unlink(target: string): void {
    const { dir, name } = this.#machine.parentOf(target, 'unlink');
    const node = dir.entries.get(name);
    if (!node) throw errno('ENOENT', 'unlink', target);
    if (node.kind === 'dir') throw errno('EISDIR', 'unlink', target);
    dir.entries.delete(name);
  }

  /** Runs one operation: dead processes hang; the hook runs first; the effect is atomic. */
  async #op<T>(operation: string, target: string, effect: () => T): Promise<T> {
    if (!this.#alive()) return never;
    this.#machine.operationCount++;
    await this.#hook?.(operation, target);
    if (!this.#alive()) return never;
    return effect();
  }
}
