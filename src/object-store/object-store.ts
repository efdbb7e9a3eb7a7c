/**
 * The object-store interface every tier below the hot tail talks to (segments, manifests), and
 * its typed errors. Implementations: `fs-store.ts` (embedded default), `s3-store.ts`,
 * `memory-store.ts` (tests). Decorators wrap this same interface: `retrying-store.ts`,
 * `metered-store.ts`, `fault-injecting-store.ts`.
 *
 * Semantics every implementation keeps (checked by the contract suite in
 * `test/unit/object-store-contract.test.ts` and `test/integration/object-store-s3.test.ts`):
 * - Keys are strings validated by `assertValidObjectKey`; they are compared and listed in
 *   the byte order of their UTF-8 encoding (`compareObjectKeys`), as S3 does.
 * - `put` is create-if-absent unless `{ overwrite: true }` is passed (S3 `If-None-Match: *`).
 *   Segments and manifests are never overwritten: losing that race means another writer exists.
 * - `delete` and `deleteMany` are idempotent: deleting a missing key succeeds (S3 cannot tell).
 * - Errors are `ObjectStoreError` subclasses; callers branch on the class or `code`, never on
 *   message text. `retryable` errors are the only ones `retrying-store.ts` retries.
 */
import { CairnError, type ErrorCode } from '../protocol/error-table.ts';

/** Half-open byte range `[startByte, endByte)` of an object, like `Uint8Array.subarray`. */
export interface ByteRange {
  /** First byte to return, ≥ 0. Must be < the object's size, else `ObjectRangeNotSatisfiableError`. */
  startByte: number;
  /** One past the last byte to return, > `startByte`. Clipped to the object's size. */
  endByte: number;
}

/**
 * An object's bytes as one buffer, or as parts stored as their concatenation (a segment cut from
 * hot-tail appends): a store that writes several buffers at once (the filesystem store) takes
 * the parts as they are, and `putBody` joins them for the others.
 */
export type ObjectBody = Uint8Array | readonly Uint8Array[];

/** Bytes of `body`. */
export function objectBodyBytes(body: ObjectBody): number {
  if (body instanceof Uint8Array) return body.length;
  let bytes = 0;
  for (const part of body) bytes += part.length;
  return bytes;
}

/** `body` as one buffer: itself, its only part, or a copy of its parts joined. */
export function joinedObjectBody(body: ObjectBody): Uint8Array {
  if (body instanceof Uint8Array) return body;
  return body.length === 1 ? body[0]! : Buffer.concat(body);
}

/**
 * Stores `body` under `key` like `store.put`: parts go to `store.putParts` when the store has it,
 * else they are joined into one buffer first. Errors: as `put`.
 */
export function putBody(store: ObjectStore, key: string, body: ObjectBody, options?: PutOptions): Promise<void> {
  if (body instanceof Uint8Array) return store.put(key, body, options);
  if (store.putParts !== undefined) return store.putParts(key, body, options);
  return store.put(key, joinedObjectBody(body), options);
}

export interface PutOptions {
  /**
   * Replace an existing object. Default false: the put is create-if-absent and fails with
   * `ObjectAlreadyExistsError` if the key exists.
   */
  overwrite?: boolean;
}

/** What `head` and `list` know about one object. */
export interface ObjectInfo {
  key: string;
  sizeBytes: number;
}

export interface GetResult {
  /** The requested bytes (the whole object, or the clipped range). */
  body: Uint8Array;
  /** Size of the whole object, whatever range was asked for. */
  sizeBytes: number;
}

export interface ListOptions {
  /** Only keys starting with this string (any string, not only whole path components). */
  prefix: string;
  /** Only keys strictly after this one in key order. To page, pass the previous page's `nextStartAfter`. */
  startAfter?: string;
  /** Most objects in one page: 1..`LIST_PAGE_OBJECTS_MAX` (the default; S3's own cap is 1000). */
  limit?: number;
}

export interface ListPage {
  /** Objects in ascending key order (`compareObjectKeys`). */
  objects: ObjectInfo[];
  /** Set when more keys may follow: pass it as `startAfter` to get the next page. */
  nextStartAfter?: string;
}

/** Largest (and default) `ListOptions.limit`: S3's ListObjectsV2 returns at most 1000 keys. */
export const LIST_PAGE_OBJECTS_MAX = 1000;

