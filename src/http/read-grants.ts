/**
 * Read access for the routes outside `/v1/stream/` that show stream metadata (`GET /v1/streams`,
 * `GET /v1/streams/meta`): the same token check and the same answers as the stream routes
 * (src/auth/access-control.ts, README "Authentication"): 401 without a valid token, and a stream
 * is shown only when the token may `read` its path.
 */
import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator.ts';
import { checkGrants } from '../auth/grants.ts';

/** Whether the caller may read a path. */
export type ReadCheck = (path: string) => boolean;

const EVERYTHING: ReadCheck = () => true;

/**
 * The read check of this request's token; every path when auth is off.
 * @throws UnauthorizedError (401) when auth is on and the token is absent or invalid;
 *   ServiceUnavailableError (503) when a JWKS cannot be fetched.
 */
export async function readCheckOf(authenticator: Authenticator | undefined, request: FastifyRequest): Promise<ReadCheck> {
  if (authenticator === undefined) return EVERYTHING;
  const principal = await authenticator.authenticate(request.headers.authorization);
  return (path) => checkGrants(principal.grants, path, 'read') !== undefined;
}
