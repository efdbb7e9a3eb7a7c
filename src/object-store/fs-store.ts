/**
 * The embedded default `ObjectStore`: objects are files under one root directory (by default
 * `<data-dir>/objects`), so sealing, manifests and cold reads run the same code as on S3.
 *
 * Layout. Each '/'-separated key component becomes one path component, percent-encoded (every
 * byte outside `[A-Za-z0-9_.-]`, and a leading '.', becomes `%XX`). An object is a file named
 * by its last component; every directory name gets a `~` suffix. So key `a` (file `a`) and key
 * `a/b` (directory `a~`, file `b`) never collide, and names starting with '.' are free for
 * temporary files. Example: `ab/stream-1/3/0000-0100.seg` → `ab~/stream-1~/3~/0000-0100.seg`.
 *
 * Durability and atomicity. A put writes a temporary file in `<root>/.tmp/`, fsyncs it, then
 * publishes it with `link()` (create-if-absent: fails with EEXIST, never replaces) or `rename()`
 * (overwrite), then fsyncs the target directory, and the parent of every directory on the way
 * from the data directory down that this process has not yet seen durable (whoever created it:
 * of two racing creators the loser must not answer before the winner's fsync). A reader
 * therefore sees either no object or the whole object, also after a crash or a power loss. A
 * create-if-absent put that meets an existing object (EEXIST) fsyncs that object and its
 * directories before answering `ObjectAlreadyExistsError`: its writer may have died before its
 * own fsyncs, and the caller may adopt the object as stored (retrying-store.ts, the sealer).
 * A crash can leave a temporary file behind; it is never listed or read, and the first put of a
 * later process removes the temporary files of other processes.
 *
 * A failed fsync is not retryable (`ObjectStoreRequestError`, storeCode `FSYNC_FAILED`): Linux
 * marks the pages clean after a failed writeback, so a retry's fsync would report success for
 * data that is not on disk. For the same reason every later put and delete of this store
 * instance fails too, until the process restarts (docs/reliability.md).
 *
 * Hard links are required for create-if-absent: on a filesystem without them the put fails
 * (`ObjectStoreRequestError`, e.g. EPERM), which the startup overwrite check reports.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  assertValidByteRange,
  assertValidObjectKey,
  listLimit,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectRangeNotSatisfiableError,
  ObjectStoreError,
  ObjectStoreRequestError,
  ObjectStoreUnavailableError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';
import { decodeComponent, DIRECTORY_SUFFIX, encodeComponent, walk } from './fs-store-layout.ts';
import { nodeStoreFs, type StoreFileHandle, type StoreFs } from './store-fs.ts';

export { decodeComponent, encodeComponent };

export interface FsObjectStoreOptions {
  /** Directory holding the objects; created on the first put. */
  rootDir: string;
  /** File-system calls (power-loss tests pass a simulated page cache). Default: node:fs. */
  fs?: StoreFs;
}

/** Longest file name most Linux filesystems accept, in bytes. */
const FILE_NAME_BYTES_MAX = 255;
const TEMP_PREFIX = '.tmp-';
/** Directory of temporary files, under the root; a leading '.' cannot come from a key. */
const TEMP_DIR = '.tmp';
/**
 * A put whose directory vanishes under it (a concurrent delete pruned it while empty) starts
 * again; more than a few such races in a row would mean something else is removing files.
 */
const PUT_DIRECTORY_RACE_ATTEMPTS_MAX = 5;
/**
 * Directories remembered as durable (their entry in the parent fsynced by this process). One per
 * stream incarnation or so; past the bound the memo starts again, which costs a few fsyncs.
 */
const DURABLE_DIRS_MAX = 65_536;

/** errno codes that describe a transient condition: the same operation may succeed later. */
const TRANSIENT_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'ETIMEDOUT', 'EINTR']);

export class FsObjectStore implements ObjectStore {
  readonly description: string;
  readonly rootDir: string;
  readonly #fs: StoreFs;
  #tempCounter = 0;
  #tempDirReady: Promise<string> | undefined;
  /** Directories whose entry in their parent this process made durable (see the module doc). */
  readonly #durableDirs = new Set<string>();
  /** The first fsync failure: every later write fails with it (see the module doc). */
  #syncFailure: FsyncFailure | undefined;

  constructor(options: FsObjectStoreOptions) {
    this.rootDir = path.resolve(options.rootDir);
    this.description = `filesystem ${this.rootDir}`;
    this.#fs = options.fs ?? nodeStoreFs;
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#put(key, body, options);
  }

  /** `put` of the parts' concatenation, written from the parts themselves (no joined copy). */
  putParts(key: string, parts: readonly Uint8Array[], options?: PutOptions): Promise<void> {
    return this.#put(key, parts, options);
  }

