/**
 * JWT bearer tokens (`--auth-jwt-secret` for HS256/384/512, `--auth-jwks-url` for RS*, PS*, ES*,
 * EdDSA keys fetched with jose's remote JWKS set). Signature, `exp`, `nbf`, and, when configured,
 * `aud` and `iss` are checked by jose; unsigned tokens (`alg: none`) are always refused.
 *
 * Grants travel in the `cairn` claim: `{ "cairn": { "grants": [ { "paths": […],
 * "operations": […], "public"?: bool } ] } }` (src/auth/grants.ts). A token without it is valid
 * but grants nothing (403 on every stream).
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { z } from 'zod';
import type { WallClock } from '../clock.ts';
import { compileGrants, grantsSchema, type CompiledGrant } from './grants.ts';
import { sha256Hex } from './tokens-file.ts';

export const GRANTS_CLAIM = 'cairn';

const claimSchema = z.object({ grants: grantsSchema }).strict();

const SYMMETRIC_ALGORITHMS = ['HS256', 'HS384', 'HS512'];
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface JwtOptions {
  /** Shared secret for HMAC-signed tokens. */
  secret?: string;
  /** URL of a JWKS document with the public keys of asymmetric tokens. */
  jwksUrl?: string;
  /** Required `aud` (when set). */
  audience?: string;
  /** Required `iss` (when set). */
  issuer?: string;
  clock: WallClock;
}

/** A verified JWT: its per-client key, grants and expiry (ms since the epoch; undefined without `exp`). */
export interface VerifiedJwt {
  key: string;
  grants: CompiledGrant[];
  expiresAtMs: number | undefined;
}

/** The token is not acceptable; the message says why (expired, wrong audience, bad signature …). */
export class JwtRejectedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'JwtRejectedError';
  }
}

export class JwtVerifier {
  readonly #options: JwtOptions;
  readonly #secret: Uint8Array | undefined;
  readonly #jwks: JWTVerifyGetKey | undefined;
  readonly #algorithms: string[];

  constructor(options: JwtOptions) {
    this.#options = options;
    this.#secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
    this.#jwks = options.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(options.jwksUrl));
    this.#algorithms = [...(this.#secret === undefined ? [] : SYMMETRIC_ALGORITHMS), ...(this.#jwks === undefined ? [] : ASYMMETRIC_ALGORITHMS)];
  }

  /**
   * Verifies a compact JWT.
   * @throws JwtRejectedError for a malformed or unsigned token, a bad signature, an algorithm not
   *   configured, `exp` passed, `nbf` ahead, wrong `aud`/`iss`, or an invalid `cairn` claim.
   */
  async verify(token: string): Promise<VerifiedJwt> {
    let payload: JWTPayload;
    try {
      const result = await jwtVerify(
        token,
        (header, input) => {
          if (header.alg?.startsWith('HS') === true) {
            if (this.#secret === undefined) throw new JwtRejectedError(`algorithm ${header.alg} is not accepted`);
            return this.#secret;
          }
          if (this.#jwks === undefined) throw new JwtRejectedError(`algorithm ${header.alg} is not accepted`);
          return this.#jwks(header, input);
        },
        {
          algorithms: this.#algorithms,
          audience: this.#options.audience,
          issuer: this.#options.issuer,
          currentDate: new Date(this.#options.clock.nowMs()),
        },
      );
      payload = result.payload;
    } catch (error) {
      if (error instanceof JwtRejectedError) throw error;
      // The key set could not be fetched: not the token's fault (the authenticator answers 503).
      if (error instanceof errors.JWKSTimeout) throw error;
      if (error instanceof errors.JOSEError) throw new JwtRejectedError(describe(error), { cause: error });
      throw error;
    }
    const claim = payload[GRANTS_CLAIM];
    let grants: CompiledGrant[] = [];
    if (claim !== undefined) {
      const parsed = claimSchema.safeParse(claim);
      if (!parsed.success) throw new JwtRejectedError(`the ${GRANTS_CLAIM} claim is invalid: ${z.prettifyError(parsed.error).replace(/\n/g, '; ')}`);
      grants = compileGrants(parsed.data.grants);
    }
    const key = payload.sub === undefined ? `jwt:${sha256Hex(token).slice(0, 16)}` : `jwt:${payload.iss ?? ''}|${payload.sub}`;
    return { key, grants, expiresAtMs: payload.exp === undefined ? undefined : payload.exp * 1000 };
  }
}

function describe(error: InstanceType<typeof errors.JOSEError>): string {
  if (error instanceof errors.JWTExpired) return 'token expired';
  if (error instanceof errors.JWTClaimValidationFailed) return `token claim ${error.claim} is not acceptable: ${error.reason}`;
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'token algorithm is not accepted';
  if (error instanceof errors.JWKSNoMatchingKey) return 'no key of the JWKS matches the token';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'token is malformed';
  return `token rejected (${error.code})`;
}
