/**
 * The diskless WAL writer (`--durability object-store`; DESIGN.md "Durability modes"): records of
 * every stream a node owns are group-committed into shared **WAL objects** in the object store,
 * one object per flush, and an append is acknowledged only once the object holding it is stored.
 * Same contract as `WalWriter` (wal-writer.ts) so the registry cannot tell them apart.
 *
 * Flushing: the first record of a batch starts a `flushMs` timer; the batch is stored when the
 * timer fires or at once when it reaches `objectBytesMax`. Up to `putsInFlightMax` puts run at
 * once; acknowledgements are given strictly in sequence order (a batch is acknowledged when it
 * and every earlier one are stored), so a crash can never leave an acknowledged record after a
 * hole.
 *
 * Failures, by kind:
 * - the store fails (past its own retries, retrying-store.ts): the batch is put again under the
 *   SAME key every `retryDelayMs`, forever, never acknowledged before it is stored; meanwhile new
 *   appends are refused with `WalObjectStoreUnavailableError` (503) and those queued wait. A put
 *   whose outcome was unknown and then meets its key taken is resolved by reading the object
 *   back (identical bytes: it was ours);
 * - the key holds other bytes (a later generation fenced it, object-wal-keys.ts): the writer
 *   fails for good with `WalFencedError`, rejecting everything queued;
 * - after `close()` a put that fails once more fails the writer with `WalWriteError`.
 *
 * Checkpoints: `checkpoint(snapshot)` stores the snapshot as `<generation>/<S>.ckpt` once every
 * record submitted before it is stored (in objects < S), then deletes the objects it made
 * obsolete (older WAL objects and checkpoints; fences and claims stay, see object-wal-keys.ts).
 */
import { systemClock, type Clock } from '../clock.ts';
import { ObjectAlreadyExistsError, listAll, putBody, type ObjectStore } from '../object-store/index.ts';
import { storedBytesEqual } from '../object-store/overwrite-check.ts';
import { encodeSnapshotFrame } from './checkpoint.ts';
import {
  WalCheckpointInProgressError,
  WalClosedError,
  WalFencedError,
  WalObjectStoreUnavailableError,
  WalWriteError,
  type WalError,
} from './errors.ts';
import { checkpointObjectKey, chainPrefix, comparePositions, parseChainKey, walObjectKey } from './object-wal-keys.ts';
import { encodeQueuedFrame } from './queued-frame.ts';
import { encodeFrame } from './record-codec.ts';
import { silentWalLogger, type WalLogger } from './wal-logger.ts';
import type { WalCommitInfo } from './wal-writer.ts';
import { WAL_QUEUE_BYTES_MAX_DEFAULT } from './wal-limits.ts';

/** Header frame of a checkpoint object, before the snapshot frame. */
export interface ObjectCheckpointHeader {
  formatVersion: 1;
  chain: string;
  generation: number;
  /** Replay continues at this WAL object of `generation`. */
  seq: number;
}

export interface ObjectWalWriterOptions {
  store: ObjectStore;
  chain: string;
  /** The generation this process claimed (object-wal-recovery.ts). */
  generation: number;
  /** Store a batch this long after its first record, ms (0: on the next turn of the event loop). */
  flushMs: number;
  /** Store a batch at once when it holds this many bytes. */
  objectBytesMax: number;
  /** Puts running at once. Default 4. */
  putsInFlightMax?: number;
  /** Bytes accepted but not yet stored; beyond it appends fail with `WalOverloadedError`. Default 256 MiB. */
  queueBytesMax?: number;
  /** Initial `walBytesSinceCheckpoint` (recovery passes the bytes it replayed). */
  walBytesSinceCheckpoint?: number;
  /** Pause between puts of a batch the store refused, ms. Default 1,000. */
  retryDelayMs?: number;
  /** After each stored batch (`fsyncMs` is the put's duration, `fileSeq` the object's sequence). Must not throw. */
  onCommit?: (info: WalCommitInfo) => void;
  /**
   * Once, when a newer generation fenced this one (`WalFencedError`: another process recovered or
   * took over the chain): this process can acknowledge nothing more and should stop. Must not throw.
   */
  onFenced?: (error: WalFencedError) => void;
  logger?: WalLogger;
  clock?: Clock;
}

