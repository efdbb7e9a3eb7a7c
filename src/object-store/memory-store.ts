/**
 * An in-memory `ObjectStore` for unit tests: a map of copied byte arrays plus a sorted key
 * list. It keeps every rule of the interface, so the contract suite runs against it too.
 */
import {
  assertValidByteRange,
  assertValidObjectKey,
  compareObjectKeys,
  listLimit,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectRangeNotSatisfiableError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
} from './object-store.ts';

export interface MemoryObjectStoreOptions {
  /**
   * Default true. False makes create-if-absent puts silently overwrite, like S3 look-alikes
   * that ignore `If-None-Match: *`: for testing the startup overwrite check.
   */
  enforceCreateIfAbsent?: boolean;
  /** Default `memory`. */
  description?: string;
}

export class MemoryObjectStore implements ObjectStore {
  readonly description: string;
  readonly #objects = new Map<string, Uint8Array>();
  /** The keys of `#objects` in `compareObjectKeys` order, for `list`. */
  readonly #sortedKeys: string[] = [];
  readonly #enforceCreateIfAbsent: boolean;

  constructor(options: MemoryObjectStoreOptions = {}) {
    this.description = options.description ?? 'memory';
    this.#enforceCreateIfAbsent = options.enforceCreateIfAbsent ?? true;
  }

  /** Number of objects held. */
  get objectCount(): number {
    return this.#objects.size;
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertValidObjectKey('put', key);
    const exists = this.#objects.has(key);
    if (exists && !options.overwrite && this.#enforceCreateIfAbsent) throw new ObjectAlreadyExistsError(key);
    this.#objects.set(key, body.slice());
    if (!exists) this.#sortedKeys.splice(this.#bound(key, false), 0, key);
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidObjectKey('get', key);
    if (range) assertValidByteRange(range);
    const data = this.#objects.get(key);
    if (!data) throw new ObjectNotFoundError('get', key);
    if (!range) return { body: data.slice(), sizeBytes: data.length };
    if (range.startByte >= data.length) throw new ObjectRangeNotSatisfiableError(key, range);
    return { body: data.slice(range.startByte, Math.min(range.endByte, data.length)), sizeBytes: data.length };
  }

  async head(key: string): Promise<ObjectInfo> {
    assertValidObjectKey('head', key);
    const data = this.#objects.get(key);
    if (!data) throw new ObjectNotFoundError('head', key);
    return { key, sizeBytes: data.length };
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = listLimit(options);
    const { prefix, startAfter } = options;
    // Every key > startAfter ≥ prefix is ≥ prefix; otherwise start at the first key ≥ prefix.
    let index =
      startAfter !== undefined && compareObjectKeys(startAfter, prefix) >= 0
        ? this.#bound(startAfter, false)
        : this.#bound(prefix, true);
    const objects: ObjectInfo[] = [];
    for (; index < this.#sortedKeys.length; index++) {
      const key = this.#sortedKeys[index]!;
      if (!key.startsWith(prefix)) break;
      if (objects.length === limit) return { objects, nextStartAfter: objects[objects.length - 1]!.key };
      objects.push({ key, sizeBytes: this.#objects.get(key)!.length });
    }
    return { objects };
  }

  async delete(key: string): Promise<void> {
    assertValidObjectKey('delete', key);
    this.#remove(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertValidObjectKey('deleteMany', key);
    for (const key of keys) this.#remove(key);
  }

  async close(): Promise<void> {}

  #remove(key: string): void {
    if (!this.#objects.delete(key)) return;
    this.#sortedKeys.splice(this.#bound(key, true), 1);
  }

  /** Index of the first key ≥ `key` (`inclusive`) or > `key` (binary search). */
  #bound(key: string, inclusive: boolean): number {
    let low = 0;
    let high = this.#sortedKeys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const order = compareObjectKeys(this.#sortedKeys[mid]!, key);
      if (order < 0 || (order === 0 && !inclusive)) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