/** Longest key in UTF-8 bytes: S3's limit. */
export const OBJECT_KEY_BYTES_MAX = 1024;

export type ObjectStoreOperation = 'put' | 'get' | 'head' | 'list' | 'delete' | 'deleteMany';

export interface ObjectStore {
  /** Names the store for logs and error messages, e.g. `filesystem /data/objects`, `s3://bucket/prefix`. */
  readonly description: string;

  /**
   * Stores `body` under `key`, create-if-absent unless `options.overwrite`. Resolves once the
   * object is durable (fsynced, or acknowledged by S3).
   * Errors: `ObjectAlreadyExistsError` (create-if-absent and the key exists),
   * `InvalidObjectKeyError`, `ObjectStoreUnavailableError` (retryable; the put may or may not
   * have happened), `ObjectStoreRequestError`.
   */
  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void>;

  /**
   * Optional: `put` of the concatenation of `parts`, without joining them into one buffer first
   * (one copy less of every sealed byte). Callers go through `putBody`, which joins the parts for
   * a store without it. Errors: as `put`.
   */
  putParts?(key: string, parts: readonly Uint8Array[], options?: PutOptions): Promise<void>;

  /**
   * Reads the whole object, or `range` of it.
   * Errors: `ObjectNotFoundError`, `ObjectRangeNotSatisfiableError` (`range.startByte` ≥ size),
   * `InvalidObjectKeyError`, `ObjectStoreUnavailableError`, `ObjectStoreRequestError`.
   */
  get(key: string, range?: ByteRange): Promise<GetResult>;

  /** Size of an object without reading it. Errors: as `get`, less the range error. */
  head(key: string): Promise<ObjectInfo>;

  /** One page of keys by prefix, in key order. Errors: `ObjectStoreUnavailableError`, `ObjectStoreRequestError`. */
  list(options: ListOptions): Promise<ListPage>;

  /** Removes an object; succeeds if it is absent. Errors: as `put`, less the conflict. */
  delete(key: string): Promise<void>;

  /**
   * Removes many objects (any number; S3 sends batches of at most 1000). Succeeds for absent
   * keys. On failure some keys may be deleted and others not: call again with the same keys.
   * Errors: as `delete`.
   */
  deleteMany(keys: readonly string[]): Promise<void>;

  /** Releases connections or handles. The store must not be used afterwards. */
  close(): Promise<void>;
}

/**
 * Base class of every object-store error. Whether it is retryable (only those are retried) and
 * the HTTP status of a client request that fails with it (503 with `Retry-After` for retryable
 * errors, 500 otherwise: callers that expect e.g. a missing object catch it before it reaches a
 * client) come from the one error table (protocol/error-table.ts).
 */
export class ObjectStoreError extends CairnError {
  /** The operation that failed. */
  readonly operation: ObjectStoreOperation;
  /** The key concerned, or the list prefix; '' for `deleteMany`. */
  readonly key: string;

  constructor(
    code: ErrorCode & `OBJECT_${string}`,
    operation: ObjectStoreOperation,
    key: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.operation = operation;
    this.key = key;
  }
}

/** A create-if-absent `put` found the key present (S3: 412 Precondition Failed). Never retried. */
export class ObjectAlreadyExistsError extends ObjectStoreError {
  constructor(key: string, options?: ErrorOptions) {
    super('OBJECT_ALREADY_EXISTS', 'put', key, `object already exists: ${key}`, options);
  }
}

/** `get` or `head` of a key that does not exist (S3: 404 NoSuchKey). */
export class ObjectNotFoundError extends ObjectStoreError {
  constructor(operation: ObjectStoreOperation, key: string, options?: ErrorOptions) {
    super('OBJECT_NOT_FOUND', operation, key, `object not found: ${key}`, options);
  }
}

/** A ranged `get` whose `startByte` is at or past the end of the object (S3: 416). */
export class ObjectRangeNotSatisfiableError extends ObjectStoreError {
  readonly range: ByteRange;

  constructor(key: string, range: ByteRange, options?: ErrorOptions) {
    super(
      'OBJECT_RANGE_NOT_SATISFIABLE',
      'get',
      key,
      `range [${range.startByte}, ${range.endByte}) not satisfiable for ${key}`,
      options,
    );
    this.range = range;
  }
}

