/**
 * Sealed history served by any node (DESIGN.md "Scale-out", "Routing"; docs/cluster.md "Reads"):
 * a catch-up read whose start lies in the sealed part of a stream another node owns is answered
 * here, from the object store through this node's segment cache, instead of being forwarded, so
 * history reads scale with nodes. The node keeps read-only views of such streams: a registry of
 * its own that nothing writes, filled by the lazy lookup (one LIST and one GET per stream), and
 * a read path over it sharing the node's segment cache. Views go stale as the owner seals more,
 * so the whole set is dropped every SEALED_VIEW_TTL_MS and streams are looked up again on demand.
 *
 * A view answers only what the owner would answer byte for byte: a response that fills its budget
 * within sealed data (deterministic boundaries, so immutable and identical wherever built), or the
 * rest of a closed, wholly sealed stream; never `Stream-Up-To-Date` otherwise (the owner may hold
 * newer bytes). Any other read (one reaching the view's sealed end, a live read, a stream with a
 * sliding TTL, whose reads extend it at the owner, or anything the view cannot resolve) goes to
 * the owner as before.
 */
import type { Clock } from '../clock.ts';
import { SEALED_VIEW_TTL_MS } from '../config/limits.ts';
import type { ReadPath } from '../read-path/read-path.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { HttpContext } from './context.ts';
import { readStartPosition } from './routes/read.ts';

/** One generation of views: a registry nothing writes, its lazy lookup, and a read path over it. */
export interface ViewGeneration {
  registry: StreamRegistry;
  /** Loads `path` into `registry` from the object store if stored (the node's StreamFinder over it). */
  find(path: string): Promise<unknown>;
  reads: ReadPath;
}

export interface SealedViewsOptions {
  clock: Clock;
  /** Builds a fresh, empty generation. */
  build: () => ViewGeneration;
}

export class SealedViews {
  readonly #o: SealedViewsOptions;
  #generation: { views: ViewGeneration; bornMs: number } | undefined;
  /** Reads answered from views (metrics, tests). */
  served = 0;

  constructor(options: SealedViewsOptions) {
    this.#o = options;
  }

  /**
   * The context to answer a catch-up read of `path` from `offsetText` here, or undefined when the
   * owner must answer it. Never throws: whatever a view cannot tell goes to the owner.
   */
  async contextFor(base: HttpContext, path: string, offsetText: string | undefined): Promise<HttpContext | undefined> {
    const now = this.#o.clock.monotonicMs();
    if (this.#generation === undefined || now - this.#generation.bornMs >= SEALED_VIEW_TTL_MS) {
      this.#generation = { views: this.#o.build(), bornMs: now };
    }
    const { views } = this.#generation;
    try {
      await views.find(path);
      const stream = views.registry.get(path, { touch: false });
      if (stream.ttlSeconds !== undefined) return undefined;
      const context: HttpContext = { ...base, registry: views.registry, reads: views.reads, sealedView: true };
      const start = readStartPosition(context, stream, offsetText);
      if (start.now || start.position >= stream.sealedOffset) return undefined;
      // Only a response the owner would build byte for byte: one that filled its budget within
      // sealed data (immutable), or the whole rest of a closed, wholly sealed stream. One that
      // would stop at the view's sealed end is shorter than the owner's (and a client reading
      // with live=false takes one response only).
      const planned = await views.reads.open(stream, start.position);
      if (!planned.immutable && !(planned.end === stream.durableOffset && stream.durableClosed)) return undefined;
      this.served++;
      return context;
    } catch {
      return undefined;
    }
  }
}
