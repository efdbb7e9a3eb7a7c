/**
 * The WAL writer: one append-only file at a time, shared by all streams, with group commit.
 * (Over ~400 lines on purpose: the batch loop, rotation, checkpoint cut and failure state share
 * one set of invariants that is easier to check in one file than across several.)
 *
 * Implements DESIGN.md "Key decisions: Acknowledge on the local WAL": an append is acknowledged
 * (its promise resolves) only once its frame is written and the file fdatasync'ed, and many
 * appends share one write and one fdatasync. `append` encodes the record synchronously and puts
 * it in the open batch; one write loop takes the open batch, writes it with a single `writev`,
 * calls `datasync` once, and resolves every record in it. Appends arriving while that is in
 * flight form the next batch, so the batch size adapts to the disk's fsync latency.
 *
 * Guarantees:
 * - records are written, made durable and resolved in submission (call) order;
 * - a resolved append is durable (with `durability: 'wal'`), a rejected one was not acknowledged
 *   and must be treated as not written (it may or may not be on disk after a crash);
 * - after a write, fsync or rotation error the writer is failed: that batch and everything
 *   queued reject with `WalWriteError`, and so does every later append.
 */
import { systemClock, type WallClock } from '../clock.ts';
import { encodeQueuedFrame } from './queued-frame.ts';
import { encodeSnapshotFrame, writeCheckpointFile, deleteObsoleteFiles } from './checkpoint.ts';
import {
  WalCheckpointInProgressError,
  WalClosedError,
  WalWriteError,
} from './errors.ts';
import { checkpointFileName, walFilePath } from './wal-files.ts';
import { nodeWalFs, writeFully, type WalFileHandle, type WalFs } from './wal-fs.ts';
import { silentWalLogger, type WalLogger } from './wal-logger.ts';
import { WAL_FILE_BYTES_MAX_DEFAULT, WAL_QUEUE_BYTES_MAX_DEFAULT } from './wal-limits.ts';

/**
 * `'wal'`: acknowledge after fdatasync (survives power loss). `'memory'`: write but never
 * fsync — acknowledged records survive a process crash (they are in the page cache) but not an
 * OS crash or power loss. For development and tests only.
 */
export type WalDurability = 'wal' | 'memory';

/** Reported after each committed batch. */
export interface WalCommitInfo {
  recordCount: number;
  /** Frame bytes written by this batch. */
  bytes: number;
  /** Duration of the batch's fdatasync, ms (0 with `durability: 'memory'`). */
  fsyncMs: number;
  /** Sequence number of the file the batch went to. */
  fileSeq: number;
}

export interface WalWriterOptions {
  dir: string;
  durability: WalDurability;
  /** Sequence number of the first file to create; that file must not exist. */
  fileSeqFirst: number;
  /** Rotate to a new file after a batch that brings the current file to this size. Default 64 MiB. */
  walFileBytesMax?: number;
  /** Bound on encoded bytes accepted but not yet durable; beyond it appends fail with
   * `WalOverloadedError`. Default 256 MiB. */
  queueBytesMax?: number;
  /** Initial value of `walBytesSinceCheckpoint` (recovery passes the bytes it replayed). */
  walBytesSinceCheckpoint?: number;
  /** Called after each batch with records is durable; for metrics and tests. Must not throw. */
  onCommit?: (info: WalCommitInfo) => void;
  logger?: WalLogger;
  /** File-system operations; tests inject failures here. Default: node:fs. */
  fs?: WalFs;
  /** Monotonic clock for durations. Default: `performance.now()`. */
  clock?: WallClock;
}

interface Batch {
  buffers: Buffer[];
  bytes: number;
  recordCount: number;
  /** Shared by every append in the batch: they commit or fail together. */
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
  /** Set by `checkpoint()`: after this batch, move to a new file and report the last file
   * seq holding records of this batch or earlier. */
  seal: PromiseWithResolvers<number> | undefined;
}

const monotonicClock: WallClock = { nowMs: () => systemClock.monotonicMs() };
const ignore = (): void => {};

export class WalWriter {
  readonly dir: string;
  readonly durability: WalDurability;
  readonly walFileBytesMax: number;
  readonly queueBytesMax: number;