  async #put(key: string, body: ObjectBody, options: PutOptions = {}): Promise<void> {
    assertValidObjectKey('put', key);
    const { dir, file } = this.#pathOf('put', key);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#putOnce(key, dir, file, body, options.overwrite ?? false);
        return;
      } catch (error) {
        if (errnoOf(error) === 'ENOENT' && attempt < PUT_DIRECTORY_RACE_ATTEMPTS_MAX) continue;
        throw toStoreError('put', key, error);
      }
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidObjectKey('get', key);
    if (range) assertValidByteRange(range);
    const { file } = this.#pathOf('get', key);
    let handle: StoreFileHandle;
    try {
      handle = await this.#fs.open(file, 'r');
    } catch (error) {
      throw toStoreError('get', key, error);
    }
    try {
      const sizeBytes = (await handle.stat()).size;
      const startByte = range?.startByte ?? 0;
      const endByte = Math.min(range?.endByte ?? sizeBytes, sizeBytes);
      if (range && startByte >= sizeBytes) throw new ObjectRangeNotSatisfiableError(key, range);
      const body = new Uint8Array(endByte - startByte);
      let filledBytes = 0;
      while (filledBytes < body.length) {
        const { bytesRead } = await handle.read(body, filledBytes, body.length - filledBytes, startByte + filledBytes);
        // Objects are immutable once published, so a short file means outside interference.
        if (bytesRead === 0) throw new ObjectStoreUnavailableError('get', key, `object file shrank while reading: ${file}`);
        filledBytes += bytesRead;
      }
      return { body, sizeBytes };
    } catch (error) {
      throw toStoreError('get', key, error);
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo> {
    assertValidObjectKey('head', key);
    const { file } = this.#pathOf('head', key);
    try {
      return { key, sizeBytes: (await this.#fs.stat(file)).size };
    } catch (error) {
      throw toStoreError('head', key, error);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = listLimit(options);
    const { prefix, startAfter } = options;
    // Start in the deepest directory the prefix names whole: for `a/b/c`, the directory of `a/b/`.
    const slash = prefix.lastIndexOf('/');
    const dirKeyPrefix = slash < 0 ? '' : prefix.slice(0, slash + 1);
    let dir = this.rootDir;
    if (dirKeyPrefix !== '') {
      const components = dirKeyPrefix.slice(0, -1).split('/');
      if (components.some((c) => c === '' || c === '.' || c === '..')) return { objects: [] }; // no valid key has it
      const encoded = components.map(encodeComponent);
      if (encoded.some((name) => name.length + DIRECTORY_SUFFIX.length > FILE_NAME_BYTES_MAX)) return { objects: [] };
      dir = path.join(this.rootDir, ...encoded.map((name) => name + DIRECTORY_SUFFIX));
    }
    const objects: ObjectInfo[] = [];
    try {
      for await (const { key, file } of walk(this.#fs, dir, dirKeyPrefix, prefix, startAfter)) {
        if (objects.length === limit) return { objects, nextStartAfter: objects[objects.length - 1]!.key };
        try {
          objects.push({ key, sizeBytes: (await this.#fs.stat(file)).size });
        } catch (error) {
          if (errnoOf(error) !== 'ENOENT') throw error; // deleted since readdir: not listed
        }
      }
    } catch (error) {
      throw toStoreError('list', prefix, error);
    }
    return { objects };
  }

  async delete(key: string): Promise<void> {
    assertValidObjectKey('delete', key);
    try {
      await this.#deleteOne(key);
    } catch (error) {
      throw toStoreError('delete', key, error);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertValidObjectKey('deleteMany', key);
    for (const key of keys) {
      try {
        await this.#deleteOne(key);
      } catch (error) {
        throw toStoreError('deleteMany', key, error);
      }
    }
  }

  async close(): Promise<void> {}

  async #putOnce(key: string, dir: string, file: string, body: ObjectBody, overwrite: boolean): Promise<void> {
    if (this.#syncFailure) throw this.#syncFailure;
    const fs = this.#fs;
    const tempDir = await (this.#tempDirReady ??= this.#prepareTempDir());
    await fs.mkdir(dir, { recursive: true });
    const temp = path.join(tempDir, `${TEMP_PREFIX}${process.pid}-${++this.#tempCounter}-${randomBytes(6).toString('hex')}`);
    const handle = await fs.open(temp, 'wx');
    let published = false;
    try {
      try {
        await handle.writeFile(body);
        await this.#synced(temp, () => handle.datasync());
      } finally {
        await handle.close();
      }
      if (overwrite) {
        await fs.rename(temp, file);
        published = true;
      } else {
        try {
          await fs.link(temp, file);
          published = true;
        } catch (error) {
          if (errnoOf(error) !== 'EEXIST') throw error;
          // Its writer may have died before its fsyncs; the caller may adopt it as stored.
          await this.#syncFile(file);
          await this.#syncDirChain(dir);
          throw new ObjectAlreadyExistsError(key, { cause: error });
        }
      }
    } finally {
      if (!overwrite || !published) await fs.unlink(temp).catch(() => {});
    }
    await this.#syncDirChain(dir);
  }

  /** Makes the entries in `dir` durable, and the entry of every directory from the root down to it. */
  async #syncDirChain(dir: string): Promise<void> {
    await this.#syncDir(dir);
    const chain: string[] = [];
    for (let d = dir; d !== path.dirname(this.rootDir); d = path.dirname(d)) chain.push(d);
    for (const d of chain.reverse()) {
      if (this.#durableDirs.has(d)) continue;
      await this.#syncDir(path.dirname(d));
      if (this.#durableDirs.size >= DURABLE_DIRS_MAX) this.#durableDirs.clear();
      this.#durableDirs.add(d);
    }
  }

  async #syncDir(dir: string): Promise<void> {
    const handle = await this.#fs.open(dir, 'r');
    try {
      await this.#synced(dir, () => handle.sync());
    } finally {
      await handle.close();
    }
  }

  async #syncFile(file: string): Promise<void> {
    const handle = await this.#fs.open(file, 'r');
    try {
      await this.#synced(file, () => handle.datasync());
    } finally {
      await handle.close();
    }
  }

  /** Runs an fsync; a failure becomes the store's `#syncFailure` (see the module doc). */
  async #synced(target: string, sync: () => Promise<void>): Promise<void> {
    try {
      await sync();
    } catch (error) {
      this.#syncFailure ??= new FsyncFailure(target, error);
      throw this.#syncFailure;
    }
  }

  /** Creates `<root>/.tmp` and removes what interrupted puts of other processes left there. */
  async #prepareTempDir(): Promise<string> {
    const tempDir = path.join(this.rootDir, TEMP_DIR);
    await this.#fs.mkdir(tempDir, { recursive: true });
    await this.#syncDirChain(tempDir);
    const mine = `${TEMP_PREFIX}${process.pid}-`;
    for (const name of await this.#fs.readdir(tempDir)) {
      if (!name.startsWith(mine)) await this.#fs.unlink(path.join(tempDir, name)).catch(() => {});
    }
    return tempDir;
  }

  async #deleteOne(key: string): Promise<void> {
    if (this.#syncFailure) throw this.#syncFailure;
    const { dir, file } = this.#pathOf('delete', key);
    try {
      await this.#fs.unlink(file);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return;
      throw error;
    }
    await this.#syncDir(dir);
    // Prune directories left empty, so deleted streams leave no trace; stop at the first that is not.
    for (let d = dir; d !== this.rootDir; d = path.dirname(d)) {
      try {
        await this.#fs.rmdir(d);
      } catch {
        return;
      }
      this.#durableDirs.delete(d);
    }
  }

  #pathOf(operation: ObjectStoreOperation, key: string): { dir: string; file: string } {
    const components = key.split('/');
    const names = components.map(encodeComponent);
    for (const name of names) {
      if (name.length + DIRECTORY_SUFFIX.length > FILE_NAME_BYTES_MAX) {
        throw new ObjectStoreRequestError(
          operation,
          key,
          'ENAMETOOLONG',
          `key component too long for the filesystem store once encoded (${name.length} bytes, limit ${FILE_NAME_BYTES_MAX - 1}): ${key}`,
        );
      }
    }
    const dir = path.join(this.rootDir, ...names.slice(0, -1).map((name) => name + DIRECTORY_SUFFIX));
    return { dir, file: path.join(dir, names[names.length - 1]!) };
  }
}

/** An fsync failed: not retryable (see the module doc); mapped to `ObjectStoreRequestError`. */
class FsyncFailure extends Error {
  constructor(target: string, cause: unknown) {
    super(
      `fsync of ${target} failed (${cause instanceof Error ? cause.message : String(cause)}); ` +
        'this store writes nothing more until the process restarts',
      { cause },
    );
    this.name = 'FsyncFailure';
  }
}

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** Maps a Node I/O error to the interface's typed errors; passes typed errors through. */
function toStoreError(operation: ObjectStoreOperation, key: string, error: unknown): Error {
  if (error instanceof ObjectStoreError) return error;
  if (error instanceof FsyncFailure) {
    return new ObjectStoreRequestError(operation, key, 'FSYNC_FAILED', `filesystem store ${operation} ${key}: ${error.message}`, { cause: error });
  }
  const errno = errnoOf(error);
  if (errno === 'ENOENT' && (operation === 'get' || operation === 'head')) {
    return new ObjectNotFoundError(operation, key, { cause: error });
  }
  const message = `filesystem store ${operation} ${key}: ${error instanceof Error ? error.message : String(error)}`;
  if (errno !== undefined && TRANSIENT_ERRNO.has(errno)) {
    return new ObjectStoreUnavailableError(operation, key, message, { cause: error });
  }
  return new ObjectStoreRequestError(operation, key, errno ?? 'UNKNOWN', message, { cause: error });
}
