/**
 * A child `cairn serve` whose WAL file operations are observed, for the process-level test of
 * recovery's fsyncs (test/fault/recovery-fsync.test.ts). Run with Node 24:
 *   node wal-hooked-server.ts <dataDir> <mode> [stallMarker]
 * - mode `stall`: once `stallMarker` exists, the next WAL fdatasync prints `STALLED <file>` and
 *   never returns (the record it would make durable is written, i.e. in the page cache, and
 *   unacknowledged); the parent then kills the process with SIGKILL.
 * - mode `record`: every fsync/fdatasync of a WAL file or directory prints `SYNC <path>`.
 * Prints `LISTENING <url>` once the server answers.
 */
import { existsSync } from 'node:fs';
import pino from 'pino';
import { serveConfigDefaults } from '../../../src/config/serve-config.ts';
import { startServer } from '../../../src/server.ts';
import { nodeWalFs, type WalFs } from '../../../src/wal/index.ts';

const [dataDir, mode, stallMarker] = process.argv.slice(2);
const say = (line: string) => process.stdout.write(`${line}\n`);

const walFs: WalFs = {
  ...nodeWalFs,
  async openFile(path, flags) {
    const handle = await nodeWalFs.openFile(path, flags);
    return {
      writev: (buffers) => handle.writev(buffers),
      close: () => handle.close(),
      async datasync() {
        if (mode === 'stall' && stallMarker !== undefined && existsSync(stallMarker)) {
          say(`STALLED ${path}`);
          await new Promise<never>(() => {});
        }
        if (mode === 'record') say(`SYNC ${path}`);
        await handle.datasync();
      },
    };
  },
  async syncFile(path) {
    if (mode === 'record') say(`SYNC ${path}`);
    await nodeWalFs.syncFile(path);
  },
  async syncDir(dir) {
    if (mode === 'record') say(`SYNC ${dir}`);
    await nodeWalFs.syncDir(dir);
  },
  async truncateFile(path, lengthBytes, sync) {
    if (mode === 'record' && sync) say(`SYNC ${path}`);
    await nodeWalFs.truncateFile(path, lengthBytes, sync);
  },
};

const server = await startServer(
  { ...serveConfigDefaults(), host: '127.0.0.1', port: 0, dataDir, durability: 'wal', logLevel: 'warn' },
  { logger: pino({ level: 'warn' }, pino.destination(2)), walFs },
);
say(`LISTENING ${server.url}`);
