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
 * (overwrite), then fsyncs the target directory, and every directory it had to create. A reader
 * therefore sees either no object or the whole object, also after a crash. A crash can leave a
 * temporary file behind; it is never listed or read, and the first put of a later process
 * removes the temporary files of other processes.
 *
 * Hard links are required for create-if-absent: on a filesystem without them the put fails
 * (`ObjectStoreRequestError`, e.g. EPERM), which the startup overwrite check reports.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  assertValidByteRange,
  assertValidObjectKey,
  compareObjectKeys,
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
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';

export interface FsObjectStoreOptions {
  /** Directory holding the objects; created on the first put. */
  rootDir: string;
}

/** Longest file name most Linux filesystems accept, in bytes. */
const FILE_NAME_BYTES_MAX = 255;
const DIRECTORY_SUFFIX = '~';
const TEMP_PREFIX = '.tmp-';
/** Directory of temporary files, under the root; a leading '.' cannot come from a key. */
const TEMP_DIR = '.tmp';
/**
 * A put whose directory vanishes under it (a concurrent delete pruned it while empty) starts
 * again; more than a few such races in a row would mean something else is removing files.
 */
const PUT_DIRECTORY_RACE_ATTEMPTS_MAX = 5;

/** errno codes that describe a transient condition: the same operation may succeed later. */
const TRANSIENT_ERRNO = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'ETIMEDOUT', 'EINTR']);

export class FsObjectStore implements ObjectStore {
  readonly description: string;
  readonly rootDir: string;
  #tempCounter = 0;
  #tempDirReady: Promise<string> | undefined;

