/**
 * The webhook signing keys (PROTOCOL.md §6.5, §7.1): Ed25519 key pairs from node:crypto, one
 * active, older ones still published for WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS after rotation so
 * deliveries signed just before a rotation still verify. `kid` is `ds_` + the RFC 7638 JWK
 * thumbprint (stable, derived from the key). The private keys persist in one file under the data
 * directory (mode 0600, replaced atomically) so restarts keep the published keys.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WallClock } from '../clock.ts';
import { WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS } from '../config/limits.ts';

/** A public key as the JWK Set serves it. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  kid: string;
  use: 'sig';
  alg: 'EdDSA';
  x: string;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: PublicJwk;
  createdAtMs: number;
  /** When it stopped signing; null for the active key. */
  retiredAtMs: number | null;
}

interface StoredKey {
  privatePem: string;
  createdAtMs: number;
  retiredAtMs: number | null;
}

function keyOf(privateKey: KeyObject, createdAtMs: number, retiredAtMs: number | null): SigningKey {
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string };
  // RFC 7638: members in lexicographic order, no spaces.
  const thumbprint = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
  const kid = `ds_${thumbprint}`;
  return { kid, privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', kid, use: 'sig', alg: 'EdDSA', x }, createdAtMs, retiredAtMs };
}

export class SigningKeys {
  readonly #file: string | undefined;
  readonly #clock: WallClock;
  #keys: SigningKey[];

  private constructor(file: string | undefined, clock: WallClock, keys: SigningKey[]) {
    this.#file = file;
    this.#clock = clock;
    this.#keys = keys;
  }

  /**
   * Loads the keys from `file` (creating it with a fresh key when absent); `file` undefined keeps
   * the keys in memory only (tests).
   * @throws Error when the file exists but cannot be read or parsed.
   */
  static async open(file: string | undefined, clock: WallClock): Promise<SigningKeys> {
    let stored: StoredKey[] | undefined;
    if (file !== undefined) {
      const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (text !== undefined) stored = (JSON.parse(text) as { keys: StoredKey[] }).keys;
    }
    const keys = (stored ?? []).map((key) => keyOf(createPrivateKey(key.privatePem), key.createdAtMs, key.retiredAtMs));
    const ring = new SigningKeys(file, clock, keys);
    if (!keys.some((key) => key.retiredAtMs === null)) await ring.rotate();
    return ring;
  }

  /** The key that signs now. */
  get activeKid(): string {
    return this.#active().kid;
  }

  #active(): SigningKey {
    const active = this.#keys.find((key) => key.retiredAtMs === null);
    if (active === undefined) throw new Error('no active webhook signing key');
    return active;
  }

  /** Public keys to publish: the active one and those retired less than the keep window ago. */
  jwks(): { keys: PublicJwk[] } {
    const now = this.#clock.nowMs();
    return { keys: this.#keys.filter((key) => key.retiredAtMs === null || now - key.retiredAtMs < WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS).map((key) => key.jwk) };
  }

  /** `Webhook-Signature` of `body` at `timestampSeconds`: `t=…,kid=…,ed25519=<base64url>` (§7.1). */
  signatureHeader(body: string, timestampSeconds: number): string {
    const key = this.#active();
    const signature = sign(null, Buffer.from(`${timestampSeconds}.${body}`), key.privateKey).toString('base64url');
    return `t=${timestampSeconds},kid=${key.kid},ed25519=${signature}`;
  }

  /**
   * Rotates when the active key is at least `ageMsMax` old (`--webhook-signing-key-rotate-ms`);
   * resolves with whether it did. Key ages come from the key file, so restarts keep the schedule.
   */
  async rotateIfOlderThan(ageMsMax: number): Promise<boolean> {
    if (this.#clock.nowMs() - this.#active().createdAtMs < ageMsMax) return false;
    await this.rotate();
    return true;
  }

  /** Makes a new key active; the previous one stays published for the keep window, then is dropped. */
  async rotate(): Promise<string> {
    const now = this.#clock.nowMs();
    const { privateKey } = generateKeyPairSync('ed25519');
    const kept = this.#keys
      .map((key) => (key.retiredAtMs === null ? { ...key, retiredAtMs: now } : key))
      .filter((key) => now - (key.retiredAtMs ?? now) < WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS);
    this.#keys = [keyOf(privateKey, now, null), ...kept];
    await this.#save();
    return this.activeKid;
  }

  async #save(): Promise<void> {
    if (this.#file === undefined) return;
    const stored: StoredKey[] = this.#keys.map((key) => ({
      privatePem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      createdAtMs: key.createdAtMs,
      retiredAtMs: key.retiredAtMs,
    }));
    await mkdir(path.dirname(this.#file), { recursive: true });
    const temporary = `${this.#file}.tmp`;
    await writeFile(temporary, JSON.stringify({ keys: stored }), { mode: 0o600 });
    await rename(temporary, this.#file);
  }
}
