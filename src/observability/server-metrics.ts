/**
 * Prometheus metrics of one server (issue 6), on a `prom-client` Registry of its own (several
 * servers may run in one process, e.g. in tests), with the default Node process metrics.
 *
 * Cheap on the hot path: most values are counters the server already keeps (registry, sealer,
 * metered object store, segment cache, read path, live readers), read by `collect()` callbacks
 * at scrape time. Per request there is one observation on a FixedHistogram child resolved once
 * per (operation, status) and cached (a bucket scan and three additions); per WAL group commit
 * three prom-client observations; per object-store call one.
 *
 * Names follow the Prometheus conventions: `cairn_` prefix, base units in the name (`_seconds`,
 * `_bytes`), `_total` on counters. README.md "Observability" lists every metric.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ObjectStoreMetricsSnapshot, ObjectStoreOperation } from '../object-store/index.ts';
import type { SegmentCacheStats } from '../read-path/segment-cache.ts';
import type { SealerStats } from '../tiering/sealer.ts';
import type { WalCommitInfo } from '../wal/index.ts';
import { FixedHistogram, type FixedHistogramChild } from './fixed-histogram.ts';

/** The protocol operation of a request, as the `operation` label names it. */
export type RequestOperation =
  | 'create'
  | 'append'
  | 'close'
  | 'read'
  | 'read_live_long_poll'
  | 'read_sse'
  | 'head'
  | 'delete'
  | 'preflight'
  | 'other';

/** Where the scrape-time values come from; each is called once per scrape. */
export interface MetricsSources {
  /** Acknowledged data bytes of creates and appends (StreamRegistry.appendedBytes). */
  appendedBytes(): number;
  hotTailBytes(): number;
  /** Age of the oldest unsealed byte, ms (Sealer.sealLagMs). */
  sealLagMs(): number;
  streamCount(): number;
  walQueuedBytes(): number;
  sealer(): SealerStats;
  objectStore(): ObjectStoreMetricsSnapshot;
  segmentCache(): SegmentCacheStats;
  /** Catch-up reads answered by joining an identical read in flight. */
  collapsedReads(): number;
  responsesBuilt(): number;
  objectsDeleted(): number;
  liveLongPollWaiting(): number;
  liveSseOpen(): number;
}

/** Request latency buckets, seconds: sub-millisecond appends up to 20 s long-polls and 60 s SSE. */
const REQUEST_SECONDS_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** fdatasync latency buckets, seconds: NVMe (~0.1 ms) to a struggling network disk. */
const FSYNC_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Records per group commit: powers of two. */
const BATCH_RECORDS_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];
/** Bytes per group commit: 256 B to 64 MiB, ×4 steps. */
const BATCH_BYTES_BUCKETS = [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864];
/** Object-store latency buckets, seconds: local files (~1 ms) to slow S3 PUTs. */
const OBJECT_STORE_SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

const OBJECT_STORE_OPERATIONS: readonly ObjectStoreOperation[] = ['put', 'get', 'head', 'list', 'delete', 'deleteMany'];

type Child = { observe(value: number): void };

/** A counter whose value is read from `read()` at scrape time (it never moves between scrapes). */
function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

export class ServerMetrics {
  /** The registry `/metrics` serves. */
  readonly registry = new Registry();
  readonly #requestSeconds: FixedHistogram<'operation' | 'status'>;
  /** Labelled children by operation, then status code: resolved once, reused by every request. */
  readonly #requestChildren = new Map<RequestOperation, Map<number, FixedHistogramChild>>();
  readonly #walFsyncSeconds: Histogram;
  readonly #walBatchRecords: Histogram;
  readonly #walBatchBytes: Histogram;
  readonly #objectStoreSeconds: Histogram<'operation'>;
  readonly #objectStoreChildren = new Map<ObjectStoreOperation, Child>();

