/**
 * Launches Cairn for a benchmark exactly as `cairn serve` does (same flags, parsed by the same
 * commander definition, same `startServer`), plus a side HTTP listener that reports the
 * in-process tiering counters, which Cairn has no HTTP endpoint for yet:
 *
 *   node bench/lib/cairn-with-stats.ts --stats-port 4438 -- --port 4437 --data-dir DIR [any `cairn serve` flag]
 *
 * `GET http://127.0.0.1:<stats-port>/stats` answers `{ tiering: <RunningServer.tiering.stats()> }`.
 * The listener is idle unless asked, so it costs the measured server nothing while a benchmark
 * runs; benchmarks ask only between timed phases. Stops cleanly on SIGTERM / SIGINT, like
 * `cairn serve`.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { serveCommand } from '../../src/cli/serve-command.ts';
import { startServer } from '../../src/server.ts';
import type { CairnStatsResponse, TieringStats } from './cairn-stats.ts';

async function run(argv: string[]): Promise<void> {
  const separator = argv.indexOf('--');
  const own = separator === -1 ? argv : argv.slice(0, separator);
  const serveArgs = separator === -1 ? [] : argv.slice(separator + 1);
  const { values } = parseArgs({ args: own, options: { 'stats-port': { type: 'string' } } });
  const statsPort = Number(values['stats-port']);
  if (!Number.isInteger(statsPort) || statsPort <= 0 || statsPort > 65_535) throw new Error('--stats-port is required (1-65535)');

  // Reuse the CLI's flag definitions, defaults and validation; replace only what it does with them.
  const command = serveCommand().exitOverride();
  let config: ServeConfig | undefined;
  command.action((flags: Omit<ServeConfig, 'durability' | 'logLevel' | 'objectStore'> & { durability: string; logLevel: string; objectStore: string }) => {
    config = {
      ...flags,
      durability: flags.durability as ServeConfig['durability'],
      logLevel: flags.logLevel as ServeConfig['logLevel'],
      objectStore: flags.objectStore as ServeConfig['objectStore'],
    };
  });
  await command.parseAsync(serveArgs, { from: 'user' });
  if (config === undefined) throw new Error('serve flags were not parsed');

  const server = await startServer(config);
  const statsListener = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== '/stats') {
      response.writeHead(404).end();
      return;
    }
    // Assigning checks at compile time that the server's stats still have the shape benchmarks read.
    const tiering: TieringStats = server.tiering.stats();
    const body: CairnStatsResponse = { tiering };
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    statsListener.once('error', reject);
    statsListener.listen(statsPort, '127.0.0.1', resolve);
  });
  process.stdout.write(`ready ${server.url} stats http://127.0.0.1:${statsPort}/stats\n`);

  const stop = (signal: string) => {
    process.stderr.write(`cairn-with-stats: ${signal} received, shutting down\n`);
    statsListener.close();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`cairn-with-stats: shutdown failed: ${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

run(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`cairn-with-stats: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
