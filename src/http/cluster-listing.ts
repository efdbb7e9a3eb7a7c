/**
 * `GET /v1/streams` across the cluster (README "Listing streams"; docs/cluster.md "Listing"): the
 * node that receives the request asks every owner node of its slot map — itself in-process, the
 * others over the pooled HTTP forwarding uses, marked `Cairn-Forwarded-By` so that they answer
 * from their own registry and never fan out again, with the client's `Authorization` so that each
 * applies the caller's read grants — for one page of the same query, and merges the pages by path.
 *
 * Each node answers only for the streams it holds in slots it owns (a fork's slot is its chain
 * root's, where it lives), so a stream appears once even while a node still holds streams of a
 * slot it lost; merging drops duplicates anyway. Every node's page holds its `limit` smallest
 * paths after the cursor, so the `limit` smallest of their union are the cluster's: paging by key
 * skips and repeats nothing that exists throughout.
 *
 * A node that cannot be reached or does not answer within STREAM_LIST_NODE_TIMEOUT_MS, or a slot
 * with no live owner, makes the whole listing 503 + Retry-After (ClusterUnavailableError) naming
 * the node: a listing is never silently partial.
 */
import type { Dispatcher } from 'undici';
import type { Clock } from '../clock.ts';
import { ClusterUnavailableError, slotRecoveringError } from '../cluster/errors.ts';
import type { SlotTable } from '../cluster/slot-table.ts';
import { STREAM_LIST_NODE_TIMEOUT_MS } from '../config/limits.ts';
import type { StreamListQuery } from '../stream/registry.ts';
import { FORWARDED_BY_HEADER } from './forwarding.ts';
import { encodeListCursor, STREAM_LIST_PATH, type StreamListEntry } from './routes/list.ts';

/** One page of listing entries, from one node or merged. */
export interface StreamListEntriesPage {
  /** Ascending by path (UTF-16 code unit order, as JavaScript compares), at most the query's `limit`. */
  streams: StreamListEntry[];
  /** True when more visible streams follow the last one. */
  more: boolean;
}

/**
 * Merges pages of one query from several nodes: one entry per path (the first page's that has
 * it), ascending by path, the first `limit`. `more` when any page had more, or the union has more
 * than `limit` paths.
 */
