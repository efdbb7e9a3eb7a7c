/**
 * The write-ahead log: every acknowledged append is in a group-committed, checksummed WAL frame
 * (DESIGN.md "Key decisions: Acknowledge on the local WAL"). Records are opaque to this layer.
 *
 * Use: `const { writer, checkpoint, replay } = await openWal({ dir, durability: 'wal' })`;
 * apply `checkpoint`, then each record of `replay()`; then `writer.append(record)` per change
 * and `writer.checkpoint(snapshot)` when `writer.walBytesSinceCheckpoint` grows large.
 */
export { openWal, type OpenWalOptions, type OpenedWal } from './recovery.ts';
export { WalWriter, type WalWriterOptions, type WalDurability, type WalCommitInfo } from './wal-writer.ts';
export {
  WalError,
  WalOverloadedError,
  WalWriteError,
  WalCorruptError,
  WalRecordTooLargeError,
  WalClosedError,
  WalCheckpointInProgressError,
  WalNotDurableError,
} from './errors.ts';
export { SYNC_FAILED_MARKER_NAME } from './sync-failure-marker.ts';
export {
  encodeFrame,
  encodeFrameParts,
  decodeFrames,
  scanFrames,
  FRAME_HEADER_BYTES,
  type FrameProblem,
  type FrameProblemKind,
  type DecodedFrame,
  type FrameScanResult,
  type FrameDecodeResult,
} from './record-codec.ts';
export { nodeWalFs, type WalFs, type WalFileHandle } from './wal-fs.ts';
export type { WalLogger } from './wal-logger.ts';
export {
  WAL_FILE_BYTES_MAX_DEFAULT,
  WAL_QUEUE_BYTES_MAX_DEFAULT,
  WAL_FRAME_PAYLOAD_BYTES_MAX,
  CHECKPOINT_PAYLOAD_BYTES_MAX,
} from './wal-limits.ts';
export { faultInjectingWalFs, type WalFsHook, type WalFsOperation } from './fault-injecting-wal-fs.ts';
export { chainNodeId, storedChainNodeId, openObjectWal, readChainForTakeover, type ChainRead, type OpenObjectWalOptions, type OpenedObjectWal } from './object-wal-recovery.ts';
export { ObjectWalWriter, type ObjectWalWriterOptions } from './object-wal-writer.ts';
export { OBJECT_WAL_PREFIX, OBJECT_WAL_CHAIN_DEFAULT } from './object-wal-keys.ts';
export { WalObjectStoreUnavailableError, WalFencedError, WalChainClaimedError } from './errors.ts';
