/**
 * Launches the upstream reference server (`@durable-streams/server`) as its own process, so the
 * benchmarks can run it exactly like Cairn: one child process per cell, pinned to a core, killed by PID.
 *
 *   node bench/reference-server.ts --port 4437 [--data-dir DIR] [--host 127.0.0.1]
 *
 * With `--data-dir` the reference runs file-backed (append-only logs + LMDB, fsync per append);
 * without it, in memory. It serves streams at any URL path. Prints `ready <url>` once listening and
 * stops cleanly on SIGTERM / SIGINT.
 */
import { parseArgs } from 'node:util';
import { DurableStreamTestServer } from '@durable-streams/server';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4437' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  process.stderr.write(`reference-server: bad --port ${values.port}\n`);
  process.exit(2);
}

const server = new DurableStreamTestServer({
  port,
  host: values.host,
  ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
});
await server.start();
process.stdout.write(`ready ${server.url}\n`);

function stop(signal: string): void {
  process.stderr.write(`reference-server: ${signal} received, shutting down\n`);
  server.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`reference-server: stop failed: ${(error as Error).stack}\n`);
      process.exit(1);
    },
  );
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));