export function mergeStreamListPages(pages: readonly StreamListEntriesPage[], limit: number): StreamListEntriesPage {
  const byPath = new Map<string, StreamListEntry>();
  for (const page of pages) {
    for (const entry of page.streams) if (!byPath.has(entry.path)) byPath.set(entry.path, entry);
  }
  const streams = [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { streams: streams.slice(0, limit), more: streams.length > limit || pages.some((page) => page.more) };
}

/** What the listing reads of the cluster: this node's id, the slot map, the live nodes, recovering slots. */
export type ListingRouter = Pick<SlotTable, 'nodeId' | 'map' | 'nodes' | 'route' | 'recovering'>;

export interface ClusterListingOptions {
  router: ListingRouter;
  /** The host path of the stream held here at `path` (a fork's chain root); undefined when not held. */
  heldHostPath: (path: string) => string | undefined;
  /** One page of this node's registry, every stream it holds (./routes/list.ts `localStreamPage`). */
  localPage: (query: StreamListQuery) => StreamListEntriesPage;
  /** The pooled keep-alive HTTP client to peers (forwarding's, ./forwarding.ts `peerAgent`). */
  agent: Dispatcher;
  clock: Clock;
  /** How long to wait for each peer's page (ms); default STREAM_LIST_NODE_TIMEOUT_MS. */
  nodeTimeoutMs?: number;
}

/** A node asked for its page: this one, or a peer at `url`. */
type PageSource = { nodeId: string; self: true } | { nodeId: string; self: false; url: string };

export class ClusterListing {
  readonly #options: ClusterListingOptions;

  constructor(options: ClusterListingOptions) {
    this.#options = options;
  }

  /**
   * This node's share of a listing: the streams it holds in slots it owns.
   * @throws ClusterUnavailableError while an owned slot's streams are still being recovered from a
   *   dead owner's log (diskless takeover): they are not all here yet.
   */
  ownPage(query: StreamListQuery): StreamListEntriesPage {
    const { router, heldHostPath, localPage } = this.#options;
    router.map.owners.forEach((owner, slot) => {
      const from = owner.nodeId === router.nodeId ? router.recovering(slot) : undefined;
      if (from !== undefined) throw slotRecoveringError(slot, from);
    });
    const owned = (path: string) => router.route(heldHostPath(path) ?? path).self;
    return localPage({ ...query, visible: (path) => query.visible(path) && owned(path) });
  }

  /**
   * The cluster's page for `query`: every owner node's page, merged (`mergeStreamListPages`).
   * `authorization` is the client's header, passed on so that each peer applies its grants
   * (`query.visible` applies them to this node's share).
   * @throws ClusterUnavailableError naming the node: a slot without a live owner, a peer that
   *   cannot be reached, does not answer within the timeout, or answers anything but a page.
   */
  async page(query: StreamListQuery, authorization: string | undefined): Promise<StreamListEntriesPage> {
    const sources = this.#sources();
    const timeoutMs = this.#options.nodeTimeoutMs ?? STREAM_LIST_NODE_TIMEOUT_MS;
    // One signal for every peer request: the timeout, or the first failure (its error is the answer).
    const abort = new AbortController();
    let timedOut = false;
    const timer = this.#options.clock.setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, timeoutMs);
    try {
      const pages = await Promise.all(
        sources.map(async (source) => {
          try {
            return source.self ? this.ownPage(query) : await this.#peerPage(source, query, authorization, abort.signal);
          } catch (error) {
            abort.abort();
            if (timedOut && !(error instanceof ClusterUnavailableError)) {
              throw new ClusterUnavailableError(`listing streams: node ${source.nodeId} did not answer within ${timeoutMs} ms`, { cause: error });
            }
            throw error;
          }
        }),
      );
      return mergeStreamListPages(pages, query.limit);
    } finally {
      timer.cancel();
    }
  }

  /** The owner nodes of the slot map, each once. @throws ClusterUnavailableError for a slot without a live owner. */
  #sources(): PageSource[] {
    const { router } = this.#options;
    const sources = new Map<string, PageSource>();
    router.map.owners.forEach((owner, slot) => {
      if (sources.has(owner.nodeId)) return;
      if (owner.nodeId === router.nodeId) {
        sources.set(owner.nodeId, { nodeId: owner.nodeId, self: true });
        return;
      }
      const url = router.nodes.get(owner.nodeId)?.advertiseUrl;
      if (url === undefined) throw new ClusterUnavailableError(`listing streams: slot ${slot}: its owner ${owner.nodeId || '(none)'} is not live`);
      sources.set(owner.nodeId, { nodeId: owner.nodeId, self: false, url });
    });
    return [...sources.values()];
  }

  /** One peer's page over HTTP. @throws ClusterUnavailableError (not reached, not a 200 page); the abort's error when `signal` aborts. */
  async #peerPage(source: PageSource & { self: false }, query: StreamListQuery, authorization: string | undefined, signal: AbortSignal): Promise<StreamListEntriesPage> {
    const search = new URLSearchParams({ prefix: query.prefix, limit: String(query.limit) });
    if (query.afterPath !== undefined) search.set('cursor', encodeListCursor(query.afterPath));
    const headers: Record<string, string> = { [FORWARDED_BY_HEADER]: this.#options.router.nodeId };
    if (authorization !== undefined) headers['authorization'] = authorization;
    const node = `node ${source.nodeId} at ${source.url}`;
    let status: number;
    let text: string;
    try {
      const answer = await this.#options.agent.request({ origin: source.url, path: `${STREAM_LIST_PATH}?${search.toString()}`, method: 'GET', headers, signal });
      status = answer.statusCode;
      text = await answer.body.text();
    } catch (error) {
      if (signal.aborted) throw error;
      throw new ClusterUnavailableError(`listing streams: ${node} did not answer: ${(error as Error).message}`, { cause: error });
    }
    if (status !== 200) throw new ClusterUnavailableError(`listing streams: ${node} answered ${status}: ${text.slice(0, 200)}`);
    let body: { streams?: unknown; nextCursor?: unknown } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    if (!Array.isArray(body?.streams) || (body.nextCursor !== null && typeof body.nextCursor !== 'string')) {
      throw new ClusterUnavailableError(`listing streams: ${node} answered something other than a page`);
    }
    return { streams: body.streams as StreamListEntry[], more: body.nextCursor !== null };
  }
}
