/**
 * The lazy-lookup hook (docs/storage-layout.md "Lazy lookup"): before a stream route runs (after
 * access control), the paths it names — the stream, and a create's `Stream-Forked-From` source —
 * are looked up in the object store when this node does not hold them. A malformed path is left
 * for the route to refuse. When the object store cannot be asked, reads and appends of an unknown
 * path answer its error (503); a create goes on, as creates never wait for the object store.
 */
import type { FastifyInstance } from 'fastify';
import { STREAM_PREFIX, streamPathOf, streamPathOfHeader } from '../protocol/stream-path.ts';
import type { StreamFinder } from '../tiering/stream-finder.ts';
import { SlotNotOwnedError } from '../cluster/errors.ts';

export function installStreamLookup(app: FastifyInstance, finder: StreamFinder, streamPathBytesMax: number): void {
  app.addHook('preHandler', async (request) => {
    if (!request.url.startsWith(STREAM_PREFIX) || request.cairnView !== undefined) return;
    const paths: string[] = [];
    try {
      paths.push(streamPathOf(request.url, streamPathBytesMax));
      const source = request.headers['stream-forked-from'];
      if (request.method === 'PUT' && typeof source === 'string') paths.push(streamPathOfHeader(source, streamPathBytesMax));
    } catch {
      return;
    }
    for (const [i, path] of paths.entries()) {
      let hostPath: string | undefined;
      try {
        hostPath = await finder.find(path);
      } catch (error) {
        // A create must not depend on the object store (its acknowledgement is the WAL's): when the
        // lookup of the path being created fails, the create goes on. Everything else answers the error.
        if (request.method !== 'PUT' || i !== 0) throw error;
        request.log.warn({ err: error, path }, 'lazy lookup failed; creating without it');
      }
      // Cluster mode: the stream's slot left this node while the request was on its way here
      // (a move): 503, so the forwarding node or the client asks the new owner. (A fork source
      // held elsewhere is fine: a create reaches a node without its source only when the fork's
      // path already exists there, and that answers without the source.)
      if (hostPath !== undefined && i === 0) throw new SlotNotOwnedError(undefined, undefined, `stream ${path} is served by another node now`);
    }
  });
}