  readonly #fs: WalFs;
  readonly #logger: WalLogger;
  readonly #clock: WallClock;
  readonly #onCommit: ((info: WalCommitInfo) => void) | undefined;

  #file: WalFileHandle;
  #fileSeq: number;
  #fileBytes = 0;

  /** Batches not yet taken by the write loop, in order; the last may be `#openBatch`. */
  #queue: Batch[] = [];
  /** The batch new appends join; undefined once the loop took it or a checkpoint sealed it. */
  #openBatch: Batch | undefined;
  #queuedBytes = 0;
  #loopActive = false;
  #loopDone: Promise<void> = Promise.resolve();

  #failure: WalWriteError | undefined;
  #closePromise: Promise<void> | undefined;
  #checkpointRun: Promise<void> | undefined;
  #walBytesSinceCheckpoint: number;

  /**
   * Creates file `fileSeqFirst` (exclusively: a writer never appends to an existing file) and
   * fsyncs the directory (with `'wal'` durability).
   * @throws the I/O error if the file cannot be created.
   */
  static async create(options: WalWriterOptions): Promise<WalWriter> {
    const fs = options.fs ?? nodeWalFs;
    const file = await fs.openFile(walFilePath(options.dir, options.fileSeqFirst), 'wx');
    if (options.durability === 'wal') {
      try {
        await fs.syncDir(options.dir);
      } catch (err) {
        await file.close().catch(ignore);
        throw err;
      }
    }
    return new WalWriter(options, fs, file);
  }

  private constructor(options: WalWriterOptions, fs: WalFs, file: WalFileHandle) {
    this.dir = options.dir;
    this.durability = options.durability;
    this.walFileBytesMax = options.walFileBytesMax ?? WAL_FILE_BYTES_MAX_DEFAULT;
    this.queueBytesMax = options.queueBytesMax ?? WAL_QUEUE_BYTES_MAX_DEFAULT;
    if (!(this.walFileBytesMax > 0) || !(this.queueBytesMax > 0)) {
      throw new RangeError('walFileBytesMax and queueBytesMax must be positive');
    }
    this.#fs = fs;
    this.#logger = options.logger ?? silentWalLogger;
    this.#clock = options.clock ?? monotonicClock;
    this.#onCommit = options.onCommit;
    this.#file = file;
    this.#fileSeq = options.fileSeqFirst;
    this.#walBytesSinceCheckpoint = options.walBytesSinceCheckpoint ?? 0;
  }

  /** Encoded bytes accepted but not yet durable (the quantity `queueBytesMax` bounds). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Frame bytes submitted since the last `checkpoint()` call (or replayed at open): what a
   * restart would replay. The caller checkpoints when this grows large. */
  get walBytesSinceCheckpoint(): number {
    return this.#walBytesSinceCheckpoint;
  }

  /** Sequence number of the file being written. */
  get fileSeq(): number {
    return this.#fileSeq;
  }

  get checkpointInProgress(): boolean {
    return this.#checkpointRun !== undefined;
  }

  /** The error that stopped the writer, if a write failed. */
  get failure(): WalWriteError | undefined {
    return this.#failure;
  }

