/**
 * Starts a Cairn server: opens the object store (and checks it refuses overwrites), opens the WAL
 * (checkpoint + replay), builds the registry, the sealer, the read path and the HTTP app, listens,
 * and runs the background jobs (sealing, retention, object deletes, expiry reaping, checkpoints).
 * `close()` is the graceful shutdown: stop accepting, end live readers, finish in-flight appends
 * and seals, fsync, close.
 * (Over 400 lines on purpose: it is the composition root, one straight sequence of construction
 * and wiring; splitting it would scatter the order in which the parts are built and stopped.)
 */
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { freshSeed, seededRandom, systemClock, type Clock, type RandomSource } from './clock.ts';
import {
  CHECKPOINT_CHECK_INTERVAL_MS,
  DISKLESS_CHECKPOINT_INTERVAL_MS,
  EXPIRY_REAP_INTERVAL_MS,
  FORWARD_ANSWER_MARGIN_MS,
  INCARNATIONS_PER_MS,
  SEAL_UPLOADS_MAX,
  SHUTDOWN_DRAIN_MS,
  SHUTDOWN_IDLE_SWEEP_MS,
} from './config/limits.ts';
import { authConfigured } from './auth/auth-config.ts';
import type { Authenticator } from './auth/authenticator.ts';
import { LiveClients } from './http/live-clients.ts';
import type { ServeConfig } from './config/serve-config.ts';
import { buildApp } from './http/app.ts';
import { ConnectionDrain } from './http/connection-drain.ts';
import { LiveReaders } from './http/live-readers.ts';
import { openTransport, TlsReloader, type SecureContextTarget } from './http/tls-reload.ts';
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
import { Readiness } from './observability/readiness.ts';
import { ServerMetrics } from './observability/server-metrics.ts';
import { ReadPath } from './read-path/read-path.ts';
import { SegmentCache, type SegmentCacheStats } from './read-path/segment-cache.ts';
import { StreamRegistry, type RegistrySnapshot } from './stream/registry.ts';
import type { StreamRecord } from './stream/records.ts';
import type { StreamState } from './stream/stream-state.ts';
import { ObjectCollector, type DeleteJob } from './tiering/object-collector.ts';
import { loadNodeId } from './data-dir.ts';
import { ManifestStore } from './manifest/manifest-store.ts';
import { StoredDataCorruptError } from './manifest/unit-checksum.ts';
import { ObjectNaming } from './manifest/object-naming.ts';
import { SealActivity } from './tiering/seal-activity.ts';
import { Sealer, type SealerStats } from './tiering/sealer.ts';
import type { LoadedStreamLimits } from './tiering/idle-eviction.ts';
import { StreamFinder } from './tiering/stream-finder.ts';
import { installStreamLookup } from './http/stream-lookup-hook.ts';
import { installForwarding, locate, peerAgent, type StreamHosting } from './http/forwarding.ts';
import { ClusterListing } from './http/cluster-listing.ts';
import { localStreamPage } from './http/routes/list.ts';
import { PeerChannelServer, peerSocketPathIn } from './http/peer-channel.ts';
import { peerAppendHandler } from './http/peer-appends.ts';
import { loggableUrl } from './observability/log-url.ts';
import { DisklessTakeover } from './takeover.ts';
import { SealedViews } from './http/sealed-views.ts';
import type { HttpContext } from './http/context.ts';
import { SlotNotOwnedError } from './cluster/errors.ts';
import type { Coordinator } from './cluster/coordinator.ts';
import type { SlotOwner, SlotTable } from './cluster/slot-table.ts';
import { OBJECT_WAL_CHAIN_DEFAULT, ObjectWalWriter, chainNodeId, openObjectWal, openWal, type WalCommitInfo, type WalFs, type WalWriter } from './wal/index.ts';
import { isSubscriptionRecord, openSubscriptions, type Subscriptions, type SubscriptionSnapshot } from './subscriptions/index.ts';

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
  /** Subscriptions with their cursors and generations (PROTOCOL.md §6–7). */
  subscriptions?: SubscriptionSnapshot[];
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
  /** The server's Prometheus metrics (served at /metrics). */
  metrics: ServerMetrics;
  /** Subscriptions (webhook and pull-wake, PROTOCOL.md §6–7). */
  subscriptions: Subscriptions;
  /**
   * Graceful shutdown; resolves when the WAL is fsynced and closed. Order: `/readyz` turns 503,
   * live readers end (SSE with a final control event, long-polls answered), new requests are
   * refused, in-flight ones finish (bounded by SHUTDOWN_DRAIN_MS), seals and deletes finish, the
   * WAL is flushed and closed.
   */
  close(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  random?: RandomSource;
  logger?: Logger;
  /** HTTP/1.1 SSE connections leave node:http once their head is written (src/http/sse-hand-off.ts); default true. */
  sseHandOff?: boolean;
  /** Replaces the store chosen by `config.objectStore` (tests: memory or fault-injecting stores). */
  objectStore?: ObjectStore;
  /** Object-store retry policy; default `RETRY_POLICY_DEFAULT` (outage tests shorten it). */
  retryPolicy?: Partial<RetryPolicy>;
  /** WAL file-system operations; default node:fs (disk-fault tests inject ENOSPC/EIO here). */
  walFs?: WalFs;
  /** Cluster mode (docs/cluster.md): this node's coordinator and its peer listener. */
  cluster?: ClusterStart;
  /** Diskless mode: the WAL chain's name (a worker of `--workers` passes its index); default `--node-id`, else `default`. */
  walChain?: string;
  /** Bounds on streams loaded by lazy lookup; defaults from limits.ts (eviction tests shorten them). */
  loadedStreamLimits?: LoadedStreamLimits;
  /**
   * Called once when this process can acknowledge nothing more for good: its diskless WAL chain was
   * fenced by a newer process (a restart elsewhere, or a cluster takeover after its lease lapsed).
   * `cairn serve` exits 1 so that its supervisor starts it again on a new generation. Default: only logged.
   */
  onFatal?: (error: Error) => void;
}

