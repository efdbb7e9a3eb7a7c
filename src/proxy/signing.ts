/**
 * Capability URLs of proxy streams (the Proxy Protocol v0.1 §7): `expires` (Unix seconds) and
 * `signature` = base64url(HMAC-SHA256(secret, "<stream id>\n<expires>")). Verification accepts the
 * current secret and, during a rotation, the previous one, and compares in constant time
 * (crypto.timingSafeEqual), so neither a wrong byte's position nor which key matched leaks.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { WallClock } from '../clock.ts';
import { SignatureError } from './errors.ts';

export interface SigningKeys {
  /** Signs new URLs and verifies. */
  current: string;
  /** Verifies only: URLs signed before a rotation stay valid until they expire. */
  previous?: string;
}

function mac(secret: string, streamId: string, expiresSeconds: number): Buffer {
  return createHmac('sha256', secret).update(`${streamId}\n${expiresSeconds}`).digest();
}

export class UrlSigner {
  readonly #keys: SigningKeys;
  readonly #clock: WallClock;

  constructor(keys: SigningKeys, clock: WallClock) {
    this.#keys = keys;
    this.#clock = clock;
  }

  /** The query of a capability URL for `streamId`, valid for `lifetimeSeconds` from now. */
  sign(streamId: string, lifetimeSeconds: number): { expires: number; signature: string } {
    // Rounded up: a URL lives at least `lifetimeSeconds`.
    const expires = Math.ceil(this.#clock.nowMs() / 1000) + lifetimeSeconds;
    return { expires, signature: mac(this.#keys.current, streamId, expires).toString('base64url') };
  }

  /**
   * Checks a capability URL's query for `streamId`.
   * @throws SignatureError `MISSING_SIGNATURE` (either parameter absent), `SIGNATURE_INVALID`
   *   (malformed, or signed by neither key, or for another stream), `SIGNATURE_EXPIRED` (a valid
   *   signature whose `expires` has passed). The signature is checked before the expiry, so an
   *   expired answer tells nothing to someone who cannot sign.
   */
  verify(streamId: string, expiresText: string | undefined, signatureText: string | undefined): void {
    if (expiresText === undefined || signatureText === undefined) {
      throw new SignatureError('MISSING_SIGNATURE', 'the expires and signature query parameters are required');
    }
    if (!/^\d{1,12}$/.test(expiresText) || !/^[A-Za-z0-9_-]{43}$/.test(signatureText)) {
      throw new SignatureError('SIGNATURE_INVALID', 'the signature is not valid');
    }
    const expires = Number(expiresText);
    const given = Buffer.from(signatureText, 'base64url');
    let valid = false;
    for (const secret of [this.#keys.current, this.#keys.previous]) {
      if (secret === undefined) continue;
      const expected = mac(secret, streamId, expires);
      // Both keys are always tried: the time does not tell which one matched.
      valid = (given.length === expected.length && timingSafeEqual(given, expected)) || valid;
    }
    if (!valid) throw new SignatureError('SIGNATURE_INVALID', 'the signature is not valid');
    if (expires * 1000 <= this.#clock.nowMs()) throw new SignatureError('SIGNATURE_EXPIRED', 'the capability URL has expired');
  }
}
