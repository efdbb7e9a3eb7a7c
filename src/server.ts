/**
 * Starts a Cairn server: opens the WAL (checkpoint + replay), builds the registry and the HTTP
 * app, listens, and runs the background jobs (expiry reaping, checkpoints). `close()` is the
 * graceful shutdown: stop accepting, end live readers, finish in-flight appends, fsync, close.
 */
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { seededRandom, systemClock, type Clock, type RandomSource } from './clock.ts';
import { CHECKPOINT_CHECK_INTERVAL_MS, EXPIRY_REAP_INTERVAL_MS } from './config/limits.ts';
import type { ServeConfig } from './config/serve-config.ts';
import { buildApp } from './http/app.ts';
import { LiveReaders } from './http/live-readers.ts';
import { StreamRegistry, type RegistrySnapshot } from './stream/registry.ts';
import type { StreamRecord } from './stream/records.ts';
import { openWal } from './wal/index.ts';

export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:4437`. */
  url: string;
  app: FastifyInstance;
  registry: StreamRegistry;
  /** Graceful shutdown; resolves when the WAL is fsynced and closed. */
  close(): Promise<void>;
}

export interface StartOptions {
  clock?: Clock;
  random?: RandomSource;
  logger?: Logger;
}

export async function startServer(config: ServeConfig, options: StartOptions = {}): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? seededRandom(Date.now());
  const logger = options.logger ?? pino({ level: config.logLevel });

  const startedMs = performance.now();
  const wal = await openWal({ dir: path.join(config.dataDir, 'wal'), durability: config.durability, logger });
  const writer = wal.writer;
  const registry = new StreamRegistry({ append: (record: StreamRecord) => writer.append(record) }, clock);
  registry.onBackgroundError = (error) => logger.warn({ err: error }, 'background stream write failed');
  if (wal.checkpoint !== undefined) registry.restore(wal.checkpoint as RegistrySnapshot);
  let replayed = 0;
  for await (const record of wal.replay()) {
    registry.apply(record as StreamRecord);
    replayed++;
  }
  registry.markAllDurable();
  logger.info(
    { streams: registry.streamCount, replayedRecords: replayed, recoveryMs: Math.round(performance.now() - startedMs) },
    'recovered',
  );

  const live = new LiveReaders(config.liveReadersMax);
  const app = await buildApp({
    context: {
      registry,
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
  let checkpointing = false;
  const checkpointer = setInterval(() => {
    if (checkpointing || writer.walBytesSinceCheckpoint < config.checkpointWalBytes) return;
    checkpointing = true;
    writer
      .checkpoint(registry.snapshot())
      .then(() => logger.info('checkpoint written'))
      .catch((error: unknown) => logger.warn({ err: error }, 'checkpoint failed'))
      .finally(() => {
        checkpointing = false;
      });
  }, CHECKPOINT_CHECK_INTERVAL_MS);
  reaper.unref();
  checkpointer.unref();

  const address = await app.listen({ host: config.host, port: config.port });
  logger.info({ url: address, dataDir: config.dataDir, durability: config.durability }, 'cairn listening');

  let closing: Promise<void> | undefined;
  return {
    url: address,
    app,
    registry,
    close() {
      closing ??= (async () => {
        clearInterval(reaper);
        clearInterval(checkpointer);
        live.closeAll();
        await app.close(); // stops accepting; waits for in-flight requests (appends await their fsync)
        await writer.close();
        logger.info('cairn stopped');
      })();
      return closing;
    },
  };
}
