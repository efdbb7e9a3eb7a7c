/**
 * Typed errors of the write-ahead log. Each has a stable `code`; whether a client may retry
 * (`retryable`) and the HTTP status the error handler answers (`statusCode`) come from the one
 * error table (protocol/error-table.ts). Callers branch on the class or `code`, never on
 * message text.
 */
import { CairnError, type ErrorCode } from '../protocol/error-table.ts';

/** Base class of every WAL error. */
export class WalError extends CairnError {
  constructor(code: ErrorCode & `WAL_${string}`, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The writer's queue of not-yet-durable bytes is full (`queueBytesMax`). Nothing was written;
 * retry after the disk catches up. 503.
 */
export class WalOverloadedError extends WalError {
  /** Encoded bytes accepted but not yet durable when the append was refused. */
  readonly queuedBytes: number;
  /** The configured bound. */
  readonly queueBytesMax: number;

  constructor(queuedBytes: number, queueBytesMax: number) {
    super(
      'WAL_OVERLOADED',
      `WAL queue is full (${queuedBytes} bytes queued, limit ${queueBytesMax}); retry later`,
    );
    this.queuedBytes = queuedBytes;
    this.queueBytesMax = queueBytesMax;
  }
}

/**
 * A write, fsync, or file rotation of the WAL failed (`cause` holds the I/O error), or the
 * writer is in the failed state such an error leaves it in. The record is NOT durable and was
 * not acknowledged. 503.
 */
export class WalWriteError extends WalError {
  constructor(message: string, cause: unknown) {
    super('WAL_WRITE_FAILED', message, { cause });
  }
}

/**
 * A WAL or checkpoint file is damaged somewhere recovery cannot explain by a torn final write.
 * Recovery stops; the data directory needs an operator. `file` is the path, `offsetBytes` the
 * position of the bad frame (0 for a whole-file problem).
 */
export class WalCorruptError extends WalError {
  readonly file: string;
  readonly offsetBytes: number;

  constructor(file: string, offsetBytes: number, reason: string) {
    super('WAL_CORRUPT', `WAL corrupt: ${file} at byte ${offsetBytes}: ${reason}`);
    this.file = file;
    this.offsetBytes = offsetBytes;
  }
}

/** One encoded record is larger than the frame payload limit. Not retryable. 413. */
export class WalRecordTooLargeError extends WalError {
  readonly payloadBytes: number;
  readonly payloadBytesMax: number;

  constructor(payloadBytes: number, payloadBytesMax: number) {
    super(
      'WAL_RECORD_TOO_LARGE',
      `write-ahead log record of ${payloadBytes} bytes is over the limit of ${payloadBytesMax} bytes; send the data in smaller appends`,
    );
    this.payloadBytes = payloadBytes;
    this.payloadBytesMax = payloadBytesMax;
  }
}

/** The writer was closed (server shutting down). 503, retryable against the next process. */
export class WalClosedError extends WalError {
  constructor() {
    super('WAL_CLOSED', 'WAL writer is closed');
  }
}

/**
 * `checkpoint()` was called while another checkpoint is still being written. Nothing was
 * changed; call again once `checkpointInProgress` is false. Internal, never reaches a client.
 */
export class WalCheckpointInProgressError extends WalError {
  constructor() {
    super('WAL_CHECKPOINT_IN_PROGRESS', 'a WAL checkpoint is already in progress');
  }
}

/**
 * Recovery cannot show that the WAL it would replay is on disk: an fsync at recovery failed, or
 * an fsync of this WAL failed earlier since the machine booted (the kernel may still cache pages
 * that never reached the disk, so rereading the files proves nothing). The server refuses to
 * start; the message says what the operator must do. 500, not retryable.
 */
export class WalNotDurableError extends WalError {
  constructor(message: string, options?: ErrorOptions) {
    super('WAL_NOT_DURABLE', message, options);
  }
}

/**
 * Diskless mode (`--durability object-store`): storing a WAL object failed past the object
 * store's retries. Records already queued stay queued and are retried under the same key (never
 * acknowledged before they are stored); new appends get this error until a put succeeds. 503.
 */
export class WalObjectStoreUnavailableError extends WalError {
  constructor(message: string, cause: unknown) {
    super('WAL_OBJECT_STORE_UNAVAILABLE', message, { cause });
  }
}

/**
 * Diskless mode: a WAL object's key already held other bytes, so a newer generation of this
 * chain fenced it (object-wal-keys.ts): this writer acknowledges nothing more; every queued and
 * later append fails with it. 503 (the new owner answers the retry).
 */
export class WalFencedError extends WalError {
  constructor(key: string) {
    super('WAL_FENCED', `WAL object ${key} was taken by a newer generation of this WAL chain: this process no longer owns it`);
  }
}

/**
 * Diskless mode: the generation this start picked was claimed by another process starting at
 * the same moment on the same chain. The start fails; two processes must not share a chain.
 */
export class WalChainClaimedError extends WalError {
  constructor(chain: string, generation: number) {
    super('WAL_CHAIN_CLAIMED', `WAL chain ${chain}: generation ${generation} was claimed by another process starting now; one process per chain`);
  }
}
