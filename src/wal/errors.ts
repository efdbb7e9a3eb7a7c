/**
 * Typed errors of the write-ahead log. Each has a stable `code`, whether a client may retry
 * (`retryable`), and the HTTP status the error handler maps it to (`statusCode`). Callers
 * branch on the class or `code`, never on message text.
 */

/** Base class of every WAL error. */
export class WalError extends Error {
  /** Stable machine-readable code, e.g. `WAL_OVERLOADED`. */
  readonly code: string;
  /** True if the same request may succeed later (the server sends `Retry-After`). */
  readonly retryable: boolean;
  /** HTTP status for a request that failed with this error. */
  readonly statusCode: number;

  constructor(code: string, retryable: boolean, statusCode: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
    this.statusCode = statusCode;
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
      true,
      503,
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
    super('WAL_WRITE_FAILED', true, 503, message, { cause });
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
    super('WAL_CORRUPT', false, 500, `WAL corrupt: ${file} at byte ${offsetBytes}: ${reason}`);
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
      false,
      413,
      `WAL record payload is ${payloadBytes} bytes, limit ${payloadBytesMax}`,
    );
    this.payloadBytes = payloadBytes;
    this.payloadBytesMax = payloadBytesMax;
  }
}

/** The writer was closed (server shutting down). 503, retryable against the next process. */
export class WalClosedError extends WalError {
  constructor() {
    super('WAL_CLOSED', true, 503, 'WAL writer is closed');
  }
}

/**
 * `checkpoint()` was called while another checkpoint is still being written. Nothing was
 * changed; call again once `checkpointInProgress` is false. Internal, never reaches a client.
 */
export class WalCheckpointInProgressError extends WalError {
  constructor() {
    super('WAL_CHECKPOINT_IN_PROGRESS', true, 503, 'a WAL checkpoint is already in progress');
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
    super('WAL_NOT_DURABLE', false, 500, message, options);
  }
}