interface Batch {
  seq: number;
  buffers: Buffer[];
  bytes: number;
  recordCount: number;
  /** The flush timer fired, or a checkpoint or close asked for it. */
  due: boolean;
  putting: boolean;
  stored: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

const ignore = (): void => {};

export class ObjectWalWriter {
  readonly chain: string;
  readonly generation: number;
  readonly flushMs: number;
  readonly objectBytesMax: number;
  readonly putsInFlightMax: number;
  readonly queueBytesMax: number;

  readonly #store: ObjectStore;
  readonly #retryDelayMs: number;
  readonly #onCommit: ((info: WalCommitInfo) => void) | undefined;
  readonly #onFenced: ((error: WalFencedError) => void) | undefined;
  /** The position and count of the last checkpoint this writer put (or tried to). */
  #checkpointed: { seq: number; count: number } | undefined;
  readonly #logger: WalLogger;
  readonly #clock: Clock;

  /** Batches not yet acknowledged, by sequence; the last may still take records. */
  #batches: Batch[] = [];
  #open: Batch | undefined;
  #nextSeq = 0;
  #putting = 0;
  #queuedBytes = 0;
  #walBytesSinceCheckpoint: number;
  #failure: WalError | undefined;
  #unavailable: WalObjectStoreUnavailableError | undefined;
  #closing = false;
  #closePromise: Promise<void> | undefined;
  #checkpointRun: Promise<void> | undefined;
  #storedObjects = 0;
  /** Monotonic time of the first record not covered by a stored checkpoint, or undefined. */
  #uncheckpointedSinceMs: number | undefined;

  constructor(options: ObjectWalWriterOptions) {
    this.#store = options.store;
    this.chain = options.chain;
    this.generation = options.generation;
    this.flushMs = options.flushMs;
    this.objectBytesMax = options.objectBytesMax;
    this.putsInFlightMax = options.putsInFlightMax ?? 4;
    this.queueBytesMax = options.queueBytesMax ?? WAL_QUEUE_BYTES_MAX_DEFAULT;
    if (!(this.flushMs >= 0) || !(this.objectBytesMax > 0) || !(this.putsInFlightMax >= 1) || !(this.queueBytesMax > 0)) {
      throw new RangeError('flushMs must be ≥ 0; objectBytesMax, putsInFlightMax and queueBytesMax positive');
    }
    this.#retryDelayMs = options.retryDelayMs ?? 1_000;
    this.#onCommit = options.onCommit;
    this.#onFenced = options.onFenced;
    this.#logger = options.logger ?? silentWalLogger;
    this.#clock = options.clock ?? systemClock;
    this.#walBytesSinceCheckpoint = options.walBytesSinceCheckpoint ?? 0;
  }

  /** Encoded bytes accepted but not yet stored. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Frame bytes submitted since the last checkpoint (or replayed at open). */
  get walBytesSinceCheckpoint(): number {
    return this.#walBytesSinceCheckpoint;
  }

  /** The error that stopped the writer for good (fenced, or a failure after `close()`). */
  get failure(): WalError | undefined {
    return this.#failure;
  }

  /** Set while the store refuses WAL objects (new appends are refused; queued ones wait). */
  get unavailable(): WalObjectStoreUnavailableError | undefined {
    return this.#unavailable;
  }

  /** WAL objects stored by this writer (for metrics and tests). */
  get storedObjectCount(): number {
    return this.#storedObjects;
  }

  get checkpointInProgress(): boolean {
    return this.#checkpointRun !== undefined;
  }

  /** Counts bytes replayed at open into `walBytesSinceCheckpoint` (a restart replays them again until a checkpoint). */
  addReplayedBytes(bytes: number): void {
    this.#walBytesSinceCheckpoint += bytes;
    if (bytes > 0) this.#uncheckpointedSinceMs ??= this.#clock.monotonicMs();
  }

  /**
   * Age of the oldest record held only in WAL objects (not yet in a stored checkpoint), ms; 0
   * when there is none. What a restart would replay grows with it (`walBytesSinceCheckpoint`).
   */
  heldAgeMs(): number {
    return this.#uncheckpointedSinceMs === undefined ? 0 : this.#clock.monotonicMs() - this.#uncheckpointedSinceMs;
  }

