/**
 * Turns an `Authorization: Bearer <token>` header into a principal: the token's per-client key and
 * grants. Static tokens (`--auth-tokens-file`) and JWTs (`--auth-jwt-secret`, `--auth-jwks-url`)
 * are accepted side by side: a value that is not a static token and has three dot-separated parts
 * is checked as a JWT.
 *
 * Verified tokens are remembered in an LRU (AUTH_CACHE_ENTRIES_MAX entries), each until its `exp`
 * at the latest, so a repeated token costs one map lookup (the append path's CPU budget is tens of
 * µs; an RS256 check alone is about that).
 */
import { LRUCache } from 'lru-cache';
import type { WallClock } from '../clock.ts';
import { AUTH_CACHE_ENTRIES_MAX, AUTH_CACHE_TTL_MS_MAX } from '../config/limits.ts';
import { ServiceUnavailableError, UnauthorizedError } from '../protocol/errors.ts';
import type { CompiledGrant } from './grants.ts';
import { JwtRejectedError, JwtVerifier } from './jwt.ts';
import { loadTokensFile, sha256Hex, type StaticToken } from './tokens-file.ts';

/** Who is asking, once the token is verified. */
export interface Principal {
  /** Key for per-client limits (rate, live readers): `token:<name>` or `jwt:<iss>|<sub>`. */
  key: string;
  grants: CompiledGrant[];
  /** When the token stops being valid, ms since the epoch (undefined: no expiry). */
  expiresAtMs: number | undefined;
}

import { authConfigured, type AuthConfig } from './auth-config.ts';

export { authConfigured, type AuthConfig };

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export class Authenticator {
  readonly #tokens: Map<string, StaticToken>;
  readonly #jwt: JwtVerifier | undefined;
  readonly #clock: WallClock;
  readonly #cache: LRUCache<string, Principal>;

  constructor(tokens: Map<string, StaticToken>, jwt: JwtVerifier | undefined, clock: WallClock) {
    this.#tokens = tokens;
    this.#jwt = jwt;
    this.#clock = clock;
    this.#cache = new LRUCache<string, Principal>({ max: AUTH_CACHE_ENTRIES_MAX });
  }

  /** Builds the authenticator of a configuration, or undefined when auth is off. @throws TokensFileError */
  static async open(config: AuthConfig, clock: WallClock): Promise<Authenticator | undefined> {
    if (!authConfigured(config)) return undefined;
    const tokens = config.authTokensFile === undefined ? new Map<string, StaticToken>() : await loadTokensFile(config.authTokensFile);
    const jwt =
      config.authJwtSecret === undefined && config.authJwksUrl === undefined
        ? undefined
        : new JwtVerifier({
            secret: config.authJwtSecret,
            jwksUrl: config.authJwksUrl,
            audience: config.authJwtAudience,
            issuer: config.authJwtIssuer,
            clock,
          });
    return new Authenticator(tokens, jwt, clock);
  }

  /**
   * The principal of a request's `Authorization` header.
   * @throws UnauthorizedError (401) when the header is absent, not `Bearer`, or the token is
   *   unknown, expired or invalid; ServiceUnavailableError (503) when the JWKS cannot be fetched.
   */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (authorization === undefined) throw new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)', false);
    const match = BEARER.exec(authorization);
    if (match === null) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"', false);
    const token = match[1];
    const nowMs = this.#clock.nowMs();
    const cached = this.#cache.get(token);
    if (cached !== undefined && (cached.expiresAtMs === undefined || cached.expiresAtMs > nowMs)) return cached;
    const principal = await this.#verify(token);
    const lifeMs = Math.min(AUTH_CACHE_TTL_MS_MAX, (principal.expiresAtMs ?? Number.MAX_SAFE_INTEGER) - nowMs);
    if (lifeMs > 0) this.#cache.set(token, principal, { ttl: lifeMs });
    return principal;
  }

  async #verify(token: string): Promise<Principal> {
    const found = this.#tokens.size === 0 ? undefined : this.#tokens.get(sha256Hex(token));
    if (found !== undefined) return { key: found.key, grants: found.grants, expiresAtMs: undefined };
    if (this.#jwt === undefined || token.split('.').length !== 3) throw new UnauthorizedError('the bearer token is not valid', true);
    try {
      return await this.#jwt.verify(token);
    } catch (error) {
      if (error instanceof JwtRejectedError) throw new UnauthorizedError(`the bearer token is not valid: ${error.message}`, true);
      throw new ServiceUnavailableError(`cannot verify the bearer token: ${(error as Error).message}`);
    }
  }
}
