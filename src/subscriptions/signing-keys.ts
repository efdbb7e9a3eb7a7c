/**
 * The webhook signing keys (PROTOCOL.md §6.5, §7.1): Ed25519 key pairs from node:crypto, one
 * active, older ones still published for WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS after rotation so
 * deliveries signed just before a rotation still verify. `kid` is `ds_` + the RFC 7638 JWK
 * thumbprint (stable, derived from the key). The private keys persist in one file under the data
 * directory (mode 0600, replaced atomically) so restarts keep the published keys, and, given a
 * vault (signing-key-vault.ts), in the object store, which then wins over the file: a node that
 * lost its data directory, or another node, signs with the same keys.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WallClock } from '../clock.ts';
import { WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS } from '../config/limits.ts';
import type { SigningKeyVault, StoredKey } from './signing-key-vault.ts';

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
  readonly #vault: SigningKeyVault | undefined;
  /** The vault holds the current keys (loaded from it, or stored since): rotations are stored too. */
  #inVault = false;
  #keys: SigningKey[];

  private constructor(file: string | undefined, clock: WallClock, keys: SigningKey[], vault: SigningKeyVault | undefined) {
    this.#file = file;
    this.#clock = clock;
    this.#keys = keys;
    this.#vault = vault;
  }

  /**
   * Loads the keys from `vault` when it holds some, else from `file` (creating it with a fresh key
   * when absent; they reach the vault with `ensureStored`, so a server without subscriptions
   * writes nothing there); `file` undefined keeps them in memory only (tests).
   * @throws Error when the file exists but cannot be read or parsed; SigningKeysUnreadableError
   *   (vault); store errors.
   */
  static async open(file: string | undefined, clock: WallClock, vault?: SigningKeyVault): Promise<SigningKeys> {
    let stored = await vault?.load();
    const fromVault = stored !== undefined;
    if (file !== undefined && !fromVault) {
      const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (text !== undefined) stored = (JSON.parse(text) as { keys: StoredKey[] }).keys;
    }
    const ring = new SigningKeys(file, clock, parseKeys(stored ?? []), vault);
    ring.#inVault = fromVault;
    if (!ring.#keys.some((key) => key.retiredAtMs === null)) await ring.rotate();
    else if (fromVault) await ring.#saveFile();
    return ring;
  }

  /** Stores the keys in the vault unless it holds them (before the first subscription is stored). @throws store errors */
  async ensureStored(): Promise<void> {
    if (this.#vault === undefined || this.#inVault) return;
    await this.#save(true);
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

  /** Stores the keys in the file and, once they are there, the vault (adopting another node's if it stored first). */
  async #save(toVault = this.#inVault): Promise<void> {
    if (toVault && this.#vault !== undefined) {
      const adopted = await this.#vault.save(this.#stored());
      if (adopted !== undefined) this.#keys = parseKeys(adopted);
      this.#inVault = true;
    }
    await this.#saveFile();
  }

  #stored(): StoredKey[] {
    return this.#keys.map((key) => ({
      privatePem: key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      createdAtMs: key.createdAtMs,
      retiredAtMs: key.retiredAtMs,
    }));
  }

  async #saveFile(): Promise<void> {
    if (this.#file === undefined) return;
    const stored = this.#stored();
    await mkdir(path.dirname(this.#file), { recursive: true });
    const temporary = `${this.#file}.tmp`;
    await writeFile(temporary, JSON.stringify({ keys: stored }), { mode: 0o600 });
    await rename(temporary, this.#file);
  }
}

function parseKeys(stored: readonly StoredKey[]): SigningKey[] {
  return stored.map((key) => keyOf(createPrivateKey(key.privatePem), key.createdAtMs, key.retiredAtMs));
}