  /**
   * Appends one record. The record is encoded before this returns; only a large `data` buffer
   * (record-codec.ts: attached frames) is written from the caller's memory, so it must not be
   * modified afterwards (stream data never is: it is immutable once appended). Resolves when
   * the record is durable (see `WalDurability`).
   * Rejects (never throws) with:
   * - `WalOverloadedError` (503, retryable) if `queueBytesMax` would be exceeded — nothing queued;
   * - `WalWriteError` (503) if the write or fsync failed, or the writer failed earlier;
   * - `WalClosedError` after `close()`;
   * - `WalRecordTooLargeError` (413) or msgpackr's error if the record cannot be encoded.
   */
  append(record: unknown): Promise<void> {
    try {
      return this.enqueue(record);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `append`, but a refused record THROWS synchronously (nothing was queued): the caller can apply
   * the record to its state right after this returns, knowing the WAL holds it in order, and never
   * applies one the WAL refused. The returned promise resolves when the record is durable and
   * rejects with `WalWriteError` if writing it fails. Throws `WalWriteError` (failed earlier),
   * `WalClosedError`, `WalOverloadedError`, `WalRecordTooLargeError` or an encoding error.
   */
  enqueue(record: unknown): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (this.#closePromise) throw new WalClosedError();
    const { parts, frameBytes } = encodeQueuedFrame(record, this.#queuedBytes, this.queueBytesMax);
    const batch = this.#openBatch ?? this.#newBatch();
    for (const part of parts) batch.buffers.push(part);
    batch.bytes += frameBytes;
    batch.recordCount++;
    this.#queuedBytes += frameBytes;
    this.#walBytesSinceCheckpoint += frameBytes;
    return batch.promise;
  }

  /**
   * Starts a checkpoint of `snapshot`, which must reflect exactly the records submitted to
   * `append` so far. Synchronously (before returning) it encodes the snapshot and seals the
   * open batch: every record submitted before this call lands in WAL files ≤ N, every later one
   * in files ≥ N+1. Once files ≤ N are durable and file N+1 exists, it writes
   * `checkpoint-<N+1>.ckpt` atomically, then deletes WAL files ≤ N and older checkpoints
   * (order and crash analysis: checkpoint.ts). Appends continue meanwhile.
   *
   * One checkpoint at a time: a call while one is in progress rejects at once with
   * `WalCheckpointInProgressError` and changes nothing (queueing snapshots would hold several
   * full copies of the state in memory). Other rejections: `WalWriteError` if the records
   * before the snapshot could not be made durable (writer failed) or the checkpoint file could
   * not be written (writer still usable; the previous checkpoint stays valid); `WalClosedError`;
   * msgpackr's or `WalRecordTooLargeError` if the snapshot cannot be encoded.
   */
  checkpoint(snapshot: unknown): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closePromise) return Promise.reject(new WalClosedError());
    if (this.#checkpointRun) return Promise.reject(new WalCheckpointInProgressError());
    let snapshotFrame: Buffer;
    try {
      snapshotFrame = encodeSnapshotFrame(snapshot);
    } catch (err) {
      return Promise.reject(err);
    }
    const barrier = this.#openBatch ?? this.#newBatch();
    barrier.seal = Promise.withResolvers<number>();
    this.#openBatch = undefined;
    this.#walBytesSinceCheckpoint = 0;
    const run = this.#writeCheckpoint(barrier.seal.promise, snapshotFrame);
    this.#checkpointRun = run;
    const clear = (): void => {
      this.#checkpointRun = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /**
   * Stops accepting records, waits until everything queued is durable and any checkpoint in
   * progress is done, fsyncs and closes the file. Idempotent.
   * Rejects with `WalWriteError` if the writer failed (now or earlier) — some records were not
   * durable.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    // Appends and checkpoints are refused from here on, so the loop cannot be restarted.
    await this.#loopDone;
    if (this.#checkpointRun) await this.#checkpointRun.catch(ignore);
    if (!this.#failure) {
      try {
        await this.#file.datasync();
      } catch (err) {
        this.#failure = new WalWriteError(`WAL fsync at close failed on ${this.#filePath()}`, err);
      }
    }
    try {
      await this.#file.close();
    } catch (err) {
      this.#failure ??= new WalWriteError(`WAL close failed on ${this.#filePath()}`, err);
    }
    if (this.#failure) throw this.#failure;
  }

  #newBatch(): Batch {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    // Mark handled: a batch may have no appender (a checkpoint barrier) and its rejection must
    // not crash the process; appenders still see the rejection through `promise`.
    promise.catch(ignore);
    const batch: Batch = { buffers: [], bytes: 0, recordCount: 0, promise, resolve, reject, seal: undefined };
    this.#queue.push(batch);
    this.#openBatch = batch;
    if (!this.#loopActive) {
      this.#loopActive = true;
      this.#loopDone = this.#runLoop();
    }
    return batch;
  }

  async #runLoop(): Promise<void> {
    // Let the rest of the current tick's appends join the first batch.
    await null;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.shift()!;
        if (batch === this.#openBatch) this.#openBatch = undefined;
        await this.#commit(batch);
      }
    } finally {
      this.#loopActive = false;
    }
  }

  async #commit(batch: Batch): Promise<void> {
    let fsyncMs = 0;
    try {
      if (batch.bytes > 0) {
        await writeFully(this.#file, batch.buffers, batch.bytes);
        this.#fileBytes += batch.bytes;
        if (this.durability === 'wal') {
          const startMs = this.#clock.nowMs();
          await this.#file.datasync();
          fsyncMs = this.#clock.nowMs() - startMs;
        }
      }
    } catch (err) {
      this.#fail(new WalWriteError(`WAL write failed on ${this.#filePath()}; records not durable`, err), batch);
      return;
    }
    this.#queuedBytes -= batch.bytes;
    batch.resolve();
    if (batch.recordCount > 0 && this.#onCommit) {
      try {
        this.#onCommit({ recordCount: batch.recordCount, bytes: batch.bytes, fsyncMs, fileSeq: this.#fileSeq });
      } catch (err) {
        this.#logger.warn({ err }, 'WAL onCommit callback threw');
      }
    }
    // A seal on an empty file needs no rotation: every earlier record is in an earlier file.
    const rotate = this.#fileBytes > 0 && (batch.seal !== undefined || this.#fileBytes >= this.walFileBytesMax);
    const sealedSeq = rotate ? this.#fileSeq : this.#fileSeq - 1;
    if (rotate) {
      try {
        await this.#rotate();
      } catch (err) {
        const failure = new WalWriteError(`WAL rotation after ${this.#filePath()} failed`, err);
        this.#fail(failure, undefined);
        batch.seal?.reject(failure);
        return;
      }
    }
    batch.seal?.resolve(sealedSeq);
  }

  async #rotate(): Promise<void> {
    const nextSeq = this.#fileSeq + 1;
    const next = await this.#fs.openFile(walFilePath(this.dir, nextSeq), 'wx');
    if (this.durability === 'wal') {
      try {
        await this.#fs.syncDir(this.dir);
      } catch (err) {
        await next.close().catch(ignore);
        throw err;
      }
    }
    const previous = this.#file;
    this.#file = next;
    this.#fileSeq = nextSeq;
    this.#fileBytes = 0;
    // Its data is already synced; a close error loses nothing.
    await previous.close().catch((err: unknown) => this.#logger.warn({ err }, 'WAL: closing a finished file failed'));
  }

  /** Enters the failed state: rejects `batch` and everything queued with `failure`. */
  #fail(failure: WalWriteError, batch: Batch | undefined): void {
    this.#failure = failure;
    this.#logger.warn({ err: failure.cause, file: this.#filePath() }, 'WAL writer failed; rejecting queued records');
    const failed = batch ? [batch, ...this.#queue] : this.#queue;
    this.#queue = [];
    this.#openBatch = undefined;
    this.#queuedBytes = 0;
    for (const b of failed) {
      b.reject(failure);
      b.seal?.reject(failure);
    }
  }

  async #writeCheckpoint(sealed: Promise<number>, snapshotFrame: Buffer): Promise<void> {
    const sealedSeq = await sealed;
    const walSeqStart = sealedSeq + 1;
    const startMs = this.#clock.nowMs();
    try {
      await writeCheckpointFile({
        fs: this.#fs,
        dir: this.dir,
        walSeqStart,
        snapshotFrame,
        sync: this.durability === 'wal',
      });
    } catch (err) {
      throw new WalWriteError(
        `WAL checkpoint ${checkpointFileName(walSeqStart)} could not be written; the previous checkpoint and WAL files stay valid`,
        err,
      );
    }
    let deletedFileCount = 0;
    try {
      deletedFileCount = await deleteObsoleteFiles({ fs: this.#fs, dir: this.dir, walSeqStart, logger: this.#logger });
    } catch (err) {
      this.#logger.warn({ err, dir: this.dir }, 'WAL: listing obsolete files failed; will retry');
    }
    this.#logger.info(
      { walSeqStart, snapshotBytes: snapshotFrame.length, deletedFileCount, durationMs: this.#clock.nowMs() - startMs },
      'WAL checkpoint written',
    );
  }

  #filePath(): string {
    return walFilePath(this.dir, this.#fileSeq);
  }
}