/** How a node joins a cluster. */
export interface ClusterStart {
  /** Builds the coordinator for this node's id (the data directory's). */
  coordinator: (nodeId: string) => Coordinator;
  /**
   * A second, plain-HTTP listener for requests forwarded by peers (the workers of `--workers`
   * share the client port, so each needs an address of its own); absent: peers use the client URL.
   */
  peerListen?: { host: string; port: number };
  /** How peers reach this node when there is no peer listener (`--advertise-url`); default the client URL. */
  advertiseUrl?: string;
}

/**
 * The write-ahead log of `config.durability`: the local one under `<data-dir>/wal`, or with
 * `object-store` the diskless chain `parts.chain` in the object store (src/wal/object-wal-recovery.ts).
 */
async function openLog(
  config: ServeConfig,
  options: StartOptions,
  parts: { store: ObjectStore; chain: string; logger: Logger; clock: Clock; onCommit: (info: WalCommitInfo) => void },
): Promise<{ writer: WalWriter | ObjectWalWriter; checkpoint: unknown; replay(): AsyncIterable<unknown> }> {
  const { store, chain, logger, clock, onCommit } = parts;
  if (config.durability !== 'object-store') {
    // Replayed appends stay in the WAL files until first read (src/wal/wal-file-bytes.ts).
    return openWal({ dir: path.join(config.dataDir, 'wal'), durability: config.durability, logger, fs: options.walFs, onCommit, deferData: true });
  }
  if (config.objectStore === 'fs' && config.fsStoreDir === undefined) {
    logger.warn('--durability object-store with the fs object store under the data directory: losing that directory loses everything; set --fs-store-dir to a durable shared path, or use S3');
  }
  const opened = await openObjectWal({
    store,
    chain,
    flushMs: config.walObjectFlushMs,
    objectBytesMax: config.walObjectBytes,
    logger,
    clock,
    onCommit,
    onFenced: (error) => {
      logger.error({ err: error, chain }, 'diskless WAL chain fenced by a newer process (a restart, or a takeover after this node lost its lease): acknowledging nothing more; this process must restart');
      options.onFatal?.(error);
    },
  }).catch((error: unknown) => {
    throw new StartupError(`diskless WAL chain ${chain}: ${(error as Error).message}`, { cause: error });
  });
  logger.info({ chain, ...opened.summary }, 'diskless WAL opened');
  return opened;
}

