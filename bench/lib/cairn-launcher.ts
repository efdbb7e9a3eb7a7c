/**
 * What the in-process Cairn launchers (bench/lib/cairn-with-stats.ts, bench/lib/cairn-timed-store.ts)
 * share: their command line `<own flags> -- <cairn serve flags>`, the serve flags parsed by the
 * CLI's own commander definition, and one side HTTP listener answering a single `GET` path with
 * JSON. The side listener is idle unless asked, so it costs the measured server nothing while a
 * benchmark runs. Stops cleanly on SIGTERM / SIGINT, like `cairn serve`.
 */
import { createServer } from 'node:http';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { serveCommand } from '../../src/cli/serve-command.ts';
import type { RunningServer } from '../../src/server.ts';

/** The launcher's own arguments (before `--`) and the `cairn serve` ones (after it). */
export function splitAtSeparator(argv: readonly string[]): { own: string[]; serveArgs: string[] } {
  const separator = argv.indexOf('--');
  return { own: separator === -1 ? [...argv] : argv.slice(0, separator), serveArgs: separator === -1 ? [] : argv.slice(separator + 1) };
}

/** `--stats-port` as a port number; throws when missing or out of 1-65535. */
export function statsPortFlag(text: string | undefined): number {
  const statsPort = Number(text);
  if (!Number.isInteger(statsPort) || statsPort <= 0 || statsPort > 65_535) throw new Error('--stats-port is required (1-65535)');
  return statsPort;
}

/** `cairn serve` flags as a {@link ServeConfig}, with the CLI's definitions, defaults and validation (throws on a bad flag). */
export async function parseServeFlags(serveArgs: readonly string[]): Promise<ServeConfig> {
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
  await command.parseAsync([...serveArgs], { from: 'user' });
  if (config === undefined) throw new Error('serve flags were not parsed');
  return config;
}

/**
 * Listens on 127.0.0.1:`statsPort` answering `GET <path>` with `answer()` as JSON (404 otherwise),
 * prints `ready <server url> stats http://127.0.0.1:<statsPort><path>`, and closes both on
 * SIGTERM / SIGINT, then exits (1 if the server's close failed). `name` prefixes its stderr lines.
 */
export async function serveSideListener(name: string, server: RunningServer, statsPort: number, path: string, answer: () => unknown): Promise<void> {
  const statsListener = createServer((request, response) => {
    if (request.method !== 'GET' || request.url !== path) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer()));
  });
  await new Promise<void>((resolve, reject) => {
    statsListener.once('error', reject);
    statsListener.listen(statsPort, '127.0.0.1', resolve);
  });
  process.stdout.write(`ready ${server.url} stats http://127.0.0.1:${statsPort}${path}\n`);

  const stop = (signal: string) => {
    process.stderr.write(`${name}: ${signal} received, shutting down\n`);
    statsListener.close();
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`${name}: shutdown failed: ${(error as Error).stack}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/** Runs a launcher's `run` on this process's arguments; on failure prints the stack under `name` and exits 1. */
export function runLauncher(name: string, run: (argv: string[]) => Promise<void>): void {
  run(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${name}: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
