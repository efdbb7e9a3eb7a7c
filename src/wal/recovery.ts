/**
 * Opening the WAL directory after a start or a crash: load the newest checkpoint, repair a torn
 * final write, hand back the records to replay, and start a writer on a fresh file.
 *
 * Part of DESIGN.md "Key decisions: Acknowledge on the local WAL": an acknowledged append is in
 * a durable frame, so it is replayed; a crash can only tear the frames of the last, unacknowledged
 * batch, at the end of the last file. Anything else that is damaged is corruption and stops
 * the start rather than silently losing acknowledged records.
 */
import { dirname, join } from 'node:path';
import { systemClock, type WallClock } from '../clock.ts';
import { readCheckpointFile, deleteObsoleteFiles } from './checkpoint.ts';
import { WalCorruptError, WalNotDurableError } from './errors.ts';
import { decodeFrames, decodeFramesDetached, scanFrames } from './record-codec.ts';
import { checkSyncFailureMarker, recordingSyncFailures, SYNC_FAILED_MARKER_NAME } from './sync-failure-marker.ts';
import { checkpointFileName, parseWalDir, walFilePath } from './wal-files.ts';
import { WalFileBytes, type WalReadSync } from './wal-file-bytes.ts';
import { nodeWalFs, type WalFs } from './wal-fs.ts';
import { silentWalLogger, type WalLogger } from './wal-logger.ts';
import { WalWriter, type WalCommitInfo, type WalDurability } from './wal-writer.ts';

export interface OpenWalOptions {
  /** WAL directory; created if absent. Holds only this WAL's files. */
  dir: string;
  durability: WalDurability;
  /** See `WalWriterOptions.walFileBytesMax`. Default 64 MiB. */
  walFileBytesMax?: number;
  /** See `WalWriterOptions.queueBytesMax`. Default 256 MiB. */
  queueBytesMax?: number;
  /** Receives the torn-tail warning and the replay summary. Default: silent. */
  logger?: WalLogger;
  onCommit?: (info: WalCommitInfo) => void;
  /** File-system operations (fault injection). Default: node:fs. */
  fs?: WalFs;
  /** Monotonic clock for durations. Default: `performance.now()`. */
  clock?: WallClock;
  /**
   * Replay leaves the `data` of large appends (attached frames, record-codec.ts) in the WAL files:
   * such a record's `data` is a `WalFileBytes` (`length`, `load()`), read back and checked again
   * when first needed. Every file is still read and every checksum verified before its records
   * are yielded, through one reused buffer instead of a buffer per file that the records keep.
   * Only with a `fs` that has `readSync` (node:fs does; otherwise ignored). Default false.
   */
  deferData?: boolean;
}

export interface OpenedWal {
  /** Appends go to a new file, after every file that existed at open. */
  writer: WalWriter;
  /** The newest checkpoint's snapshot; `undefined` when there is no checkpoint (then
   * `checkpointWalSeqStart` is `undefined` too). Apply it before the replayed records. */
  checkpoint: unknown;
  /** First WAL file seq the checkpoint does not cover. */
  checkpointWalSeqStart: number | undefined;
  /**
   * The records after the checkpoint, in append order, reading one WAL file at a time. Covers
   * the files that existed at open (not the new writer's). Call before appending. Throws
   * `WalCorruptError` (file, offset) at a bad frame, before yielding any record of that file.
   */
  replay(): AsyncIterable<unknown>;
}

/**
 * Opens (or creates) the WAL in `options.dir`.
 *
 * Steps: refuse to start if a WAL fsync failed earlier in this boot (sync-failure-marker.ts);
 * remove `*.tmp` leftovers of unfinished checkpoints; load the newest checkpoint
 * `checkpoint-<S>.ckpt`; check that WAL files S, S+1, … are all present (S = 1 without a
 * checkpoint); check the last WAL file, and if its end is a torn write (incomplete frame, bad
 * checksum, bad length), truncate it to the last good frame and log a warning with file, offset
 * and discarded bytes; with `'wal'` durability fdatasync the checkpoint and every WAL file to
 * replay and fsync the directory (a killed process leaves acknowledged-looking records that
 * only the page cache holds: they must be on disk before anything replayed is served); only
 * then delete the files the checkpoint made obsolete; create the writer on file
 * max(last + 1, S), so no recovered file is ever appended to.
 *
 * @throws WalCorruptError if the newest checkpoint is damaged (no fallback to an older one:
 *   the WAL files it relied on may be deleted) or a WAL file is missing.
 * @throws WalNotDurableError if a WAL fsync failed earlier in this boot, or an fsync at
 *   recovery fails: the server must not start.
 * @throws the I/O error if the directory cannot be read or the new file cannot be created.
 */
