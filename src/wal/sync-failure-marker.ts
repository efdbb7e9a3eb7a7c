/**
 * The record of a failed WAL fsync, kept until the machine reboots.
 *
 * Why: after a failed `fdatasync`/`fsync` Linux marks the dirty pages clean but keeps their new
 * contents in the page cache, and the next fsync reports success without writing them. A
 * restart without a reboot would then reread those pages, replay and serve records that are not
 * on disk, and even recovery's own fsyncs (recovery.ts) could not tell. So the first fsync
 * failure writes `<wal dir>/sync-failed` holding the boot id (`WalFs.bootId`), and `openWal`
 * refuses to start while the marker names the running boot: a reboot drops the page cache, so
 * what recovery reads afterwards is what the disk holds. On the first start of a later boot
 * recovery fsyncs everything it replays and then removes the marker.
 *
 * The marker is written without an fsync on purpose: it only has to outlive the process (the page
 * cache keeps it) until the reboot that makes it unnecessary; an fsync could fail on the same disk.
 * A process killed between the failed fsync and the marker write is the one window left open.
 */
import { join } from 'node:path';
import { WalNotDurableError } from './errors.ts';
import { writeFully, type WalFileHandle, type WalFs } from './wal-fs.ts';
import type { WalLogger } from './wal-logger.ts';

/** File name of the marker in the WAL directory (recovery ignores it as a WAL file). */
export const SYNC_FAILED_MARKER_NAME = 'sync-failed';

interface SyncFailedMarker {
  /** `WalFs.bootId()` when the fsync failed; `null` where the OS has no boot id. */
  bootId: string | null;
  /** The operation and file that failed, and the error, for the operator. */
  operation: string;
  file: string;
  error: string;
}

/**
 * Wraps `fs` so that every failed `datasync`, `syncDir`, `syncFile` or syncing `truncateFile`
 * first records the failure in the marker (best effort: a failed marker write is logged), then
 * rethrows the original error.
 */
export function recordingSyncFailures(fs: WalFs, dir: string, logger: WalLogger): WalFs {
  let recorded: Promise<void> | undefined;
  const record = async (operation: string, file: string, err: unknown): Promise<void> => {
    recorded ??= writeMarker(fs, dir, operation, file, err).catch((markerErr: unknown) =>
      logger.warn({ err: markerErr, dir }, 'WAL: could not record the fsync failure; do not restart before a reboot'),
    );
    await recorded;
  };
  const guarded = async <T>(operation: string, file: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err) {
      await record(operation, file, err);
      throw err;
    }
  };
  const wrapHandle = (path: string, fh: WalFileHandle): WalFileHandle => ({
    writev: (buffers) => fh.writev(buffers),
    datasync: () => guarded('fdatasync', path, () => fh.datasync()),
    close: () => fh.close(),
  });
  return {
    ...fs,
    openFile: async (path, flags) => wrapHandle(path, await fs.openFile(path, flags)),
    truncateFile: (path, lengthBytes, sync) =>
      sync ? guarded('truncate+fsync', path, () => fs.truncateFile(path, lengthBytes, true)) : fs.truncateFile(path, lengthBytes, false),
    syncDir: (path) => guarded('fsync directory', path, () => fs.syncDir(path)),
    syncFile: (path) => guarded('fdatasync', path, () => fs.syncFile(path)),
  };
}

async function writeMarker(fs: WalFs, dir: string, operation: string, file: string, err: unknown): Promise<void> {
  const marker: SyncFailedMarker = {
    bootId: (await fs.bootId()) ?? null,
    operation,
    file,
    error: err instanceof Error ? err.message : String(err),
  };
  const body = Buffer.from(`${JSON.stringify(marker)}\n`);
  const fh = await fs.openFile(join(dir, SYNC_FAILED_MARKER_NAME), 'w');
  try {
    await writeFully(fh, [body], body.length);
  } finally {
    await fh.close();
  }
}

/**
 * Checks the marker before recovery. Resolves `true` if a marker from an earlier boot is present
 * (recovery removes it once everything it replays is fsynced), `false` if there is none.
 * @throws WalNotDurableError if the marker names the running boot, or either boot id is unknown.
 */
export async function checkSyncFailureMarker(fs: WalFs, dir: string): Promise<boolean> {
  const path = join(dir, SYNC_FAILED_MARKER_NAME);
  let text: string;
  try {
    text = (await fs.readFile(path)).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  let marker: Partial<SyncFailedMarker> = {};
  try {
    marker = JSON.parse(text) as Partial<SyncFailedMarker>;
  } catch {
    // A marker cut short by a crash still records a failure; its boot is unknown.
  }
  const bootId = await fs.bootId();
  if (bootId !== undefined && typeof marker.bootId === 'string' && marker.bootId !== bootId) return true;
  const what = `${marker.operation ?? 'an fsync'} of ${marker.file ?? 'a WAL file'} failed (${marker.error ?? 'error unknown'})`;
  throw new WalNotDurableError(
    bootId === undefined || typeof marker.bootId !== 'string'
      ? `${what}, and the boot of that failure cannot be compared with this one. The page cache may hold WAL data that never reached the disk. ` +
          `Reboot the machine, then delete ${path} and start again.`
      : `${what} earlier in this boot (${bootId}). The kernel may still cache WAL data that never reached the disk, so a restart now could serve ` +
          `records a power loss would lose. Reboot the machine (that drops the page cache) and start again; recovery then replays what the disk holds.`,
  );
}
