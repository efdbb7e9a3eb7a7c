/**
 * Starts a Cairn server: opens the object store (and checks it refuses overwrites), opens the WAL
 * (checkpoint + replay), builds the registry, the sealer, the read path and the HTTP app, listens,
 * and runs the background jobs (sealing, retention, object deletes, expiry reaping, checkpoints).
 * `close()` is the graceful shutdown: stop accepting, end live readers, finish in-flight appends
 * and seals, fsync, close.
 */
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { seededRandom, systemClock, type Clock, type RandomSource } from './clock.ts';
import { CHECKPOINT_CHECK_INTERVAL_MS, EXPIRY_REAP_INTERVAL_MS, SEAL_UPLOADS_MAX } from './config/limits.ts';
import type { ServeConfig } from './config/serve-config.ts';
import { buildApp } from './http/app.ts';
import { LiveReaders } from './http/live-readers.ts';
import {
  FsObjectStore,
  MeteredObjectStore,
  ObjectStoreOverwriteUnsafeError,
  RetryingObjectStore,
  verifyStoreRefusesOverwrite,
  type ObjectStore,
  type ObjectStoreMetricsSnapshot,
  type RetryPolicy,
} from './object-store/index.ts';
import { ReadPath } from './read-path/read-path.ts';
import { SegmentCache, type SegmentCacheStats } from './read-path/segment-cache.ts';
import { StreamRegistry, type RegistrySnapshot } from './stream/registry.ts';
import type { StreamRecord } from './stream/records.ts';
import { ObjectCollector, type DeleteJob } from './tiering/object-collector.ts';
import { loadNodeId, ObjectNaming } from './tiering/object-naming.ts';
import { Sealer, type SealerStats } from './tiering/sealer.ts';
import { openWal, type WalFs } from './wal/index.ts';

/** The server cannot start for a reason the operator must fix; the message says which. */
export class StartupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** What a checkpoint holds: the registry plus the object deletes not yet done. */
interface CheckpointState extends RegistrySnapshot {
  pendingObjectDeletes?: DeleteJob[];
}

