/**
 * The startup probe that the object store really refuses an overwrite. Cairn never writes a
 * segment or manifest key twice and treats a refused create-if-absent as proof that another
 * writer exists (DESIGN.md invariants); a store that silently ignores `If-None-Match: *` (some
 * S3 look-alikes do) would let two writers clobber each other's data unnoticed. So Cairn checks
 * at startup and refuses to start, unless the operator passes `--unsafe-allow-overwrites`.
 */
import type { RandomSource } from '../clock.ts';
import { joinedObjectBody, ObjectAlreadyExistsError, ObjectStoreError, putBody, type ObjectBody, type ObjectStore } from './object-store.ts';

/** Where probe objects are written; the key is removed again after the check. */
export const OVERWRITE_PROBE_KEY_PREFIX = '_cairn/overwrite-probe/';

export interface OverwriteCheckOptions {
  /** Makes the probe key unique, so concurrent starts against one bucket do not collide. */
  random: RandomSource;
  /** Return `{ enforced: false }` instead of throwing (the caller should log a loud warning). */
  unsafeAllowOverwrites?: boolean;
}

/**
 * The store accepted a second create-if-absent put of the same key (or changed the object
 * while refusing it). Not retryable: the operator must change the store or pass
 * `--unsafe-allow-overwrites`. The message names the store and that remedy.
 */
export class ObjectStoreOverwriteUnsafeError extends ObjectStoreError {
  readonly storeDescription: string;

  constructor(storeDescription: string, probeKey: string, what: string) {
    super(
      'OBJECT_STORE_OVERWRITE_UNSAFE',
      'put',
      probeKey,
      `object store ${storeDescription} ${what}: it does not enforce create-if-absent (If-None-Match: *). ` +
        'Cairn relies on that to never overwrite segments and manifests and to detect a second writer. ' +
        'Use a store that enforces conditional writes (AWS S3, MinIO, Ceph RGW, the filesystem store), ' +
        'or pass --unsafe-allow-overwrites to start anyway at the risk of silent data loss.',
    );
    this.storeDescription = storeDescription;
  }
}

/**
 * Puts a fresh probe key create-if-absent twice with different bodies; the second put must fail
 * with `ObjectAlreadyExistsError` and leave the first body. Deletes the probe key afterwards
 * (best effort). Two puts, at most one get and one delete: a few tens of ms on S3.
 *
 * Resolves `{ enforced: true }` when the store refuses the overwrite, `{ enforced: false }` when
 * it does not and `unsafeAllowOverwrites` is set. Errors: `ObjectStoreOverwriteUnsafeError`;
 * any error of the store's `put`/`get` (e.g. `ObjectStoreUnavailableError`) passes through, since
 * then nothing could be concluded.
 */
export async function verifyStoreRefusesOverwrite(
  store: ObjectStore,
  options: OverwriteCheckOptions,
): Promise<{ enforced: boolean }> {
  const key = OVERWRITE_PROBE_KEY_PREFIX + randomHex(options.random);
  const first = new TextEncoder().encode(`cairn overwrite probe ${key}: first`);
  const second = new TextEncoder().encode(`cairn overwrite probe ${key}: second, must be refused`);
  let problem: string | undefined;
  await store.put(key, first);
  try {
    try {
      await store.put(key, second);
      problem = 'accepted an overwrite of an existing object';
    } catch (error) {
      if (!(error instanceof ObjectAlreadyExistsError)) throw error;
      if (!(await storedBytesEqual(store, key, first))) problem = 'refused an overwrite but changed the object anyway';
    }
  } finally {
    // Only after our own put succeeded: never delete an object someone else wrote.
    await store.delete(key).catch(() => {});
  }
  if (problem === undefined) return { enforced: true };
  if (options.unsafeAllowOverwrites) return { enforced: false };
  throw new ObjectStoreOverwriteUnsafeError(store.description, key, problem);
}

/**
 * The one read-back-and-compare of the code base: true when object `key` holds exactly `body`.
 * Used after a create-if-absent put was refused, to tell our own earlier write (its answer lost)
 * from another writer's. One GET of the whole object.
 * Errors: the store's `get` errors pass through (`ObjectNotFoundError` if the object went away).
 */
export async function storedBytesEqual(store: ObjectStore, key: string, body: ObjectBody): Promise<boolean> {
  const stored = (await store.get(key)).body;
  return Buffer.compare(stored, joinedObjectBody(body)) === 0;
}

/**
 * A create-if-absent put that accepts an existing object holding exactly `body`: resolves
 * `'created'` when this put stored it, `'matched'` when the key already held the same bytes
 * (our own earlier attempt, or a restart finding what an earlier process stored). The refused
 * put is still made, so a store can make the existing object durable before answering.
 * Errors: `ObjectAlreadyExistsError` when the key holds other bytes (another writer: the caller
 * must stop, not retry); any other `put`/`get` error of the store passes through.
 */
export async function putCreateIfAbsent(store: ObjectStore, key: string, body: ObjectBody): Promise<'created' | 'matched'> {
  try {
    await putBody(store, key, body);
    return 'created';
  } catch (error) {
    if (!(error instanceof ObjectAlreadyExistsError)) throw error;
    if (await storedBytesEqual(store, key, body)) return 'matched';
    throw error;
  }
}

function randomHex(random: RandomSource): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(random.next() * 0x10000).toString(16).padStart(4, '0');
  return hex;
}
