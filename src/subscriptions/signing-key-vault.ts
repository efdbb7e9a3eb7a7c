/**
 * The webhook signing keys in the object store (docs/storage-layout.md "Subscriptions"), so a node
 * that lost its data directory, or another node, signs with the keys receivers already trust. One
 * object per version, `_cairn/webhook-signing-keys/<version:020>.json`, written create-if-absent
 * after the previous one; a refused write means another node rotated first, and its keys are
 * adopted. With `--webhook-signing-keys-secret` the private keys are sealed with AES-256-GCM under
 * a key derived from the secret by scrypt (random salt and nonce per version, the object key as
 * additional data); without it they are stored in the clear (PKCS#8 PEM) and the object store's
 * access control is what protects them (README "Subscriptions").
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import type { WallClock } from '../clock.ts';
import { StoredDataCorruptError } from '../manifest/unit-checksum.ts';
import { listAll, ObjectAlreadyExistsError, putCreateIfAbsent, type ObjectStore } from '../object-store/index.ts';

/** Prefix of the stored key-ring versions. */
export const SIGNING_KEYS_KEY_PREFIX = '_cairn/webhook-signing-keys/';

/** One key as stored (also the data-directory file's entries). */
export interface StoredKey {
  privatePem: string;
  createdAtMs: number;
  retiredAtMs: number | null;
}

interface StoredKeyRing {
  format: 1;
  version: number;
  nodeId: string;
  storedAtMs: number;
  /** `none`: `keys` holds the keys; `aes-256-gcm-scrypt`: `sealed` does, encrypted. */
  encryption: 'none' | 'aes-256-gcm-scrypt';
  keys?: StoredKey[];
  sealed?: { salt: string; nonce: string; tag: string; data: string };
}

/** The stored keys cannot be read: corrupt, or sealed under another secret (or none given). */
export class SigningKeysUnreadableError extends StoredDataCorruptError {
  constructor(key: string, reason: string) {
    super(key, `webhook signing keys ${key} cannot be read: ${reason}`);
  }
}

export interface SigningKeyVaultOptions {
  store: ObjectStore;
  nodeId: string;
  clock: WallClock;
  /** `--webhook-signing-keys-secret`; undefined: keys are stored unencrypted. */
  secret?: string;
}

const versionKey = (version: number): string => `${SIGNING_KEYS_KEY_PREFIX}${String(version).padStart(20, '0')}.json`;
const KEY_RE = /^_cairn\/webhook-signing-keys\/(\d{20})\.json$/;

export class SigningKeyVault {
  readonly #o: SigningKeyVaultOptions;
  /** Newest version known stored (0: none). */
  #version = 0;

  constructor(options: SigningKeyVaultOptions) {
    this.#o = options;
  }

  /** True when the keys are stored encrypted. */
  get encrypted(): boolean {
    return this.#o.secret !== undefined;
  }

  /**
   * The newest stored key ring (one LIST, one GET), or undefined when none is stored. Older
   * versions found are deleted (best effort).
   * @throws SigningKeysUnreadableError; store errors.
   */
  async load(): Promise<StoredKey[] | undefined> {
    const versions: number[] = [];
    for await (const object of listAll(this.#o.store, SIGNING_KEYS_KEY_PREFIX)) {
      const match = KEY_RE.exec(object.key);
      if (match !== null) versions.push(Number(match[1]));
    }
    if (versions.length === 0) return undefined;
    const newest = Math.max(...versions);
    const key = versionKey(newest);
    const keys = this.#open(key, (await this.#o.store.get(key)).body);
    this.#version = newest;
    const older = versions.filter((version) => version !== newest).map(versionKey);
    if (older.length > 0) await this.#o.store.deleteMany(older).catch(() => {});
    return keys;
  }

  /**
   * Stores `keys` as the next version. Resolves `undefined` when stored, or with the keys another
   * node stored first under that version (the caller adopts them).
   * @throws SigningKeysUnreadableError (the other node's keys); store errors.
   */
  async save(keys: StoredKey[]): Promise<StoredKey[] | undefined> {
    const version = this.#version + 1;
    const key = versionKey(version);
    try {
      await putCreateIfAbsent(this.#o.store, key, this.#seal(key, version, keys));
    } catch (error) {
      if (!(error instanceof ObjectAlreadyExistsError)) throw error;
      return this.load();
    }
    this.#version = version;
    if (version > 1) await this.#o.store.delete(versionKey(version - 1)).catch(() => {});
    return undefined;
  }

  #seal(key: string, version: number, keys: StoredKey[]): Uint8Array {
    const ring: StoredKeyRing = { format: 1, version, nodeId: this.#o.nodeId, storedAtMs: this.#o.clock.nowMs(), encryption: 'none' };
    if (this.#o.secret === undefined) {
      ring.keys = keys;
    } else {
      // Key material, not test-replayable logic: salt and nonce from the OS random source.
      const salt = randomBytes(16);
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', scryptSync(this.#o.secret, salt, 32), nonce);
      cipher.setAAD(Buffer.from(key));
      const data = Buffer.concat([cipher.update(JSON.stringify(keys)), cipher.final()]);
      ring.encryption = 'aes-256-gcm-scrypt';
      ring.sealed = { salt: salt.toString('base64'), nonce: nonce.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
    }
    return Buffer.from(JSON.stringify(ring));
  }

  #open(key: string, body: Uint8Array): StoredKey[] {
    let ring: StoredKeyRing;
    try {
      ring = JSON.parse(Buffer.from(body).toString('utf8')) as StoredKeyRing;
    } catch {
      throw new SigningKeysUnreadableError(key, 'not JSON');
    }
    if (ring.encryption === 'none') {
      if (!Array.isArray(ring.keys)) throw new SigningKeysUnreadableError(key, 'no keys');
      return ring.keys;
    }
    if (ring.encryption !== 'aes-256-gcm-scrypt' || ring.sealed === undefined) throw new SigningKeysUnreadableError(key, `unknown encryption ${String(ring.encryption)}`);
    if (this.#o.secret === undefined) throw new SigningKeysUnreadableError(key, 'they are encrypted and --webhook-signing-keys-secret is not set');
    const { salt, nonce, tag, data } = ring.sealed;
    try {
      const decipher = createDecipheriv('aes-256-gcm', scryptSync(this.#o.secret, Buffer.from(salt, 'base64'), 32), Buffer.from(nonce, 'base64'));
      decipher.setAAD(Buffer.from(key));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      const plain = Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]);
      return JSON.parse(plain.toString('utf8')) as StoredKey[];
    } catch {
      throw new SigningKeysUnreadableError(key, 'decryption failed (another --webhook-signing-keys-secret?)');
    }
  }
}