  constructor(sources: MetricsSources) {
    const registry = this.registry;
    collectDefaultMetrics({ register: registry });

    this.#requestSeconds = new FixedHistogram({
      name: 'cairn_http_request_duration_seconds',
      help: 'HTTP requests by protocol operation and status code: latency until the response finished (live reads include their wait)',
      labelNames: ['operation', 'status'],
      buckets: REQUEST_SECONDS_BUCKETS,
      registry,
    });

    scrapedCounter(registry, 'cairn_append_bytes_total', 'Data bytes of appends and creates acknowledged (durable in the WAL)', sources.appendedBytes);
    scrapedGauge(registry, 'cairn_streams', 'Streams held (not deleted)', sources.streamCount);

    this.#walFsyncSeconds = new Histogram({
      name: 'cairn_wal_fsync_duration_seconds',
      help: 'fdatasync latency of each WAL group commit',
      buckets: FSYNC_SECONDS_BUCKETS,
      registers: [registry],
    });
    this.#walBatchRecords = new Histogram({
      name: 'cairn_wal_batch_records',
      help: 'Records per WAL group commit (one fsync)',
      buckets: BATCH_RECORDS_BUCKETS,
      registers: [registry],
    });
    this.#walBatchBytes = new Histogram({
      name: 'cairn_wal_batch_bytes',
      help: 'Frame bytes per WAL group commit',
      buckets: BATCH_BYTES_BUCKETS,
      registers: [registry],
    });
    scrapedGauge(registry, 'cairn_wal_queued_bytes', 'WAL bytes accepted and not yet durable', sources.walQueuedBytes);

    scrapedGauge(registry, 'cairn_hot_tail_bytes', 'Unsealed bytes held in memory across all hot tails', sources.hotTailBytes);
    scrapedGauge(registry, 'cairn_seal_lag_seconds', 'Age of the oldest unsealed byte across all hot tails (0 when all are sealed)', () => sources.sealLagMs() / 1000);
    scrapedCounter(registry, 'cairn_sealed_bytes_total', 'Bytes sealed into segments by this process', () => sources.sealer().sealedBytes);
    scrapedCounter(registry, 'cairn_segments_written_total', 'Segments stored and published by this process', () => sources.sealer().segmentsWritten);
    scrapedCounter(registry, 'cairn_seal_failures_total', 'Seal or retention-trim attempts that failed (retried)', () => sources.sealer().failures);
    scrapedCounter(registry, 'cairn_objects_deleted_total', 'Objects deleted (retention, deleted streams, orphans)', sources.objectsDeleted);

    let storeSnapshot: ObjectStoreMetricsSnapshot | undefined;
    // One snapshot per scrape, shared by the object-store counters (the requests counter is collected first).
    const store = (): ObjectStoreMetricsSnapshot => (storeSnapshot ??= sources.objectStore());
    new Counter({
      name: 'cairn_object_store_requests_total',
      help: 'Object-store requests by operation (every attempt, retries included)',
      labelNames: ['operation'],
      registers: [registry],
      collect() {
        storeSnapshot = sources.objectStore();
        this.reset();
        for (const operation of OBJECT_STORE_OPERATIONS) this.inc({ operation }, storeSnapshot[operation].requestCount);
      },
    });
    new Counter({
      name: 'cairn_object_store_errors_total',
      help: 'Object-store requests that failed, by operation and error code (OBJECT_NOT_FOUND is a normal answer to a probe)',
      labelNames: ['operation', 'code'],
      registers: [registry],
      collect() {
        this.reset();
        const snapshot = store();
        for (const operation of OBJECT_STORE_OPERATIONS) {
          for (const [code, count] of Object.entries(snapshot[operation].errorCountByCode)) this.inc({ operation, code }, count);
        }
      },
    });
    new Counter({
      name: 'cairn_object_store_body_bytes_total',
      help: 'Body bytes of successful object-store requests: sent by put, received by get',
      labelNames: ['operation'],
      registers: [registry],
      collect() {
        this.reset();
        const snapshot = store();
        for (const operation of ['put', 'get'] as const) this.inc({ operation }, snapshot[operation].bodyBytes);
      },
    });
    new Gauge({
      name: 'cairn_object_store_in_flight_requests',
      help: 'Object-store requests started and not finished',
      labelNames: ['operation'],
      registers: [registry],
      collect() {
        const snapshot = store();
        for (const operation of OBJECT_STORE_OPERATIONS) this.set({ operation }, snapshot[operation].inFlightCount);
      },
    });
    this.#objectStoreSeconds = new Histogram({
      name: 'cairn_object_store_request_duration_seconds',
      help: 'Object-store request latency by operation (successful or not)',
      labelNames: ['operation'],
      buckets: OBJECT_STORE_SECONDS_BUCKETS,
      registers: [registry],
    });

    let cacheStats: SegmentCacheStats | undefined;
    const cache = (): SegmentCacheStats => (cacheStats ??= sources.segmentCache());
    new Counter({
      name: 'cairn_segment_cache_hits_total',
      help: 'Segment read units served from the segment cache',
      registers: [registry],
      collect() {
        cacheStats = sources.segmentCache();
        this.reset();
        this.inc(cacheStats.hits);
      },
    });
    scrapedCounter(registry, 'cairn_segment_cache_misses_total', 'Segment read units fetched from the object store (one GET each)', () => cache().misses);
    scrapedCounter(
      registry,
      'cairn_segment_cache_collapsed_total',
      'Segment read units requested while the same unit was being fetched (no GET of their own)',
      () => cache().collapsed,
    );
    scrapedGauge(registry, 'cairn_segment_cache_bytes', 'Bytes held by the segment cache', () => cache().bytes);

    scrapedCounter(registry, 'cairn_collapsed_reads_total', 'Catch-up reads answered by joining an identical read in flight', sources.collapsedReads);
    scrapedCounter(
      registry,
      'cairn_read_responses_built_total',
      'Read responses and SSE data events assembled (joined and shared ones excluded)',
      sources.responsesBuilt,
    );
    new Gauge({
      name: 'cairn_live_connections',
      help: 'Live readers by mode: long-poll requests waiting, SSE connections open',
      labelNames: ['mode'],
      registers: [registry],
      collect() {
        this.set({ mode: 'long-poll' }, sources.liveLongPollWaiting());
        this.set({ mode: 'sse' }, sources.liveSseOpen());
      },
    });
  }

  /**
   * Cluster mode (docs/cluster.md "Operations"): this node's registration, slots and map
   * revision, and the stream requests it forwarded to slot owners, by outcome.
   */
  /** Diskless mode (`--durability object-store`): what is held only in WAL objects. */
  addObjectWal(sources: { heldBytes(): number; heldAgeMs(): number; storedObjects(): number }): void {
    const registry = this.registry;
    scrapedGauge(registry, 'cairn_wal_object_held_bytes', 'Diskless: WAL bytes held only in WAL objects, not yet in a checkpoint (what a restart replays)', sources.heldBytes);
    scrapedGauge(registry, 'cairn_wal_object_lag_seconds', 'Diskless: age of the oldest record held only in WAL objects (0 when a checkpoint covers all)', () => sources.heldAgeMs() / 1000);
    scrapedCounter(registry, 'cairn_wal_objects_stored_total', 'Diskless: WAL objects stored (one per flush)', sources.storedObjects);
  }

  addCluster(sources: { status(): { connected: boolean; ownedSlots: number; mapRevision: number }; forwarded(): Readonly<Record<string, number>> }): void {
    const registry = this.registry;
    scrapedGauge(registry, 'cairn_cluster_connected', '1 while this node holds its cluster registration and has a slot map, else 0', () => (sources.status().connected ? 1 : 0));
    scrapedGauge(registry, 'cairn_cluster_owned_slots', 'Slots this node owns', () => sources.status().ownedSlots);
    scrapedGauge(registry, 'cairn_cluster_map_revision', 'Revision of the slot map this node applied', () => sources.status().mapRevision);
    new Counter({
      name: 'cairn_forwarded_requests_total',
      help: 'Stream requests sent on to the node owning their slot, by outcome: answered, retried (once, after a slot move), failed (503 to the client)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [outcome, count] of Object.entries(sources.forwarded())) this.inc({ outcome }, count);
      },
    });
  }

  /** One finished HTTP request: `seconds` from routing to the end of the response. */
  observeRequest(operation: RequestOperation, status: number, seconds: number): void {
    let byStatus = this.#requestChildren.get(operation);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.#requestChildren.set(operation, byStatus);
    }
    let child = byStatus.get(status);
    if (child === undefined) {
      child = this.#requestSeconds.child({ operation, status: String(status) });
      byStatus.set(status, child);
    }
    child.observe(seconds);
  }

  /** One WAL group commit (WalWriter `onCommit`). */
  walCommitted(info: WalCommitInfo): void {
    this.#walFsyncSeconds.observe(info.fsyncMs / 1000);
    this.#walBatchRecords.observe(info.recordCount);
    this.#walBatchBytes.observe(info.bytes);
  }

  /** One finished object-store call (MeteredObjectStore `onFinish`). */
  objectStoreFinished(operation: ObjectStoreOperation, latencyMs: number): void {
    let child = this.#objectStoreChildren.get(operation);
    if (child === undefined) {
      child = this.#objectStoreSeconds.labels(operation);
      this.#objectStoreChildren.set(operation, child);
    }
    child.observe(latencyMs / 1000);
  }

  /** Prometheus text exposition of every metric. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
