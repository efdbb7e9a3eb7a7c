/**
 * The segment cache (DESIGN.md "Collapsing at three layers"): read units of segments, kept by
 * bytes in an `lru-cache` whose `fetch()` makes concurrent misses of one unit a single object-store
 * GET. A unit is a whole small segment (one plain GET) or a fixed slice of a larger one (a ranged
 * GET), so every reader of a unit shares one cache entry.
 */
import { LRUCache } from 'lru-cache';
import type { ByteRange, ObjectStore } from '../object-store/index.ts';
import { StoredDataCorruptError, unitChecksum } from '../manifest/unit-checksum.ts';

export interface SegmentCacheStats {
  /** Units served from memory. */
  hits: number;
  /** Units fetched from the object store (one GET each). */
  misses: number;
  /** Units requested while the same unit's GET was in flight (no GET of their own). */
  collapsed: number;
  /** Bytes held now. */
  bytes: number;
}

interface FetchContext {
  key: string;
  range: ByteRange | undefined;
  /** The unit's manifest checksum (src/manifest/unit-checksum.ts), verified before the bytes are kept. */
  checksum: string | undefined;
}

export interface SegmentCacheOptions {
  /** Hears of every unit that failed its checksum (the server logs the key). */
  onCorrupt?: (error: StoredDataCorruptError) => void;
}

export class SegmentCache {
  readonly #lru: LRUCache<string, Buffer, FetchContext>;
  #hits = 0;
  #misses = 0;
  #collapsed = 0;

  /** @param maxBytes memory for cached units; 0 keeps nothing (GETs are still collapsed while in flight). */
  constructor(store: ObjectStore, maxBytes: number, options: SegmentCacheOptions = {}) {
    this.#lru = new LRUCache<string, Buffer, FetchContext>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (value) => Math.max(1, value.length),
      // A unit being fetched may be evicted by another unit's arrival when the cache is smaller
      // than the GETs in flight (read-ahead, or --segment-cache-bytes 0): its readers still get
      // the bytes they asked for (they are just not kept), instead of an 'evicted' error.
      ignoreFetchAbort: true,
      fetchMethod: async (_cacheKey, _stale, { context }) => {
        const result = await store.get(context.key, context.range);
        if (context.checksum !== undefined && unitChecksum(result.body) !== context.checksum) {
          const at = context.range === undefined ? '' : ` bytes [${context.range.startByte}, ${context.range.endByte})`;
          const error = new StoredDataCorruptError(context.key, `object ${context.key}${at} does not match its manifest checksum; not served`);
          options.onCorrupt?.(error);
          throw error;
        }
        return Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength);
      },
    });
  }

  /**
   * Bytes `[range.startByte, range.endByte)` of object `key` (the whole object when `range` is
   * undefined), from memory or with one GET shared by all concurrent callers.
   * `checksum`: the unit's manifest checksum, verified on a fetch from the store.
   * Errors: the object store's (`ObjectNotFoundError`, `ObjectStoreUnavailableError`, …);
   * `StoredDataCorruptError` when the fetched bytes fail `checksum` (nothing is cached).
   */
  async read(key: string, range: ByteRange | undefined, checksum?: string): Promise<Buffer> {
    const status: LRUCache.Status<string, Buffer, FetchContext> = {};
    const value = await this.#lru.fetch(range === undefined ? key : `${key}@${range.startByte}`, { context: { key, range, checksum }, status });
    if (status.fetch === 'hit') this.#hits++;
    else if (status.fetch === 'inflight') this.#collapsed++;
    else this.#misses++;
    if (value === undefined) throw new Error(`segment cache fetch of ${key} returned nothing`);
    return value;
  }

  /**
   * Read-ahead: starts fetching a unit a sequential reader will probably ask for next, so its GET
   * overlaps with sending the current response. A no-op when the unit is cached or already being
   * fetched, or when the cache is too small to keep it until asked for (`keepBytesMin`). Counted
   * as a miss only if it makes a GET. Errors are dropped: the reader's own read reports them.
   */
  prefetch(key: string, range: ByteRange | undefined, keepBytesMin: number, checksum?: string): void {
    if (this.#lru.maxSize < keepBytesMin) return;
    const status: LRUCache.Status<string, Buffer, FetchContext> = {};
    this.#lru.fetch(range === undefined ? key : `${key}@${range.startByte}`, { context: { key, range, checksum }, status }).catch(() => {});
    if (status.fetch === 'miss') this.#misses++;
  }

  stats(): SegmentCacheStats {
    return { hits: this.#hits, misses: this.#misses, collapsed: this.#collapsed, bytes: this.#lru.calculatedSize };
  }
}
