/**
 * `cairn serve`: flags, their `CAIRN_*` environment twins, validation, and signal handling.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  CHECKPOINT_WAL_BYTES_DEFAULT,
  LIVE_READERS_MAX_DEFAULT,
  LONG_POLL_TIMEOUT_MS_DEFAULT,
  MAX_APPEND_BYTES_DEFAULT,
  MAX_APPEND_BYTES_LIMIT,
  MAX_CHUNK_BYTES_DEFAULT,
  PORT_DEFAULT,
  SSE_RECONNECT_MS_DEFAULT,
} from '../config/limits.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import { startServer } from '../server.ts';

/** An integer argument in [min, max]; commander reports the error and we exit 2. */
function integer(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected a whole number, got "${text}"`);
    const value = Number(text.trim());
    if (value < min || value > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

function option(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Run the Cairn Durable Streams server (streams under /v1/stream/<path>)')
    .addOption(option('--host <address>', 'address to listen on', 'CAIRN_HOST').default('127.0.0.1'))
    .addOption(option('--port <number>', 'TCP port (0 = any free port)', 'CAIRN_PORT').argParser(integer(0, 65_535)).default(PORT_DEFAULT))
    .addOption(option('--data-dir <path>', 'directory for the write-ahead log and checkpoints', 'CAIRN_DATA_DIR').default('./data'))
    .addOption(
      option('--durability <mode>', 'wal: acknowledge after fsync; memory: no fsync (development only)', 'CAIRN_DURABILITY')
        .choices(['wal', 'memory'])
        .default('wal'),
    )
    .addOption(
      option('--long-poll-timeout-ms <ms>', 'long-poll wait before 204, in milliseconds', 'CAIRN_LONG_POLL_TIMEOUT_MS')
        .argParser(integer(1, 3_600_000))
        .default(LONG_POLL_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--max-append-bytes <bytes>', 'largest request body accepted (413 above), in bytes', 'CAIRN_MAX_APPEND_BYTES')
        .argParser(integer(1, MAX_APPEND_BYTES_LIMIT))
        .default(MAX_APPEND_BYTES_DEFAULT),
    )
    .addOption(
      option('--max-chunk-bytes <bytes>', 'largest catch-up response body, in bytes', 'CAIRN_MAX_CHUNK_BYTES')
        .argParser(integer(1024, 256 * 1024 * 1024))
        .default(MAX_CHUNK_BYTES_DEFAULT),
    )
    .addOption(
      option('--sse-reconnect-ms <ms>', 'SSE connections are closed after this long, in milliseconds', 'CAIRN_SSE_RECONNECT_MS')
        .argParser(integer(1000, 3_600_000))
        .default(SSE_RECONNECT_MS_DEFAULT),
    )
    .addOption(
      option('--live-readers-max <count>', 'live readers (long-poll + SSE) waiting at once; 503 above', 'CAIRN_LIVE_READERS_MAX')
        .argParser(integer(1, 10_000_000))
        .default(LIVE_READERS_MAX_DEFAULT),
    )
    .addOption(
      option('--checkpoint-wal-bytes <bytes>', 'write a checkpoint after this many WAL bytes', 'CAIRN_CHECKPOINT_WAL_BYTES')
        .argParser(integer(1024, Number.MAX_SAFE_INTEGER))
        .default(CHECKPOINT_WAL_BYTES_DEFAULT),
    )
    .addOption(
      option('--log-level <level>', 'log level', 'CAIRN_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .action(async (flags: Omit<ServeConfig, 'durability' | 'logLevel'> & { durability: string; logLevel: string }) => {
      const config: ServeConfig = {
        ...flags,
        durability: flags.durability as ServeConfig['durability'],
        logLevel: flags.logLevel as ServeConfig['logLevel'],
      };
      const server = await startServer(config);
      const stop = (signal: string) => {
        process.stderr.write(`cairn: ${signal} received, shutting down\n`);
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`cairn: shutdown failed: ${(error as Error).stack}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
