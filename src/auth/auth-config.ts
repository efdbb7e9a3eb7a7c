/**
 * The auth settings of `cairn serve` and whether auth is on, without loading the token machinery
 * (jose, yaml): a server with auth off never imports it, which keeps its start fast.
 */

/** The auth settings of `cairn serve`; auth is on when any of the three sources is set. */
export interface AuthConfig {
  authTokensFile?: string;
  authJwtSecret?: string;
  authJwksUrl?: string;
  authJwtAudience?: string;
  authJwtIssuer?: string;
}

export function authConfigured(config: AuthConfig): boolean {
  return config.authTokensFile !== undefined || config.authJwtSecret !== undefined || config.authJwksUrl !== undefined;
}
