/**
 * The access check of every stream request when auth is on (README "Authentication"): one
 * `onRequest` hook, run before the body is read and before anything looks up the stream, so a
 * 401 or 403 is the same whether the stream exists or not (PROTOCOL.md §12.1, §12.2).
 *
 * Operations: PUT (create, fork) and POST (append, close) need `write`; GET and HEAD (catch-up,
 * long-poll, SSE) need `read`; DELETE needs `delete`. A fork (`Stream-Forked-From`) also needs
 * `read` on its source. CORS preflights (OPTIONS) need no token. The durable proxy's requests
 * (`/v1/proxy…`) need the `proxy` grant unless they carry a capability URL (checkProxyAccess
 * below). With auth off the hook is not installed at all.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ForbiddenError } from '../protocol/errors.ts';
import { singleHeader } from '../protocol/headers.ts';
import { PROXY_PREFIX, STREAM_PREFIX, streamPathOf, streamPathOfHeader } from '../protocol/stream-path.ts';
import type { Authenticator } from './authenticator.ts';
import { checkGrants, type Operation } from './grants.ts';

/** What the access check leaves on the request for the routes. */
export interface RequestAccess {
  /** Per-client key (rate and live-reader limits): the token's, never the IP. */
  clientKey: string;
  /** Reads of this path may be stored by shared caches (`Cache-Control: public`). */
  publicRead: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the access check when auth is on; undefined when auth is off. */
    cairnAccess: RequestAccess | undefined;
  }
}

const OPERATIONS: Record<string, Operation> = { GET: 'read', HEAD: 'read', PUT: 'write', POST: 'write', DELETE: 'delete' };

export function installAccessControl(app: FastifyInstance, authenticator: Authenticator, streamPathBytesMax: number): void {
  app.decorateRequest('cairnAccess', undefined);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (request.method === 'OPTIONS') return;
    if (request.url === PROXY_PREFIX || request.url.startsWith(`${PROXY_PREFIX}/`) || request.url.startsWith(`${PROXY_PREFIX}?`)) {
      await checkProxyAccess(request, authenticator);
      return;
    }
    if (!request.url.startsWith(STREAM_PREFIX)) return;
    // The reserved control prefix (subscriptions, PROTOCOL.md §6) checks its own grants and tokens.
    if (request.url.startsWith(`${STREAM_PREFIX}__ds/`)) return;
    const principal = await authenticator.authenticate(request.headers.authorization);
    const operation = OPERATIONS[request.method];
    if (operation === undefined) return; // no route answers it (404/405)
    const path = streamPathOf(request.url, streamPathBytesMax);
    const access = checkGrants(principal.grants, path, operation);
    if (access === undefined) throw new ForbiddenError(`the token does not grant ${operation} on this stream path`);
    if (operation === 'write') {
      const forkedFrom = singleHeader(request.headers['stream-forked-from'], 'Stream-Forked-From');
      if (forkedFrom !== undefined && checkGrants(principal.grants, streamPathOfHeader(forkedFrom, streamPathBytesMax), 'read') === undefined) {
        throw new ForbiddenError('the token does not grant read on the fork source path');
      }
    }
    request.cairnAccess = { clientKey: principal.key, publicRead: access.publicRead };
  });
}

/**
 * The durable proxy's service authentication (README "Durable proxy"): the `proxy` grant on
 * `__proxy/` (create) or `__proxy/<id>`. A capability URL is checked by the routes instead: PATCH
 * always, GET when it carries `signature` or `expires`; HEAD and DELETE never accept one.
 */
async function checkProxyAccess(request: FastifyRequest, authenticator: Authenticator): Promise<void> {
  const queryAt = request.url.indexOf('?');
  const pathPart = queryAt === -1 ? request.url : request.url.slice(0, queryAt);
  const query = queryAt === -1 ? '' : request.url.slice(queryAt + 1);
  if (request.method === 'PATCH') return;
  if (request.method === 'GET' && /(^|&)(signature|expires)=/.test(query)) return;
  const principal = await authenticator.authenticate(request.headers.authorization);
  const id = pathPart.slice(PROXY_PREFIX.length + 1);
  if (checkGrants(principal.grants, `__proxy/${id}`, 'proxy') === undefined) throw new ForbiddenError('the token does not grant proxy');
  request.cairnAccess = { clientKey: principal.key, publicRead: false };
}
