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
import { parseArgs } from 'node:util';
import { startServer } from '../../src/server.ts';
import { parseServeFlags, runLauncher, serveSideListener, splitAtSeparator, statsPortFlag } from './cairn-launcher.ts';
import type { CairnStatsResponse, TieringStats } from './cairn-stats.ts';

async function run(argv: string[]): Promise<void> {
  const { own, serveArgs } = splitAtSeparator(argv);
  const { values } = parseArgs({ args: own, options: { 'stats-port': { type: 'string' } } });
  const statsPort = statsPortFlag(values['stats-port']);
  const server = await startServer(await parseServeFlags(serveArgs));
  await serveSideListener('cairn-with-stats', server, statsPort, '/stats', () => {
    // Assigning checks at compile time that the server's stats still have the shape benchmarks read.
    const tiering: TieringStats = server.tiering.stats();
    const body: CairnStatsResponse = { tiering };
    return body;
  });
}

runLauncher('cairn-with-stats', run);