/** The configured store, unwrapped: the filesystem under the data directory, or S3 (also `cairn verify`). */
export async function openBaseStore(config: ServeConfig): Promise<ObjectStore> {
  if (config.objectStore === 'fs') return new FsObjectStore({ rootDir: config.fsStoreDir ?? path.join(config.dataDir, 'objects') });
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

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(bare);
}

/**
 * Refuses a configuration that would serve the network without access control (README
 * "Authentication"). @throws StartupError
 */
function checkExposure(config: ServeConfig): void {
  if (authConfigured(config) || isLoopbackHost(config.host) || config.allowUnauthenticated === true) return;
  throw new StartupError(
    `refusing to listen on ${config.host} without authentication: anyone who can reach it could create, read and delete streams. ` +
      'Configure --auth-tokens-file, --auth-jwt-secret or --auth-jwks-url, listen on 127.0.0.1, ' +
      'or pass --allow-unauthenticated (CAIRN_ALLOW_UNAUTHENTICATED=true) if something in front of Cairn controls access.',
  );
}

/** Loads the token machinery (jose, yaml) only when auth is configured. */
async function openAuthenticator(config: ServeConfig, clock: Clock): Promise<Authenticator | undefined> {
  const [{ Authenticator }, { TokensFileError }] = await Promise.all([import('./auth/authenticator.ts'), import('./auth/tokens-file.ts')]);
  return Authenticator.open(config, clock).catch((error: unknown) => {
    throw error instanceof TokensFileError ? new StartupError(error.message, { cause: error }) : error;
  });
}

/**
 * A plain-HTTP listener for peers' forwarded requests, answered by the same Fastify app.
 * @returns its URL and a close function that waits for its connections to end.
 */