  /**
   * Adds one record to the open batch; THROWS synchronously when it is refused (nothing queued):
   * `WalFencedError`, `WalWriteError`, `WalClosedError`, `WalObjectStoreUnavailableError`,
   * `WalOverloadedError`, `WalRecordTooLargeError` or msgpackr's encoding error. The promise
   * resolves once the record's object and every earlier one are stored, and rejects with
   * `WalFencedError` or `WalWriteError` if that can no longer happen.
   */
  enqueue(record: unknown): Promise<void> {
    if (this.#failure) throw this.#failure;
    if (this.#closing) throw new WalClosedError();
    if (this.#unavailable) throw this.#unavailable;
    const { parts, frameBytes } = encodeQueuedFrame(record, this.#queuedBytes, this.queueBytesMax);
    const batch = this.#open ?? this.#newBatch();
    for (const part of parts) batch.buffers.push(part);
    batch.bytes += frameBytes;
    batch.recordCount++;
    this.#queuedBytes += frameBytes;
    this.#walBytesSinceCheckpoint += frameBytes;
    this.#uncheckpointedSinceMs ??= this.#clock.monotonicMs();
    if (batch.bytes >= this.objectBytesMax) this.#closeOpen();
    return batch.promise;
  }

  /**
   * Stores a checkpoint of `snapshot`, which must reflect exactly the records submitted so far,
   * then deletes what it made obsolete. One at a time (`WalCheckpointInProgressError`). Rejects
   * with the writer's failure, `WalClosedError`, an encoding error, or the store's error for
   * the checkpoint object (the previous checkpoint and the WAL objects stay valid).
   */
  checkpoint(snapshot: unknown): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closing) return Promise.reject(new WalClosedError());
    if (this.#checkpointRun) return Promise.reject(new WalCheckpointInProgressError());
    let snapshotFrame: Buffer;
    try {
      snapshotFrame = encodeSnapshotFrame(snapshot);
    } catch (error) {
      return Promise.reject(error);
    }
    const last = this.#batches.at(-1);
    this.#closeOpen();
    const seq = last === undefined ? this.#nextSeq : last.seq + 1;
    this.#walBytesSinceCheckpoint = 0;
    const heldSinceMs = this.#uncheckpointedSinceMs;
    this.#uncheckpointedSinceMs = undefined;
    const run = this.#writeCheckpoint(last?.promise ?? Promise.resolve(), seq, snapshotFrame).catch((error: unknown) => {
      // Not stored: the records it would have covered are still held only in WAL objects.
      if (heldSinceMs !== undefined) this.#uncheckpointedSinceMs = Math.min(heldSinceMs, this.#uncheckpointedSinceMs ?? Infinity);
      throw error;
    });
    this.#checkpointRun = run;
    const clear = (): void => {
      this.#checkpointRun = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  /**
   * Stops accepting records and waits until every queued one is stored (a put that fails now
   * fails the writer) and any checkpoint is done. Rejects with the writer's failure. Idempotent.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    this.#closeOpen();
    const last = this.#batches.at(-1);
    if (last !== undefined) await last.promise.catch(ignore);
    if (this.#checkpointRun) await this.#checkpointRun.catch(ignore);
    if (this.#failure) throw this.#failure;
  }

  #newBatch(): Batch {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    promise.catch(ignore);
    const batch: Batch = { seq: this.#nextSeq++, buffers: [], bytes: 0, recordCount: 0, due: false, putting: false, stored: false, promise, resolve, reject };
    this.#batches.push(batch);
    this.#open = batch;
    this.#clock.setTimeout(() => {
      batch.due = true;
      if (this.#open === batch) this.#open = undefined;
      this.#pump();
    }, this.flushMs);
    return batch;
  }

  /** The open batch takes no more records and is stored as soon as a put slot is free. */
  #closeOpen(): void {
    const batch = this.#open;
    if (batch === undefined) return;
    this.#open = undefined;
    batch.due = true;
    this.#pump();
  }

  /** Starts puts of due batches, in sequence order, while slots are free. */
  #pump(): void {
    for (const batch of this.#batches) {
      if (this.#putting >= this.putsInFlightMax || this.#failure) return;
      if (!batch.due) return; // later batches are newer still
      if (batch.putting || batch.stored) continue;
      batch.putting = true;
      this.#putting++;
      void this.#put(batch);
    }
  }

  async #put(batch: Batch): Promise<void> {
    const key = walObjectKey(this.chain, this.generation, batch.seq);
    let ambiguous = false;
    for (;;) {
      if (this.#failure) return;
      const startMs = this.#clock.monotonicMs();
      try {
        await putBody(this.#store, key, batch.buffers);
      } catch (error) {
        if (error instanceof ObjectAlreadyExistsError) {
          const ours = ambiguous && (await storedBytesEqual(this.#store, key, batch.buffers).catch(() => false));
          if (!ours) {
            this.#fail(new WalFencedError(key));
            return;
          }
        } else {
          ambiguous = true;
          if (this.#closing) {
            this.#fail(new WalWriteError(`WAL object ${key} could not be stored while closing; its records were not acknowledged`, error));
            return;
          }
          this.#unavailable ??= new WalObjectStoreUnavailableError(`the object store did not take WAL object ${key}: ${(error as Error).message}`, error);
          this.#logger.warn({ err: error, key, retryDelayMs: this.#retryDelayMs }, 'WAL object not stored; appends wait and new ones are refused until it is');
          await this.#clock.sleep(this.#retryDelayMs);
          continue;
        }
      }
      const putMs = this.#clock.monotonicMs() - startMs;
      this.#unavailable = undefined;
      this.#putting--;
      batch.putting = false;
      batch.stored = true;
      this.#storedObjects++;
      this.#acknowledge();
      if (this.#onCommit !== undefined) {
        try {
          this.#onCommit({ recordCount: batch.recordCount, bytes: batch.bytes, fsyncMs: putMs, fileSeq: batch.seq });
        } catch (err) {
          this.#logger.warn({ err }, 'WAL onCommit callback threw');
        }
      }
      this.#pump();
      return;
    }
  }

  /** Resolves stored batches from the front, in sequence order. */
  #acknowledge(): void {
    while (this.#batches.length > 0 && this.#batches[0]!.stored) {
      const batch = this.#batches.shift()!;
      this.#queuedBytes -= batch.bytes;
      batch.buffers = [];
      batch.resolve();
    }
  }

  /** Fails for good: everything not acknowledged is rejected with `failure`. */
  #fail(failure: WalError): void {
    if (this.#failure) return;
    this.#failure = failure;
    this.#logger.warn({ err: failure }, 'WAL writer failed; rejecting queued records');
    const failed = this.#batches;
    this.#batches = [];
    this.#open = undefined;
    this.#queuedBytes = 0;
    for (const batch of failed) batch.reject(failure);
    if (failure instanceof WalFencedError) this.#onFenced?.(failure);
  }

  async #writeCheckpoint(before: Promise<void>, seq: number, snapshotFrame: Buffer): Promise<void> {
    await before;
    const header: ObjectCheckpointHeader = { formatVersion: 1, chain: this.chain, generation: this.generation, seq };
    // A later checkpoint at the same position (nothing logged since) takes the next count.
    // Taken even if the put fails (its outcome may be unknown): the next one here counts on.
    const count = this.#checkpointed !== undefined && this.#checkpointed.seq === seq ? this.#checkpointed.count + 1 : 0;
    this.#checkpointed = { seq, count };
    const key = checkpointObjectKey(this.chain, this.generation, seq, count);
    try {
      await putBody(this.#store, key, [encodeFrame(header), snapshotFrame]);
    } catch (error) {
      throw new WalWriteError(`WAL checkpoint ${key} could not be stored; the previous checkpoint and WAL objects stay valid`, error);
    }
    let deleted = 0;
    try {
      deleted = await deleteObsolete(this.#store, this.chain, { generation: this.generation, seq, count });
    } catch (err) {
      this.#logger.warn({ err, chain: this.chain }, 'WAL: deleting objects a checkpoint made obsolete failed; the next checkpoint retries');
    }
    this.#logger.info({ key, snapshotBytes: snapshotFrame.length, deletedObjectCount: deleted }, 'WAL checkpoint stored');
  }
}

/**
 * Deletes the objects of `chain` that the checkpoint at `from` made obsolete: WAL objects and
 * checkpoints before it, except the fences (empty WAL objects) and claims that keep paused
 * processes of older generations out. Returns how many it deleted.
 */
export async function deleteObsolete(store: ObjectStore, chain: string, from: { generation: number; seq: number; count: number }): Promise<number> {
  const keys: string[] = [];
  for await (const info of listAll(store, chainPrefix(chain))) {
    const parsed = parseChainKey(chain, info.key);
    if (parsed === undefined || parsed.kind === 'claim') continue;
    // WAL object <seq> itself comes after the checkpoint at <seq> (replay starts there).
    if (comparePositions(parsed, parsed.kind === 'wal' ? { generation: from.generation, seq: from.seq } : from) >= 0) continue;
    if (parsed.kind === 'wal' && info.sizeBytes === 0) continue;
    keys.push(info.key);
  }
  if (keys.length > 0) await store.deleteMany(keys);
  return keys.length;
}
