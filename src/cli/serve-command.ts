/**
 * `cairn serve`: the settings of src/config/serve-config.ts as flags (with their `CAIRN_*`
 * environment twins and an optional config file), validated before anything listens, and signal
 * handling for a graceful stop.
 */
import { Command, InvalidArgumentError } from 'commander';
import { CliError, EXIT_ERROR } from './exit-codes.ts';
import { addSettingOptions, resolvedConfig } from './config-options.ts';

/** An integer argument in [min, max]; commander reports the error and the command exits 2. */
export function integer(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected a whole number, got "${text}"`);
    const value = Number(text.trim());
    if (value < min || value > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

export function serveCommand(): Command {
  const command = new Command('serve').description('Run the Cairn Durable Streams server (streams under /v1/stream/<path>)');
  return addSettingOptions(command).action(async (_flags: unknown, self: Command) => {
    // Loaded here, not at the top: the client commands should not pay for the server's modules.
    const { startServer, StartupError } = await import('../server.ts');
    const { ObjectStoreError } = await import('../object-store/index.ts');
    const { createLogger } = await import('../observability/logger.ts');
    const config = resolvedConfig(self).config;
    const logger = createLogger(config.logLevel, config.logFormat, process.stdout.isTTY === true);
    // Cluster mode: checked before any process starts (a refused combination exits 2 at once).
    const cluster = await (await import('./serve-cluster.ts')).etcdClusterStart(config, logger);
    const workers = config.workers > 1 ? await import('./serve-workers.ts') : undefined;
    if (workers !== undefined && !workers.isWorkerProcess()) {
      await workers.runWorkersPrimary(config, logger);
      process.exit(0);
    }
    let server: Awaited<ReturnType<typeof startServer>>;
    try {
      // Fenced (diskless): this process can acknowledge nothing more; exit so a supervisor restarts it.
      const onFatal = () => process.exit(1);
      server = workers === undefined ? await startServer(config, { logger, cluster, onFatal }) : await workers.startWorker(config, logger);
    } catch (error) {
      // Failures an operator must fix get their message (exit 1); anything else is a bug: its stack.
      if (error instanceof StartupError || error instanceof ObjectStoreError) throw new CliError(EXIT_ERROR, error.message, { cause: error });
      throw error;
    }
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
