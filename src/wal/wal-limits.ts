/**
 * Limits of the write-ahead log, each with the reason for its value (STYLE.md: every queue and
 * buffer has an explicit limit, and the limits live together).
 */

const MiB = 1024 * 1024;

/**
 * Largest payload of one WAL frame, 256 MiB. A length field above it is read as corruption, not
 * as a record, so a flipped high bit cannot make recovery allocate gigabytes. Appends are
 * bounded far below this by the HTTP body limit; the margin is for records that batch many
 * messages.
 */
export const WAL_FRAME_PAYLOAD_BYTES_MAX = 256 * MiB;

/**
 * Largest payload of a checkpoint snapshot frame, 4 GiB − 1 (the u32 length field, and the
 * most msgpackr can encode). A snapshot holds the state of every stream, so it may be far
 * larger than one record.
 */
export const CHECKPOINT_PAYLOAD_BYTES_MAX = 0xffff_ffff;

/**
 * Default size after which the writer rotates to a new WAL file, 64 MiB. Recovery reads one
 * file whole, so this bounds recovery memory; it also bounds the granularity at which a
 * checkpoint can free disk. Larger files mean fewer creates and directory fsyncs (one per
 * file, ~1 ms each); 64 MiB is one rotation per ~0.2 s at 300 MB/s.
 */
export const WAL_FILE_BYTES_MAX_DEFAULT = 64 * MiB;

/**
 * Default bound on encoded bytes accepted but not yet durable, 256 MiB. Beyond it `append`
 * fails with `WalOverloadedError` (503) instead of buffering without bound. At 300 MB/s of
 * disk bandwidth this is under a second of backlog.
 */
export const WAL_QUEUE_BYTES_MAX_DEFAULT = 256 * MiB;

/**
 * Smallest record `data` framed beside its msgpack head instead of inside it, 16 KiB. Above it
 * the copy into the frame costs more than the extra iovec of a writev; below it, small appends
 * stay one buffer each (most appends are small).
 */
export const WAL_ATTACHMENT_BYTES_MIN = 16 * 1024;

/**
 * Diskless recovery reads up to 16 WAL objects at once: an S3 GET costs tens of ms of latency and
 * little CPU, so reading one at a time would make a restart wait about 30 ms per object; 16 in
 * flight of at most `--wal-object-bytes` each bounds the memory it holds.
 */
export const OBJECT_WAL_READS_MAX = 16;
