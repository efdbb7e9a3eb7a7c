/**
 * The admission step both WAL writers share (wal-writer.ts, object-wal-writer.ts): encode one
 * record as a frame and check the queue's byte bound before anything is queued.
 */
import { WalOverloadedError } from './errors.ts';
import { encodeFrameParts } from './record-codec.ts';

/**
 * `record` as frame parts (record-codec.ts) and their total size in bytes.
 * @throws WalOverloadedError when `queuedBytes` + the frame would pass `queueBytesMax` (an empty
 *   queue takes any one frame, so a record larger than the bound is not refused forever);
 *   WalRecordTooLargeError or msgpackr's error when the record cannot be encoded.
 */
export function encodeQueuedFrame(record: unknown, queuedBytes: number, queueBytesMax: number): { parts: Buffer[]; frameBytes: number } {
  const parts = encodeFrameParts(record);
  const frameBytes = parts.length === 1 ? parts[0]!.length : parts[0]!.length + parts[1]!.length;
  if (queuedBytes > 0 && queuedBytes + frameBytes > queueBytesMax) throw new WalOverloadedError(queuedBytes, queueBytesMax);
  return { parts, frameBytes };
}
