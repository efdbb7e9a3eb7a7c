/**
 * Checkpoint files. `checkpoint-<S>.ckpt` means "the state is this snapshot; replay WAL files
 * with seq ≥ S on top of it". The file is two frames (record-codec.ts): a header
 * `{ formatVersion: 1, walSeqStart: S }` and the snapshot.
 *
 * Crash-safe order (the writer drives it, see WalWriter.checkpoint):
 *   1. every record submitted before the snapshot is durable in WAL files ≤ S−1, and file S
 *      exists (created and directory-fsynced);
 *   2. write `<name>.tmp`, fdatasync, rename to `<name>`, fsync the directory;
 *   3. only then delete WAL files < S and checkpoints < S.
 * A crash before the rename leaves the previous checkpoint and every WAL file in place (the
 * `.tmp` is ignored and removed at the next open); a crash after it leaves stale files below S
 * that the next open deletes.
 */
import { join } from 'node:path';
import { encodeFrame, decodeFrames } from './record-codec.ts';
import { WalCorruptError } from './errors.ts';
import { CHECKPOINT_PAYLOAD_BYTES_MAX } from './wal-limits.ts';
import { checkpointFileName, checkpointTmpFileName, parseWalDir, walFileName } from './wal-files.ts';
import { writeFully, type WalFs } from './wal-fs.ts';
import type { WalLogger } from './wal-logger.ts';

const CHECKPOINT_FORMAT_VERSION = 1;

interface CheckpointHeader {
  formatVersion: number;
  walSeqStart: number;
}

/**
 * Encodes a snapshot as a frame (payload limit `CHECKPOINT_PAYLOAD_BYTES_MAX`).
 * @throws WalRecordTooLargeError, or msgpackr's error for an unencodable value.
 */
export function encodeSnapshotFrame(snapshot: unknown): Buffer {
  return encodeFrame(snapshot, CHECKPOINT_PAYLOAD_BYTES_MAX);
}

/**
 * Atomically writes `checkpoint-<walSeqStart>.ckpt` from an encoded snapshot frame (step 2
 * above). With `sync` false (memory durability) the fsyncs are skipped. On failure the `.tmp`
 * is removed if possible and the I/O error is rethrown; no existing file is changed.
 */
export async function writeCheckpointFile(options: {
  fs: WalFs;
  dir: string;
  walSeqStart: number;
  snapshotFrame: Buffer;
  sync: boolean;
}): Promise<void> {
  const { fs, dir, walSeqStart, snapshotFrame, sync } = options;
  const header: CheckpointHeader = { formatVersion: CHECKPOINT_FORMAT_VERSION, walSeqStart };
  const headerFrame = encodeFrame(header);
  const tmpPath = join(dir, checkpointTmpFileName(walSeqStart));
  try {
    const fh = await fs.openFile(tmpPath, 'w');
    try {
      await writeFully(fh, [headerFrame, snapshotFrame], headerFrame.length + snapshotFrame.length);
      if (sync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmpPath, join(dir, checkpointFileName(walSeqStart)));
  } catch (err) {
    await fs.unlink(tmpPath).catch(() => {});
    throw err;
  }
  if (sync) await fs.syncDir(dir);
}

/**
 * Reads and verifies `checkpoint-<walSeqStart>.ckpt`, returning the snapshot.
 * @throws WalCorruptError naming the file if a frame is bad, the frame count is not 2, or the
 *   header does not match the file name.
 */
export async function readCheckpointFile(fs: WalFs, dir: string, walSeqStart: number): Promise<unknown> {
  const path = join(dir, checkpointFileName(walSeqStart));
  const buf = await fs.readFile(path);
  const decoded = decodeFrames(buf, CHECKPOINT_PAYLOAD_BYTES_MAX);
  if (decoded.problem) {
    const { kind, offsetBytes, detail } = decoded.problem;
    throw new WalCorruptError(path, offsetBytes, `checkpoint frame ${kind} (${detail})`);
  }
  if (decoded.frames.length !== 2) {
    throw new WalCorruptError(path, 0, `checkpoint has ${decoded.frames.length} frames, expected 2`);
  }
  const header = decoded.frames[0]!.record as Partial<CheckpointHeader> | null;
  if (header?.formatVersion !== CHECKPOINT_FORMAT_VERSION || header.walSeqStart !== walSeqStart) {
    throw new WalCorruptError(path, 0, `checkpoint header ${JSON.stringify(header)} does not match the file name`);
  }
  return decoded.frames[1]!.record;
}

/**
 * Deletes WAL files and checkpoints with seq < `walSeqStart` (step 3 above): everything the
 * checkpoint `walSeqStart` makes obsolete. A failed unlink is logged and skipped; the next
 * checkpoint or open retries it. Returns the number of files deleted.
 */
export async function deleteObsoleteFiles(options: {
  fs: WalFs;
  dir: string;
  walSeqStart: number;
  logger: WalLogger;
}): Promise<number> {
  const { fs, dir, walSeqStart, logger } = options;
  const listing = parseWalDir(await fs.readdir(dir));
  const names = [
    ...listing.checkpointSeqs.filter((seq) => seq < walSeqStart).map(checkpointFileName),
    ...listing.walSeqs.filter((seq) => seq < walSeqStart).map(walFileName),
  ];
  let deletedCount = 0;
  for (const name of names) {
    try {
      await fs.unlink(join(dir, name));
      deletedCount++;
    } catch (err) {
      logger.warn({ file: join(dir, name), err }, 'WAL: could not delete obsolete file; will retry');
    }
  }
  return deletedCount;
}