/** Counters of the tiered storage, for the demo, benchmarks and tests. */
export interface TieringStats extends SealerStats {
  hotTailBytes: number;
  /** Requests the object store saw (every attempt, retries included). */
  objectStore: ObjectStoreMetricsSnapshot;
  cache: SegmentCacheStats;
  /** Catch-up reads answered by joining an identical read in flight. */
  collapsedReads: number;
  /** Responses (and SSE data events) the read path assembled; joined and shared ones excluded. */
  responsesBuilt: number;
  objectsDeleted: number;
}

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:4437`. */
  url: string;
  app: FastifyInstance;
  registry: StreamRegistry;
  tiering: {
    stats(): TieringStats;
    /** The store as the server uses it (retries and metrics included). */
    store: ObjectStore;
    /** Resolves when queued object deletes are done (tests). */
    deletesDrained(): Promise<void>;
  };
  /** Writes a WAL checkpoint now (normally written every `checkpointWalBytes`). */
  checkpoint(): Promise<void>;
  /** Graceful shutdown; resolves when the WAL is fsynced and closed. */
  close(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  random?: RandomSource;
  logger?: Logger;
  /** Replaces the store chosen by `config.objectStore` (tests: memory or fault-injecting stores). */
  objectStore?: ObjectStore;
  /** Object-store retry policy; default `RETRY_POLICY_DEFAULT` (outage tests shorten it). */
  retryPolicy?: Partial<RetryPolicy>;
  /** WAL file-system operations; default node:fs (disk-fault tests inject ENOSPC/EIO here). */
  walFs?: WalFs;
}

/** The configured store, unwrapped: the filesystem under the data directory, or S3. */
async function openBaseStore(config: ServeConfig): Promise<ObjectStore> {
  if (config.objectStore === 'fs') return new FsObjectStore({ rootDir: path.join(config.dataDir, 'objects') });
  if (config.s3Bucket === undefined) throw new Error('--object-store s3 needs --s3-bucket');
  // Imported only here, so the embedded default never loads the AWS SDK.
  const { S3ObjectStore } = await import('./object-store/s3-store.ts');
  return new S3ObjectStore({
    bucket: config.s3Bucket,
    prefix: config.s3Prefix,
    endpoint: config.s3Endpoint,
    region: config.s3Region,
    forcePathStyle: config.s3ForcePathStyle === true,
  });
}

export async function startServer(config: ServeConfig, options: StartOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? seededRandom(Date.now());
  const logger = options.logger ?? pino({ level: config.logLevel });

  const startedMs = performance.now();
  const metered = new MeteredObjectStore(options.objectStore ?? (await openBaseStore(config)), { clock });
  const store = new RetryingObjectStore(metered, {
    random,
    clock,
    policy: options.retryPolicy,
    onRetry: (event) => logger.warn({ ...event }, 'object store request failed; retrying'),
  });
  const { enforced } = await verifyStoreRefusesOverwrite(store, { random, unsafeAllowOverwrites: config.unsafeAllowOverwrites }).catch(
    (error: unknown) => {
      if (error instanceof ObjectStoreOverwriteUnsafeError) throw error;
      throw new StartupError(`object store ${store.description} is not usable: ${(error as Error).message}`, { cause: error });
    },
  );
  if (!enforced) {
    logger.warn({ store: store.description }, 'object store does not refuse overwrites: create-if-absent is NOT enforced (--unsafe-allow-overwrites)');
  }
  const naming = new ObjectNaming(await loadNodeId(config.dataDir));

  const wal = await openWal({ dir: path.join(config.dataDir, 'wal'), durability: config.durability, logger, fs: options.walFs });
  const writer = wal.writer;
  const registry = new StreamRegistry({ append: (record: StreamRecord) => writer.append(record) }, clock, {
    hotTailBudgetBytes: config.hotTailBudgetBytes,
  });
  registry.onBackgroundError = (error) => logger.warn({ err: error }, 'background stream write failed');
  const collector: ObjectCollector = new ObjectCollector({ store, logger, sealIdle: (incarnation) => sealer.idle(incarnation) });
  const sealer: Sealer = new Sealer({
    registry,
    store,
    naming,
    collector,
    clock,
    logger,
    policy: { segmentSizeBytes: config.segmentSizeBytes, sealIdleMs: config.sealIdleMs, sealMaxAgeMs: config.sealMaxAgeMs },
    maxChunkBytes: config.maxChunkBytes,
    hotTailBudgetBytes: config.hotTailBudgetBytes,
    retention: { retentionMs: config.retentionMs, retentionBytes: config.retentionBytes },
    uploadsMax: SEAL_UPLOADS_MAX,
  });
  registry.listener = {
    durable: (stream) => sealer.durable(stream),
    removed: (stream) => {
      sealer.removed(stream);
      // A stream that never stored a manifest has no objects, or its running seal removes its own.
      if (stream.manifestVersion > 0 || stream.needsProbe) collector.deletePrefix(naming.prefix(stream), stream.incarnation);
    },
    segmentsDropped: (stream, segments) => collector.deleteKeys(segments.map((segment) => naming.segment(stream, segment))),
  };
  const cache = new SegmentCache(store, config.segmentCacheBytes);
  const reads = new ReadPath({ registry, cache, naming, maxChunkBytes: config.maxChunkBytes });
  registry.sealedUnitReader = (stream, position) => reads.unitRest(stream, position);

  if (wal.checkpoint !== undefined) {
    const checkpoint = wal.checkpoint as CheckpointState;
    registry.restore(checkpoint);
    for (const job of checkpoint.pendingObjectDeletes ?? []) {
      if ('keys' in job) collector.deleteKeys(job.keys);
      else collector.deletePrefix(job.prefix, job.incarnation);
    }
  }
  let replayed = 0;
  for await (const record of wal.replay()) {
    registry.apply(record as StreamRecord);
    replayed++;
  }
  registry.markAllDurable();
  sealer.start();
  logger.info(
    { streams: registry.streamCount, replayedRecords: replayed, recoveryMs: Math.round(performance.now() - startedMs) },
    'recovered',
  );

  const live = new LiveReaders(config.liveReadersMax);
  const app = await buildApp({
    context: {
      registry,
      reads,
      clock,
      random,
      live,
      limits: {
        maxAppendBytes: config.maxAppendBytes,
        maxChunkBytes: config.maxChunkBytes,
        longPollTimeoutMs: config.longPollTimeoutMs,
        sseReconnectMs: config.sseReconnectMs,
      },
    },
    logger,
  });

  const reaper = setInterval(() => registry.reapExpired(), EXPIRY_REAP_INTERVAL_MS);
  let checkpointing: Promise<void> | undefined;
  const checkpoint = (): Promise<void> => {
    checkpointing ??= writer
      .checkpoint({ ...registry.snapshot(), pendingObjectDeletes: collector.pending() } satisfies CheckpointState)
      .then(() => logger.info('checkpoint written'))
      .finally(() => {
        checkpointing = undefined;
      });
    return checkpointing;
  };
  const checkpointer = setInterval(() => {
    if (checkpointing !== undefined || writer.walBytesSinceCheckpoint < config.checkpointWalBytes) return;
    checkpoint().catch((error: unknown) => logger.warn({ err: error }, 'checkpoint failed'));
  }, CHECKPOINT_CHECK_INTERVAL_MS);
  reaper.unref();
  checkpointer.unref();

  const address = await app.listen({ host: config.host, port: config.port });
  logger.info(
    { url: address, dataDir: config.dataDir, durability: config.durability, objectStore: store.description, nodeId: naming.nodeId },
    'cairn listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url: address,
    app,
    registry,
    checkpoint,
    tiering: {
      stats: () => ({
        ...sealer.stats,
        hotTailBytes: registry.hotTailBytes,
        objectStore: metered.snapshot(),
        cache: cache.stats(),
        collapsedReads: reads.collapsedReads,
        responsesBuilt: reads.responsesBuilt,
        objectsDeleted: collector.deletedCount,
      }),
      store,
      deletesDrained: () => collector.drained(),
    },
    close() {
      closing ??= (async () => {
        clearInterval(reaper);
        clearInterval(checkpointer);
        live.closeAll();
        await app.close(); // stops accepting; waits for in-flight requests (appends await their fsync)
        await sealer.close();
        await collector.close();
        await writer.close();
        await store.close();
        logger.info('cairn stopped');
      })();
      return closing;
    },
  };
}