/** A key breaks the rules of `assertValidObjectKey`. A caller bug; not retryable. */
export class InvalidObjectKeyError extends ObjectStoreError {
  constructor(operation: ObjectStoreOperation, key: string, reason: string) {
    super('OBJECT_KEY_INVALID', operation, key, `invalid object key ${JSON.stringify(key)}: ${reason}`);
  }
}

/**
 * The store could not be reached or answered with a transient failure (network error,
 * timeout, S3 5xx/503 SlowDown/429, a concurrent conditional-write conflict, a local I/O
 * error such as ENOSPC). The operation may or may not have taken effect. Retryable; 503.
 */
export class ObjectStoreUnavailableError extends ObjectStoreError {
  constructor(operation: ObjectStoreOperation, key: string, message: string, options?: ErrorOptions) {
    super('OBJECT_STORE_UNAVAILABLE', operation, key, message, options);
  }
}

/**
 * The store refused the request for a reason retrying will not fix (S3 403 AccessDenied,
 * NoSuchBucket, 400; local EACCES, EROFS). `storeCode` is the store's own code (S3 error code
 * or errno name) for logs. Not retryable; 500.
 */
export class ObjectStoreRequestError extends ObjectStoreError {
  readonly storeCode: string;

  constructor(operation: ObjectStoreOperation, key: string, storeCode: string, message: string, options?: ErrorOptions) {
    super('OBJECT_STORE_REQUEST_FAILED', operation, key, message, options);
    this.storeCode = storeCode;
  }
}

const textEncoder = new TextEncoder();

/**
 * Throws `InvalidObjectKeyError` unless `key` is 1..1024 UTF-8 bytes of '/'-separated
 * components, none empty, none `.` or `..`, with no control characters (U+0000–U+001F, U+007F).
 * These rules keep keys portable between S3 and the filesystem layout of `fs-store.ts`.
 */
export function assertValidObjectKey(operation: ObjectStoreOperation, key: string): void {
  const reason = objectKeyProblem(key);
  if (reason !== undefined) throw new InvalidObjectKeyError(operation, key, reason);
}

function objectKeyProblem(key: string): string | undefined {
  if (key.length === 0) return 'empty';
  if (textEncoder.encode(key).length > OBJECT_KEY_BYTES_MAX) return `longer than ${OBJECT_KEY_BYTES_MAX} UTF-8 bytes`;
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'contains a control character';
  if (!key.isWellFormed()) return 'contains a lone surrogate';
  for (const component of key.split('/')) {
    if (component === '') return 'empty path component (leading, trailing or double "/")';
    if (component === '.' || component === '..') return `path component "${component}"`;
  }
  return undefined;
}

/**
 * Orders keys by their UTF-8 bytes, which is S3's LIST order. (JavaScript's `<` compares
 * UTF-16 code units, which disagrees for characters above U+FFFF versus U+E000–U+FFFF.)
 */
export function compareObjectKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Code point order equals UTF-8 byte order; UTF-16 order differs only when a surrogate
    // (a code point ≥ U+10000) meets a unit ≥ U+E000.
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate && (xSurrogate ? y : x) >= 0xe000) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** Throws a `RangeError` for a malformed range (a caller bug, not a store failure). */
export function assertValidByteRange(range: ByteRange): void {
  const { startByte, endByte } = range;
  if (!Number.isSafeInteger(startByte) || !Number.isSafeInteger(endByte) || startByte < 0 || endByte <= startByte) {
    throw new RangeError(`invalid byte range [${startByte}, ${endByte})`);
  }
}

/** Throws a `RangeError` for a list limit outside 1..`LIST_PAGE_OBJECTS_MAX`; returns the limit to use. */
export function listLimit(options: ListOptions): number {
  const limit = options.limit ?? LIST_PAGE_OBJECTS_MAX;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > LIST_PAGE_OBJECTS_MAX) {
    throw new RangeError(`list limit must be 1..${LIST_PAGE_OBJECTS_MAX}, got ${limit}`);
  }
  return limit;
}

/** Every object under `prefix`, in key order, fetching pages of `pageLimit` as it goes. */
export async function* listAll(store: ObjectStore, prefix: string, pageLimit?: number): AsyncGenerator<ObjectInfo> {
  let startAfter: string | undefined;
  for (;;) {
    const page = await store.list({ prefix, startAfter, limit: pageLimit });
    yield* page.objects;
    if (page.nextStartAfter === undefined) return;
    startAfter = page.nextStartAfter;
  }
}