export async function openWal(options: OpenWalOptions): Promise<OpenedWal> {
  const { dir, durability } = options;
  const logger = options.logger ?? silentWalLogger;
  const fs = recordingSyncFailures(options.fs ?? nodeWalFs, dir, logger);
  const clock: WallClock = options.clock ?? { nowMs: () => systemClock.monotonicMs() };
  const sync = durability === 'wal';
  const durably = async (what: string, run: () => Promise<void>): Promise<void> => {
    if (!sync) return;
    try {
      await run();
    } catch (err) {
      throw new WalNotDurableError(`WAL recovery could not make ${what} durable; refusing to start`, { cause: err });
    }
  };

  await fs.mkdir(dir);
  // Both of two racing creators fsync: the entry is durable only once one fsync after it returned.
  await durably(`the directory entry of ${dir}`, () => fs.syncDir(dirname(dir)));
  const markerFromEarlierBoot = await checkSyncFailureMarker(fs, dir);
  const listing = parseWalDir(await fs.readdir(dir));
  for (const name of listing.tmpNames) {
    await fs.unlink(join(dir, name)).then(
      () => logger.info({ file: join(dir, name) }, 'WAL: removed unfinished checkpoint'),
      (err: unknown) => logger.warn({ file: join(dir, name), err }, 'WAL: could not remove unfinished checkpoint'),
    );
  }

  const checkpointWalSeqStart = listing.checkpointSeqs.at(-1);
  let checkpoint: unknown;
  if (checkpointWalSeqStart !== undefined) {
    checkpoint = await readCheckpointFile(fs, dir, checkpointWalSeqStart);
    const path = join(dir, checkpointFileName(checkpointWalSeqStart));
    await durably(path, () => fs.syncFile(path));
  }
  const walSeqStart = checkpointWalSeqStart ?? 1;

  const replaySeqs = listing.walSeqs.filter((seq) => seq >= walSeqStart);
  replaySeqs.forEach((seq, i) => {
    if (seq !== walSeqStart + i) {
      throw new WalCorruptError(
        walFilePath(dir, walSeqStart + i),
        0,
        `WAL file missing (found ${walFilePath(dir, seq)} instead); ${checkpointWalSeqStart === undefined ? 'no checkpoint' : `checkpoint starts at ${walSeqStart}`}`,
      );
    }
  });

  const lastSeq = replaySeqs.at(-1);
  let replayBytes = 0;
  /** The last file as read (and repaired): replay uses it instead of reading it again. */
  let lastFile: Buffer | undefined;
  for (const seq of replaySeqs) {
    const path = walFilePath(dir, seq);
    if (seq === lastSeq) {
      lastFile = await repairTornTail(fs, path, durability, logger);
      replayBytes += lastFile.length;
    } else {
      replayBytes += await fs.fileBytes(path);
    }
    // Every file, not only the last: after two crashes the unsynced one is no longer last.
    await durably(path, () => fs.syncFile(path));
  }
  // The names of the checkpoint and the WAL files; also orders the deletes below after them.
  await durably(dir, () => fs.syncDir(dir));

  // Left by a crash between writing a checkpoint and deleting what it made obsolete.
  const staleFileCount =
    listing.walSeqs.filter((seq) => seq < walSeqStart).length +
    listing.checkpointSeqs.filter((seq) => seq < walSeqStart).length;
  if (staleFileCount > 0) await deleteObsoleteFiles({ fs, dir, walSeqStart, logger });
  if (markerFromEarlierBoot) {
    // Everything replayed is now on disk as read after the reboot; the new writer's directory
    // fsync makes the removal durable.
    await fs.unlink(join(dir, SYNC_FAILED_MARKER_NAME));
    logger.warn({ dir }, 'WAL: a WAL fsync had failed in an earlier boot; recovered from what the disk holds');
  }

  const writer = await WalWriter.create({
    dir,
    durability,
    fileSeqFirst: Math.max((listing.walSeqs.at(-1) ?? 0) + 1, walSeqStart),
    walFileBytesMax: options.walFileBytesMax,
    queueBytesMax: options.queueBytesMax,
    walBytesSinceCheckpoint: replayBytes,
    onCommit: options.onCommit,
    logger,
    fs,
    clock,
  });

  const readSync = options.deferData === true ? fs.readSync?.bind(fs) : undefined;
  const corrupt = (seq: number, problem: { kind: string; offsetBytes: number; detail: string }): WalCorruptError => {
    const where = seq === lastSeq ? 'in the last file after its torn tail was repaired' : 'in a WAL file that is not the last';
    return new WalCorruptError(walFilePath(dir, seq), problem.offsetBytes, `${problem.kind} frame (${problem.detail}) ${where}`);
  };

  /** `replay` with `deferData`: each file is read into one reused buffer and checked, then its records yielded. */
  async function* replayDeferred(readSync: WalReadSync): AsyncGenerator<unknown> {
    const startMs = clock.nowMs();
    let recordCount = 0;
    let reused: Buffer | undefined;
    for (const seq of replaySeqs) {
      const path = walFilePath(dir, seq);
      let file: Buffer;
      if (seq === lastSeq && lastFile !== undefined) {
        file = lastFile;
      } else {
        const fileBytes = await fs.fileBytes(path);
        if (reused === undefined || reused.length < fileBytes) reused = Buffer.allocUnsafeSlow(fileBytes);
        file = reused.subarray(0, readSync(path, 0, reused.subarray(0, fileBytes)));
      }
      const decoded = decodeFramesDetached(file);
      if (decoded.problem) throw corrupt(seq, decoded.problem);
      for (const frame of decoded.frames) {
        const { attached } = frame;
        if (attached !== undefined) {
          const { dataOffsetBytes, dataBytes, headCrc, frameCrc } = attached;
          (frame.record as { data?: WalFileBytes }).data = new WalFileBytes(readSync, path, dataOffsetBytes, dataBytes, headCrc, frameCrc);
        }
        recordCount++;
        yield frame.record;
      }
    }
    // The last file was read whole before the writer started; nothing keeps it once replayed.
    lastFile = undefined;
    logger.info(
      { recordCount, fileCount: replaySeqs.length, durationMs: clock.nowMs() - startMs, dir, deferred: true },
      'WAL replayed',
    );
  }

  async function* replay(): AsyncGenerator<unknown> {
    if (readSync !== undefined) {
      yield* replayDeferred(readSync);
      return;
    }
    const startMs = clock.nowMs();
    let recordCount = 0;
    const read = (index: number): Promise<Buffer> | undefined => {
      const seq = replaySeqs[index];
      if (seq === undefined) return undefined;
      if (seq === lastSeq && lastFile !== undefined) return Promise.resolve(lastFile);
      const reading = fs.readFile(walFilePath(dir, seq));
      reading.catch(() => {}); // awaited below; a failure must not be unhandled meanwhile
      return reading;
    };
    let next = read(0);
    for (const [index, seq] of replaySeqs.entries()) {
      const file = await next!;
      // The next file is read from disk while this one is decoded and applied.
      next = read(index + 1);
      // The last file was scanned (every checksum) when its torn tail was repaired.
      const decoded = decodeFrames(file, undefined, file === lastFile);
      if (decoded.problem) throw corrupt(seq, decoded.problem);
      for (const frame of decoded.frames) {
        recordCount++;
        yield frame.record;
      }
    }
    logger.info(
      { recordCount, fileCount: replaySeqs.length, durationMs: clock.nowMs() - startMs, dir },
      'WAL replayed',
    );
  }

  return { writer, checkpoint, checkpointWalSeqStart, replay };
}

/**
 * Truncates a torn final write off the last WAL file. Returns the file's (new) contents.
 * Any bad frame counts as torn here: an incomplete or garbled tail is what a crash during the
 * last, unacknowledged write leaves (including zero-filled space, caught as a bad length).
 */
async function repairTornTail(fs: WalFs, path: string, durability: WalDurability, logger: WalLogger): Promise<Buffer> {
  const buf = await fs.readFile(path);
  const scan = scanFrames(buf);
  if (!scan.problem) return buf;
  const discardedBytes = buf.length - scan.validEndBytes;
  await fs.truncateFile(path, scan.validEndBytes, durability === 'wal');
  logger.warn(
    {
      file: path,
      offsetBytes: scan.problem.offsetBytes,
      discardedBytes,
      reason: scan.problem.kind,
      detail: scan.problem.detail,
      framesKept: scan.frameCount,
    },
    'WAL: discarded torn write at the end of the last file',
  );
  return buf.subarray(0, scan.validEndBytes);
}
