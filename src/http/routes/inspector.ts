/**
 * The web inspector (README "Inspector") at /inspector/: static files built from src/inspector by
 * `npm run build:inspector` into build/inspector/, served by @fastify/static. Same origin and the
 * same API as any client: the page holds no data of its own, so it shows nothing the token could
 * not read through the API. Its Content-Security-Policy allows requests to this origin only.
 * Until the files exist, /inspector/ answers 503 "inspector not built: run npm run build:inspector"
 * (checked per request, so a build while the server runs is picked up).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { InspectorNotBuiltError } from '../../protocol/errors.ts';

export const INSPECTOR_PREFIX = '/inspector/';

/** Where `npm run build:inspector` writes (scripts/build-inspector.ts); gitignored. */
export const INSPECTOR_BUILD_DIR = fileURLToPath(new URL('../../../build/inspector/', import.meta.url));

/** Same origin only, no inline script, no framing: the page can talk to nothing but this server. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function registerInspector(app: FastifyInstance, root: string = INSPECTOR_BUILD_DIR): Promise<void> {
  const { default: fastifyStatic } = await import('@fastify/static');
  const indexFile = path.join(root, 'index.html');
  let built = existsSync(indexFile);
  app.addHook('onRequest', async (request) => {
    if (built || !(request.url === '/inspector' || request.url.startsWith(INSPECTOR_PREFIX))) return;
    built = existsSync(indexFile);
    if (!built) throw new InspectorNotBuiltError();
  });
  await app.register(fastifyStatic, {
    root,
    prefix: INSPECTOR_PREFIX,
    redirect: true,
    suppressWarning: true,
    // The page is small and changes with each build: revalidate instead of caching for a year.
    cacheControl: false,
    setHeaders: (reply) => {
      reply.header('cache-control', 'no-cache');
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}