  constructor(options: FsObjectStoreOptions) {
    this.rootDir = path.resolve(options.rootDir);
    this.description = `filesystem ${this.rootDir}`;
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
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
    let handle: FileHandle;
    try {
      handle = await open(file, 'r');
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
      return { key, sizeBytes: (await stat(file)).size };
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
      for await (const { key, file } of walk(dir, dirKeyPrefix, prefix, startAfter)) {
        if (objects.length === limit) return { objects, nextStartAfter: objects[objects.length - 1]!.key };
        try {
          objects.push({ key, sizeBytes: (await stat(file)).size });
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

  async #putOnce(key: string, dir: string, file: string, body: Uint8Array, overwrite: boolean): Promise<void> {
    const tempDir = await (this.#tempDirReady ??= this.#prepareTempDir());
    const firstCreatedDir = await mkdir(dir, { recursive: true });
    const temp = path.join(tempDir, `${TEMP_PREFIX}${process.pid}-${++this.#tempCounter}-${randomBytes(6).toString('hex')}`);
    const handle = await open(temp, 'wx');
    let published = false;
    try {
      try {
        await handle.writeFile(body);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      if (overwrite) {
        await rename(temp, file);
        published = true;
      } else {
        try {
          await link(temp, file);
          published = true;
        } catch (error) {
          if (errnoOf(error) === 'EEXIST') throw new ObjectAlreadyExistsError(key, { cause: error });
          throw error;
        }
      }
    } finally {
      if (!overwrite || !published) await unlink(temp).catch(() => {});
    }
    await syncDir(dir);
    if (firstCreatedDir !== undefined) {
      // Each directory created here is an entry in its parent: make those entries durable too.
      for (let d = dir; d !== path.dirname(firstCreatedDir); d = path.dirname(d)) await syncDir(path.dirname(d));
    }
  }

  /** Creates `<root>/.tmp` and removes what interrupted puts of other processes left there. */
  async #prepareTempDir(): Promise<string> {
    const tempDir = path.join(this.rootDir, TEMP_DIR);
    await mkdir(tempDir, { recursive: true });
    const mine = `${TEMP_PREFIX}${process.pid}-`;
    for (const name of await readdir(tempDir)) {
      if (!name.startsWith(mine)) await unlink(path.join(tempDir, name)).catch(() => {});
    }
    return tempDir;
  }

  async #deleteOne(key: string): Promise<void> {
    const { dir, file } = this.#pathOf('delete', key);
    try {
      await unlink(file);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT') return;
      throw error;
    }
    await syncDir(dir);
    // Prune directories left empty, so deleted streams leave no trace; stop at the first that is not.
    for (let d = dir; d !== this.rootDir; d = path.dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return;
      }
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

/**
 * Keys under `dir` (whose keys all start with `dirKeyPrefix`) that start with `prefix` and sort
 * after `startAfter`, in key order. Children are visited sorted by the key range they hold (a
 * file `c` holds key `<dirKeyPrefix>c`, a directory `d~` holds keys starting `<dirKeyPrefix>d/`);
 * since keys sharing a prefix are contiguous in key order, this yields keys in order, and whole
 * subtrees outside the prefix or before `startAfter` are skipped unread.
 */
async function* walk(
  dir: string,
  dirKeyPrefix: string,
  prefix: string,
  startAfter: string | undefined,
): AsyncGenerator<{ key: string; file: string }> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return;
    throw error;
  }
  const children: { keyOrKeyPrefix: string; name: string; isDir: boolean }[] = [];
  for (const name of names) {
    if (name.startsWith('.')) continue; // temporary files
    const isDir = name.endsWith(DIRECTORY_SUFFIX);
    const component = decodeComponent(isDir ? name.slice(0, -DIRECTORY_SUFFIX.length) : name);
    if (component === undefined) continue; // not written by this store
    children.push({ keyOrKeyPrefix: dirKeyPrefix + component + (isDir ? '/' : ''), name, isDir });
  }
  children.sort((a, b) => compareObjectKeys(a.keyOrKeyPrefix, b.keyOrKeyPrefix));
  for (const child of children) {
    const k = child.keyOrKeyPrefix;
    if (child.isDir) {
      if (!k.startsWith(prefix) && !prefix.startsWith(k)) continue;
      // Every key under `k` is below a `startAfter` that is greater than `k` without extending it.
      if (startAfter !== undefined && compareObjectKeys(startAfter, k) > 0 && !startAfter.startsWith(k)) continue;
      yield* walk(path.join(dir, child.name), k, prefix, startAfter);
    } else {
      if (!k.startsWith(prefix)) continue;
      if (startAfter !== undefined && compareObjectKeys(k, startAfter) <= 0) continue;
      yield { key: k, file: path.join(dir, child.name) };
    }
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

function isPlainByte(byte: number, index: number): boolean {
  return (
    (byte >= 0x30 && byte <= 0x39) || // 0-9
    (byte >= 0x41 && byte <= 0x5a) || // A-Z
    (byte >= 0x61 && byte <= 0x7a) || // a-z
    byte === 0x5f || // _
    byte === 0x2d || // -
    (byte === 0x2e && index > 0) // . (not leading)
  );
}

/** Percent-encodes one key component into a file name (see the layout in the module doc). */
export function encodeComponent(component: string): string {
  let name = '';
  const bytes = textEncoder.encode(component);
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    name += isPlainByte(byte, i) ? String.fromCharCode(byte) : '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return name;
}

/** The key component a file name encodes, or undefined for a name `encodeComponent` cannot produce. */
export function decodeComponent(name: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < name.length; i++) {
    const char = name.charCodeAt(i);
    if (char === 0x25) {
      const hex = name.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) return undefined;
      const byte = Number.parseInt(hex, 16);
      if (isPlainByte(byte, bytes.length)) return undefined; // not canonical
      bytes.push(byte);
      i += 2;
    } else if (isPlainByte(char, bytes.length)) {
      bytes.push(char);
    } else {
      return undefined;
    }
  }
  try {
    const component = textDecoder.decode(new Uint8Array(bytes));
    return component === '' ? undefined : component;
  } catch {
    return undefined;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
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