async function listenPeers(app: FastifyInstance, at: { host: string; port: number }): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer((request, response) => app.routing(request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // exclusive: a worker of node:cluster gets a port of its own, not a share of the primary's.
    server.listen({ host: at.host, port: at.port, exclusive: true }, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    url: `http://${host}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

export async function startServer(config: ServeConfig, options: StartOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? pino({ level: config.logLevel });
  const randomSeed = config.randomSeed ?? freshSeed();
  const random = options.random ?? seededRandom(randomSeed);
  // Logged so a failing run can be replayed with --random-seed.
  if (options.random === undefined) logger.info({ randomSeed }, 'random source seeded');
  checkExposure(config);
  const authenticator = authConfigured(config) ? await openAuthenticator(config, clock) : undefined;
  const { headersTimeoutMs, requestTimeoutMs } = config;
  if (headersTimeoutMs > requestTimeoutMs) {
    throw new StartupError(`--headers-timeout-ms (${headersTimeoutMs}) must not exceed --request-timeout-ms (${requestTimeoutMs})`);
  }

  const { transport, tls } = await openTransport(config).catch((error: unknown) => {
    throw new StartupError(`TLS: ${(error as Error).message}`, { cause: error });
  });

  const startedMs = clock.monotonicMs();
  // Scrape-time sources are read through closures: the parts they name are built below.
  const metrics = new ServerMetrics({
    appendedBytes: () => registry.appendedBytes,
    hotTailBytes: () => registry.hotTailBytes,
    sealLagMs: () => sealer.sealLagMs(),
    streamCount: () => registry.streamCount,
    walQueuedBytes: () => writer.queuedBytes,
    sealer: () => sealer.stats,
    objectStore: () => metered.snapshot(),
    segmentCache: () => cache.stats(),
    collapsedReads: () => reads.collapsedReads,
    responsesBuilt: () => reads.responsesBuilt,
    objectsDeleted: () => collector.deletedCount,
    liveLongPollWaiting: () => live.longPollWaitingCount,
    liveSseOpen: () => live.sseOpenCount,
  });
  const metered = new MeteredObjectStore(options.objectStore ?? (await openBaseStore(config)), {
    clock,
    onFinish: (operation, latencyMs) => metrics.objectStoreFinished(operation, latencyMs),
  });
  const readiness = new Readiness({
    store: metered,
    clock,
    walFailure: () => writer.failure,
    ...(options.cluster === undefined ? {} : { cluster: () => coordinator?.status() ?? { connected: false, ownedSlots: 0 } }),
  });
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
  // Diskless: the node id lives with the WAL chain in the object store, not on the disk.
  const walChain = options.walChain ?? config.nodeId ?? OBJECT_WAL_CHAIN_DEFAULT;
  const dataNodeId = await loadNodeId(config.dataDir);
  const naming = new ObjectNaming(config.durability === 'object-store' ? await chainNodeId(store, walChain, dataNodeId) : dataNodeId);
  const coordinator = options.cluster?.coordinator(naming.nodeId);

  const wal = await openLog(config, options, { store, chain: walChain, logger, clock, onCommit: (info) => metrics.walCommitted(info) });
  const writer = wal.writer;
  // The sealer, the collector and the read path are built below: the registry calls them only on
  // writes, replay and expiry, which all come after.
  const registry = new StreamRegistry({
    log: { append: (record: StreamRecord) => writer.enqueue(record) },
    clock,
    hotTailBudgetBytes: config.hotTailBudgetBytes,
    listener: {
      durable: (stream) => {
        sealer.durable(stream);
        subscriptions.streamDurable(stream);
      },
      removed: (stream) => {
        sealer.removed(stream);
        subscriptions.streamRemoved(stream);
        // A stream that never stored a manifest and has no write running has no objects. One
        // removed during WAL replay (create not yet marked durable) may have a manifest its seal
        // record never reached the WAL for: its prefix is deleted (and tombstoned) too.
        if (stream.manifestVersion > 0 || stream.needsProbe || !stream.createDurable || seals.running(stream.incarnation)) {
          collector.deletePrefix(naming.prefix(stream), stream.incarnation);
        }
      },
      segmentsDropped: (stream, segments) => collector.deleteKeys(segments.map((segment) => naming.segment(stream, segment))),
    },
    sealedUnitReader: (stream, position) => reads.unitRest(stream, position),
    onBackgroundError: (error) => logger.warn({ err: error }, 'background stream write failed'),
    // Time-ordered incarnations never repeat without the local disk (docs/storage-layout.md).
    incarnationFloor: () => Math.floor(clock.nowMs()) * INCARNATIONS_PER_MS,
    incarnationResidue: () => coordinator?.incarnationResidue,
    ...(coordinator === undefined
      ? {}
      : { writeFence: { admit: (path: string) => coordinator.table.writeEpoch(path), confirm: (path: string, epoch: number) => coordinator.table.confirmEpoch(path, epoch) } }),
  });
  const seals = new SealActivity();
  const manifests = new ManifestStore({ store, naming });
  const collector = new ObjectCollector({ store, logger, seals, clock, manifests, recordsDurable: () => registry.recordsDurable() });
  const finder = new StreamFinder({
    store,
    registry,
    clock,
    isDeleting: (incarnation) => collector.isDeleting(incarnation),
    isSealing: (incarnation) => seals.running(incarnation),
    loadedLimits: options.loadedStreamLimits,
    ...(coordinator === undefined
      ? {}
      : {
          hostsLocally: (hostPath: string) => {
            const route = coordinator.table.route(hostPath);
            return route.self && coordinator.table.recovering(route.slot) === undefined;
          },
        }),
  });
  finder.eviction.start();
  const sealer = new Sealer({
    registry,
    manifests,
    collector,
    seals,
    clock,
    logger,
    policy: { segmentSizeBytes: config.segmentSizeBytes, sealIdleMs: config.sealIdleMs, unsealedAgeMsMax: config.unsealedAgeMsMax },
    chunkBytesMax: config.chunkBytesMax,
    hotTailBudgetBytes: config.hotTailBudgetBytes,
    retention: { retentionMs: config.retentionMs, retentionBytes: config.retentionBytes },
    uploadsMax: SEAL_UPLOADS_MAX,
    metadataFlushMs: config.metadataFlushMs,
    ...(coordinator === undefined ? {} : { storeFence: (stream: StreamState) => coordinator.table.storeEpoch(registry.hostPath(stream)) }),
  });
  const cache = new SegmentCache(store, config.segmentCacheBytes, {
    onCorrupt: (error) => logger.error({ key: error.key }, error.message),
  });
  const subscriptions = await openSubscriptions({
    dataDir: config.dataDir,
    log: { append: (record) => writer.enqueue(record) },
    registry,
    clock,
    random,
    allowLocalhostWebhooks: config.allowLocalhostWebhooks === true,
    signingKeyRotateMs: config.webhookSigningKeyRotateMs,
    metricsRegistry: metrics.registry,
    onBackgroundError: (error) => logger.warn({ err: error }, 'subscription delivery step failed'),
    stored: {
      store,
      nodeId: naming.nodeId,
      definitionFlushMs: config.metadataFlushMs,
      cursorFlushMs: config.subscriptionCursorFlushMs,
      signingKeysSecret: config.webhookSigningKeysSecret,
    },
    publicUrl: config.publicUrl,
  }).catch((error: unknown) => {
    // The stored signing keys are sealed under another secret (or none is set): the operator must fix it.
    throw error instanceof StoredDataCorruptError ? new StartupError(error.message, { cause: error }) : error;
  });
  if (config.webhookSigningKeysSecret === undefined) logger.info('webhook signing keys are stored unencrypted in the object store (--webhook-signing-keys-secret encrypts them)');
  const reads: ReadPath = new ReadPath({ registry, cache, naming, chunkBytesMax: config.chunkBytesMax, catchUpBytesMax: config.catchUpBytesMax });

  if (wal.checkpoint !== undefined) {
    const checkpoint = wal.checkpoint as CheckpointState;
    registry.restore(checkpoint);
    subscriptions.restore(checkpoint.subscriptions ?? []);
    for (const job of checkpoint.pendingObjectDeletes ?? []) {
      if ('keys' in job) collector.deleteKeys(job.keys);
      else collector.deletePrefix(job.prefix, job.incarnation);
    }
  }
  let replayed = 0;
  for await (const record of wal.replay()) {
    if (isSubscriptionRecord(record)) subscriptions.apply(record);
    else registry.apply(record as StreamRecord);
    replayed++;
  }
  registry.markAllDurable();
  const reconciled = await subscriptions.loadStored(finder);
  if (reconciled.loaded.length > 0) logger.info({ subscriptions: reconciled.loaded.length }, 'subscriptions loaded from the object store');
  // The durable proxy: pipes a previous process left open are closed as interrupted, never resumed.
  // Loaded only when on (the proxy's modules stay out of a server without it).
  const proxy =
    config.proxySigningSecret === undefined
      ? undefined
      : (await import('./proxy/index.ts')).openProxy(config, {
          registry,
          reads,
          clock,
          onEvent: (event) => logger.info({ ...event }, event.kind === 'interrupted' ? 'proxy stream closed as interrupted' : 'proxy pipe ended'),
        });
  await proxy?.service.closeInterrupted();
  readiness.markRecovered();
  sealer.start();
  subscriptions.start();
  logger.info(
    { streams: registry.streamCount, replayedRecords: replayed, recoveryMs: Math.round(clock.monotonicMs() - startedMs) },
    'recovered',
  );

  const live = new LiveReaders(config.liveReadersMax, clock);
  const httpContext: HttpContext = {
    registry,
    reads,
    clock,
    random,
    live,
    liveClients: new LiveClients(config.liveReadersPerClientMax),
    authEnabled: authenticator !== undefined,
    sseHandOff: options.sseHandOff ?? true,
    observeRequest: (operation, status, seconds) => metrics.observeRequest(operation, status, seconds),
    limits: {
      appendBytesMax: config.appendBytesMax,
      chunkBytesMax: config.chunkBytesMax,
      longPollTimeoutMs: config.longPollTimeoutMs,
      sseReconnectMs: config.sseReconnectMs,
      streamPathBytesMax: config.streamPathBytesMax,
      jsonDepthMax: config.jsonDepthMax,
      streamsMax: config.streamsMax,
    },
  };
  // Cluster mode: one pool of connections to peers, for forwarding and the cluster-wide listing.
  const agent = coordinator === undefined ? undefined : peerAgent();
  const clusterListing =
    coordinator === undefined || agent === undefined
      ? undefined
      : new ClusterListing({
          router: coordinator.table,
          heldHostPath: (path) => registry.hostPathOf(path),
          localPage: (query) => localStreamPage(httpContext, query),
          agent,
          clock,
        });
  const app = await buildApp({
    context: httpContext,
    logger,
    authenticator,
    corsOrigins: config.corsOrigins,
    trustProxy: config.trustProxy,
    appendsPerSecondMax: config.appendsPerSecondMax,
    nodeServer: {
      headerBytesMax: config.headerBytesMax,
      headersTimeoutMs,
      requestTimeoutMs,
      bodyTimeoutMs: config.bodyTimeoutMs,
      idleTimeoutMs: config.idleTimeoutMs,
    },
    transport,
    observability: { metrics, readiness },
    subscriptions: coordinator === undefined ? subscriptions : 'refused',
    proxy,
    clusterListing,
  });
  // Cluster mode: read-only views of other nodes' streams answer reads of their sealed history.
  const views = new SealedViews({
    clock,
    build: () => {
      const viewRegistry = new StreamRegistry({
        log: {
          append: () => {
            throw new SlotNotOwnedError(undefined, undefined, 'a read-only view of another node\'s stream is never written');
          },
        },
        clock,
      });
      const viewFinder = new StreamFinder({ store, registry: viewRegistry, clock, isDeleting: () => false });
      const viewReads = new ReadPath({ registry: viewRegistry, cache, naming, chunkBytesMax: config.chunkBytesMax, catchUpBytesMax: config.catchUpBytesMax });
      return { registry: viewRegistry, find: (path) => viewFinder.find(path), reads: viewReads };
    },
  });
  // Forwarding runs first (onRequest, before bodies are read); the lookup only for local slots.
  const hosting: StreamHosting = {
    heldHostPath: (path) => registry.hostPathOf(path),
    find: (path) => finder.find(path),
    learnHost: (path, hostPath) => finder.learnHost(path, hostPath),
    forget: (path) => finder.forget(path),
  };
  // --workers: appends between workers take the peer channel (a per-client write rate, counted
  // where the route runs, keeps them on HTTP).
  const peerSocketPath = options.cluster?.peerListen === undefined || config.appendsPerSecondMax > 0 ? undefined : peerSocketPathIn(config.dataDir);
  const forwarding =
    coordinator === undefined || agent === undefined
      ? undefined
      : installForwarding(app, {
          router: coordinator.table,
          agent,
          hosting,
          sealedView: (path, offsetText) => views.contextFor(httpContext, path, offsetText),
          clock,
          streamPathBytesMax: config.streamPathBytesMax,
          answerTimeoutMs: config.longPollTimeoutMs + FORWARD_ANSWER_MARGIN_MS,
          ...(peerSocketPath === undefined ? {} : { peerAppends: { appendBytesMax: config.appendBytesMax } }),
        });
  if (coordinator !== undefined && forwarding !== undefined) {
    metrics.addCluster({ status: () => coordinator.status(), forwarded: () => ({ ...forwarding.counts }) });
  }
  installStreamLookup(app, finder, config.streamPathBytesMax);

  const drain = new ConnectionDrain(app.server);
  const reaper = clock.setInterval(() => registry.reapExpired(), EXPIRY_REAP_INTERVAL_MS).unref();
  let checkpointing: Promise<void> | undefined;
  const checkpoint = (): Promise<void> => {
    checkpointing ??= writer
      .checkpoint({ ...registry.snapshot(), pendingObjectDeletes: collector.pending(), subscriptions: subscriptions.snapshot() } satisfies CheckpointState)
      .then(() => logger.info('checkpoint written'))
      .finally(() => {
        checkpointing = undefined;
      });
    return checkpointing;
  };
  // Diskless: WAL objects are also folded into a checkpoint once a minute when it would copy fewer
  // bytes (the hot tails) than it lets go of, so sealed records do not sit in WAL objects for long.
  let checkpointedMs = clock.monotonicMs();
  const checkpointDue = (): boolean =>
    writer.walBytesSinceCheckpoint >= config.checkpointWalBytes ||
    (writer instanceof ObjectWalWriter &&
      writer.walBytesSinceCheckpoint > registry.hotTailBytes &&
      clock.monotonicMs() - checkpointedMs >= DISKLESS_CHECKPOINT_INTERVAL_MS);
  if (writer instanceof ObjectWalWriter) {
    metrics.addObjectWal({ heldBytes: () => writer.walBytesSinceCheckpoint, heldAgeMs: () => writer.heldAgeMs(), storedObjects: () => writer.storedObjectCount });
  }
  const checkpointer = clock
    .setInterval(() => {
      if (checkpointing !== undefined || !checkpointDue()) return;
      checkpointedMs = clock.monotonicMs();
      checkpoint().catch((error: unknown) => logger.warn({ err: error }, 'checkpoint failed'));
    }, CHECKPOINT_CHECK_INTERVAL_MS)
    .unref();

  /** Cluster mode: the held streams whose host slot (a fork's is its chain root's) passes `inSlot`. */
  const streamsInSlots = (table: SlotTable, inSlot: (slot: number) => boolean): StreamState[] =>
    [...registry.allStreams()].filter((stream) => inSlot(table.slotOf(registry.hostPath(stream))));

  // Diskless: slots taken from a dead node are recovered from its chain in the object store.
  const takeover =
    coordinator === undefined || !(writer instanceof ObjectWalWriter)
      ? undefined
      : new DisklessTakeover({
          store,
          registry,
          table: coordinator.table,
          clock,
          logger,
          checkpointAfter: async () => {
            await checkpointing?.catch(() => {});
            await checkpoint();
          },
          clearRecoverFrom: (slots) => coordinator.clearRecoverFrom(slots),
        });
  if (takeover !== undefined) coordinator?.table.onChange(() => takeover.onMapChange());

  // A slot handed to another node: its streams' writes are refused already (the map marks it
  // moving); store every byte and their metadata, then forget them (docs/cluster.md "Moves").
  coordinator?.setReleaseHandler(async (slots) => {
    const moving = new Set(slots);
    await registry.recordsDurable();
    const streams = streamsInSlots(coordinator.table, (slot) => moving.has(slot));
    await sealer.sealNow(streams);
    await registry.unload(streams);
    logger.info({ slots: slots.length, streams: streams.length }, 'slots handed over');
  });

  // A slot taken from this node without its hand-over (an operator's reassign while it was away,
  // or a takeover): what it holds of those streams is stale from now on; forget it (the new owner
  // serves them from the object store, and if the slot comes back they are looked up afresh).
  // The first map this process sees judges what it replayed: a slot owned elsewhere then was taken
  // while it was away. Done in the listener, synchronously: a slot that came back to this node a
  // moment later must find no stale copy here (its sealer would reconcile the store against it).
  // While a new owner still recovers a slot from this node's chain (`recoverFrom`), the streams
  // stay, inert (no writes, no stores): a checkpoint of this chain must keep holding them.
  coordinator?.table.onChange((previous) => {
    const self = coordinator.table.nodeId;
    const owners = coordinator.table.map.owners;
    const first = previous.revision === 0;
    const holds = (owner: SlotOwner | undefined): boolean => owner?.nodeId === self || owner?.recoverFrom?.includes(self) === true;
    const lost = new Set<number>();
    previous.owners.forEach((before, slot) => {
      if ((first || holds(before)) && !holds(owners[slot])) lost.add(slot);
    });
    if (lost.size === 0) return;
    const stale = streamsInSlots(coordinator.table, (slot) => lost.has(slot));
    if (stale.length === 0) return;
    const unsealedBytes = stale.reduce((sum, stream) => sum + stream.durableOffset - stream.sealedOffset, 0);
    logger.warn(
      { ...(first ? {} : { slots: lost.size }), streams: stale.length, unsealedBytes },
      first
        ? 'holding streams of slots owned elsewhere at start (taken while this node was away): forgetting them, their unsealed bytes here are not served'
        : 'slots taken over by other nodes without a hand-over: forgetting their streams here',
    );
    registry.unload(stale).catch((error: unknown) => logger.warn({ err: error }, 'unloading streams of lost slots failed'));
  });

  const address = await app.listen({ host: config.host, port: config.port });
  const peerServer = options.cluster?.peerListen === undefined ? undefined : await listenPeers(app, options.cluster.peerListen);
  let closingPeers = false;
  const peerChannel =
    coordinator === undefined || peerSocketPath === undefined
      ? undefined
      : await PeerChannelServer.listen(
          peerSocketPath,
          peerAppendHandler({
            nodeId: naming.nodeId,
            context: httpContext,
            isLocal: async (path) => (await locate({ router: coordinator.table, hosting }, path)).local,
            find: (path) => finder.find(path),
            closing: () => closingPeers,
            logUnhandled: (error, reqId, url) => logger.error({ err: error, reqId, method: 'POST', url: loggableUrl(url) }, 'unhandled error'),
          }),
        );
  if (coordinator !== undefined) {
    const advertiseUrl = peerServer?.url ?? options.cluster?.advertiseUrl ?? address;
    await coordinator.start({ advertiseUrl, url: address, ...(peerChannel === undefined ? {} : { peerSocketPath: peerChannel.socketPath }) });
    logger.info({ nodeId: naming.nodeId, advertiseUrl, ...coordinator.status() }, 'joined the cluster');
  }
  const tlsReloader =
    tls && new TlsReloader({ files: tls.files, current: tls.pair, server: app.server as unknown as SecureContextTarget, clock, logger });
  tlsReloader?.start();
  logger.info(
    {
      url: address,
      dataDir: config.dataDir,
      durability: config.durability,
      objectStore: store.description,
      nodeId: naming.nodeId,
      auth: authenticator === undefined ? 'off' : 'on',
      transport: transport.kind,
    },
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
    metrics,
    subscriptions,
    close() {
      closing ??= (async () => {
        readiness.markClosing();
        subscriptions.close();
        reaper.cancel();
        checkpointer.cancel();
        finder.eviction.close();
        tlsReloader?.close();
        // Long-polls are answered (204 at the tail) and SSE connections get a final control event.
        live.closeAll();
        // Proxy pipes stop and close their streams (outcome interrupted) while the WAL is open.
        await proxy?.service.close();
        // Stops accepting; waits for in-flight requests (appends await their fsync), at most
        // SHUTDOWN_DRAIN_MS, then cuts the connections still open (a client not reading).
        // Connections that finish their last response while draining (SSE just ended, an
        // answered long-poll) become idle keep-alive sockets: close those as they appear, and
        // sockets that never carried a request.
        const idleSweeper = clock.setInterval(() => drain.closeUnused(), SHUTDOWN_IDLE_SWEEP_MS);
        const drainTimer = clock.setTimeout(() => {
          logger.warn({ drainMs: SHUTDOWN_DRAIN_MS }, 'shutdown drain timed out; closing open connections');
          drain.closeAll();
        }, SHUTDOWN_DRAIN_MS);
        try {
          await coordinator?.leave();
          closingPeers = true;
          await Promise.all([app.close(), peerServer?.close(), peerChannel?.close()]);
          await forwarding?.close();
          await coordinator?.close();
        } finally {
          idleSweeper.cancel();
          drainTimer.cancel();
        }
        await takeover?.close();
        await subscriptions.drainStored();
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
