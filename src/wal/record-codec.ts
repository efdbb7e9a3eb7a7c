/**
 * WAL frame codec. A frame is
 *
 *     [u32 LE payloadBytes][u32 LE crc32(payload)][payload]
 *
 * where the payload is the msgpack encoding (msgpackr) of one opaque record: plain objects,
 * arrays, strings, numbers, booleans, null and binary (Buffer / Uint8Array). Binary decodes as
 * a Node `Buffer`. A frame is self-contained: no msgpackr shared structures, so any frame can
 * be decoded alone. The checksum covers the payload; the length field is checked against a
 * limit, and zero is invalid (a msgpack value is never empty, and zero-filled space at the end
 * of a file after a crash must not decode as records).
 *
 * A record whose `data` field holds at least `WAL_ATTACHMENT_BYTES_MIN` bytes is framed with its
 * data beside the msgpack, not inside it:
 *
 *     payload = [0xc1][u32 LE headBytes][msgpack of the record without `data`][data bytes]
 *
 * 0xc1 is the one byte msgpack never uses, so such payloads are told apart from plain ones and
 * files written before this layout still decode. The data is then written from the caller's
 * buffer (writev) instead of being copied into the frame: a 1 MiB append is copied once less.
 */
import { crc32 } from './crc32.ts';
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { WalRecordTooLargeError } from './errors.ts';
import { WAL_ATTACHMENT_BYTES_MIN, WAL_FRAME_PAYLOAD_BYTES_MAX } from './wal-limits.ts';

/** Bytes of the frame header: payload length and checksum. */
export const FRAME_HEADER_BYTES = 8;

// useRecords: false — no shared structures between frames, so each frame decodes alone.
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
// The same, but binaries decode as copies: for buffers that are reused after decoding.
const copyingPackr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true });

/** First payload byte of a frame whose record's `data` follows the msgpack head (never a msgpack byte). */
const ATTACHED_MARKER = 0xc1;
/** Bytes between the frame header and the msgpack head of an attached frame: marker, u32 head length. */
const ATTACHED_PREFIX_BYTES = 5;

/** The `data` of `record` if it is large enough to be framed beside the msgpack head. */
function attachmentOf(record: unknown): Uint8Array | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const data = (record as { data?: unknown }).data;
  return data instanceof Uint8Array && data.length >= WAL_ATTACHMENT_BYTES_MIN ? data : undefined;
}

/**
 * Encodes `record` as one frame, returned as the buffers to write in order: one, or two when the
 * record's `data` (≥ `WAL_ATTACHMENT_BYTES_MIN` bytes) is attached. The msgpack part is encoded
 * once, straight after the reserved header bytes. The second buffer IS `record.data`: the caller
 * must not modify it until the frame is written. Small binaries are copied into the frame.
 *
 * @param payloadBytesMax largest accepted payload, bytes (default `WAL_FRAME_PAYLOAD_BYTES_MAX`).
 * @throws WalRecordTooLargeError if the payload exceeds `payloadBytesMax`.
 * @throws Error from msgpackr for a value it cannot encode.
 */
export function encodeFrameParts(record: unknown, payloadBytesMax: number = WAL_FRAME_PAYLOAD_BYTES_MAX): Buffer[] {
  const data = attachmentOf(record);
  if (data === undefined) {
    const frame = packr.pack(record, RESERVE_START_SPACE | FRAME_HEADER_BYTES);
    const payloadBytes = frame.length - FRAME_HEADER_BYTES;
    if (payloadBytes > payloadBytesMax) throw new WalRecordTooLargeError(payloadBytes, payloadBytesMax);
    frame.writeUInt32LE(payloadBytes, 0);
    frame.writeUInt32LE(crc32(frame.subarray(FRAME_HEADER_BYTES)), 4);
    return [frame];
  }
  const { data: _attached, ...head } = record as { data: Uint8Array };
  const prefixBytes = FRAME_HEADER_BYTES + ATTACHED_PREFIX_BYTES;
  const frame = packr.pack(head, RESERVE_START_SPACE | prefixBytes);
  const headBytes = frame.length - prefixBytes;
  const payloadBytes = ATTACHED_PREFIX_BYTES + headBytes + data.length;
  if (payloadBytes > payloadBytesMax) throw new WalRecordTooLargeError(payloadBytes, payloadBytesMax);
  frame.writeUInt32LE(payloadBytes, 0);
  frame[FRAME_HEADER_BYTES] = ATTACHED_MARKER;
  frame.writeUInt32LE(headBytes, FRAME_HEADER_BYTES + 1);
  frame.writeUInt32LE(crc32(data, crc32(frame.subarray(FRAME_HEADER_BYTES))), 4);
  const attached = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
  return [frame, attached];
}

/** {@link encodeFrameParts} as one buffer (a copy when the data is attached): checkpoints, tests. */
export function encodeFrame(record: unknown, payloadBytesMax: number = WAL_FRAME_PAYLOAD_BYTES_MAX): Buffer {
  const parts = encodeFrameParts(record, payloadBytesMax);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Decodes one checked payload: a plain msgpack record, or an attached frame's head plus its `data` view. */
function decodePayload(payload: Buffer): unknown {
  if (payload[0] !== ATTACHED_MARKER) return packr.unpack(payload);
  if (payload.length < ATTACHED_PREFIX_BYTES) throw new Error(`attached frame of ${payload.length} bytes has no head length`);
  const headBytes = payload.readUInt32LE(1);
  const dataStart = ATTACHED_PREFIX_BYTES + headBytes;
  if (headBytes === 0 || dataStart > payload.length) throw new Error(`attached head of ${headBytes} bytes overruns a ${payload.length}-byte payload`);
  const record = packr.unpack(payload.subarray(ATTACHED_PREFIX_BYTES, dataStart));
  if (typeof record !== 'object' || record === null) throw new Error('attached head is not a map');
  (record as { data?: Buffer }).data = payload.subarray(dataStart);
  return record;
}

/**
 * Why a frame could not be read:
 * - `incomplete`: the buffer ends inside the header or the payload (a torn write at a file end);
 * - `checksum-mismatch`: the payload's crc32 differs from the header;
 * - `length-invalid`: the length field is 0 or above the limit;
 * - `undecodable`: the checksum matched but msgpack decoding failed (never a torn write).
 */
export type FrameProblemKind = 'incomplete' | 'checksum-mismatch' | 'length-invalid' | 'undecodable';

/** The first bad frame in a buffer. `offsetBytes` is where the frame starts. */
export interface FrameProblem {
  kind: FrameProblemKind;
  offsetBytes: number;
  detail: string;
}

/** One decoded record and the offset just past its frame. */
export interface DecodedFrame {
  record: unknown;
  endOffsetBytes: number;
}

/** Result of walking a buffer: the good prefix, and the problem that ended it, if any. */
export interface FrameScanResult {
  frameCount: number;
  /** End of the last good frame: the length to truncate to when discarding a torn tail. */
  validEndBytes: number;
  problem: FrameProblem | undefined;
}

export interface FrameDecodeResult extends FrameScanResult {
  frames: DecodedFrame[];
}

/**
 * Checks the frame at `offset` (< buf.length); returns its payload length or the problem. With
 * `verifyChecksum` false only the lengths are checked (the buffer was scanned before).
 */
function checkFrame(buf: Buffer, offset: number, payloadBytesMax: number, verifyChecksum = true): number | FrameProblem {
  const remainingBytes = buf.length - offset;
  if (remainingBytes < FRAME_HEADER_BYTES) {
    return { kind: 'incomplete', offsetBytes: offset, detail: `header needs ${FRAME_HEADER_BYTES} bytes, ${remainingBytes} remain` };
  }
  const payloadBytes = buf.readUInt32LE(offset);
  if (payloadBytes === 0 || payloadBytes > payloadBytesMax) {
    return { kind: 'length-invalid', offsetBytes: offset, detail: `payload length ${payloadBytes} outside 1..${payloadBytesMax}` };
  }
  if (remainingBytes - FRAME_HEADER_BYTES < payloadBytes) {
    return {
      kind: 'incomplete',
      offsetBytes: offset,
      detail: `payload needs ${payloadBytes} bytes, ${remainingBytes - FRAME_HEADER_BYTES} remain`,
    };
  }
  if (!verifyChecksum) return payloadBytes;
  const payloadStart = offset + FRAME_HEADER_BYTES;
  const expected = buf.readUInt32LE(offset + 4);
  const actual = crc32(buf.subarray(payloadStart, payloadStart + payloadBytes));
  if (actual !== expected) {
    return { kind: 'checksum-mismatch', offsetBytes: offset, detail: `crc32 ${actual} != header ${expected}` };
  }
  return payloadBytes;
}

/**
 * Walks `buf` checking lengths and checksums without decoding payloads (cheap; recovery uses it
 * to find a torn tail before anything is written after it).
 */
export function scanFrames(buf: Buffer, payloadBytesMax: number = WAL_FRAME_PAYLOAD_BYTES_MAX): FrameScanResult {
  let offset = 0;
  let frameCount = 0;
  while (offset < buf.length) {
    const checked = checkFrame(buf, offset, payloadBytesMax);
    if (typeof checked !== 'number') return { frameCount, validEndBytes: offset, problem: checked };
    offset += FRAME_HEADER_BYTES + checked;
    frameCount++;
  }
  return { frameCount, validEndBytes: offset, problem: undefined };
}

/**
 * Walks `buf` and decodes every frame up to the first bad one. Binary values are views of `buf`,
 * not copies: a caller that keeps one keeps the whole `buf` alive (recovery replays one WAL file
 * per buffer, so hot tails rebuilt from the WAL pin at most the files since the last checkpoint,
 * until they are sealed). Copying every payload cost more than half of the CPU of replaying 1 GiB.
 *
 * @param checksumsVerified the caller already checked every frame of `buf` with `scanFrames`
 *   (the last WAL file at recovery): the crc32 of each payload is not computed again, which is
 *   most of the CPU of decoding large frames. Lengths are still checked.
 */
export function decodeFrames(
  buf: Buffer,
  payloadBytesMax: number = WAL_FRAME_PAYLOAD_BYTES_MAX,
  checksumsVerified = false,
): FrameDecodeResult {
  const frames: DecodedFrame[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const checked = checkFrame(buf, offset, payloadBytesMax, !checksumsVerified);
    if (typeof checked !== 'number') return { frames, frameCount: frames.length, validEndBytes: offset, problem: checked };
    const payloadStart = offset + FRAME_HEADER_BYTES;
    const endOffsetBytes = payloadStart + checked;
    let record: unknown;
    try {
      record = decodePayload(buf.subarray(payloadStart, endOffsetBytes));
    } catch (err) {
      const problem: FrameProblem = { kind: 'undecodable', offsetBytes: offset, detail: `msgpack: ${(err as Error).message}` };
      return { frames, frameCount: frames.length, validEndBytes: offset, problem };
    }
    frames.push({ record, endOffsetBytes });
    offset = endOffsetBytes;
  }
  return { frames, frameCount: frames.length, validEndBytes: offset, problem: undefined };
}

/** Where an attached frame's data lies in the decoded buffer, and what verifies it alone later. */
export interface AttachedDataLocation {
  /** Offset of the data's first byte in the buffer. */
  dataOffsetBytes: number;
  dataBytes: number;
  /** crc32 of the payload before the data (marker, head length, head): the data's crc32 seed. */
  headCrc: number;
  /** The frame's checksum: crc32(data, headCrc) must equal it. */
  frameCrc: number;
}

/** One decoded record, the offset just past its frame, and where its attached data lies. */
export interface DetachedFrame extends DecodedFrame {
  /** Set for an attached frame; its record then has no `data` field. */
  attached: AttachedDataLocation | undefined;
}

export interface FrameDetachResult extends FrameScanResult {
  frames: DetachedFrame[];
}

/**
 * {@link decodeFrames} for a buffer the caller reuses once this returns: every checksum is
 * verified, binaries inside the msgpack are copies, and an attached frame's `data` is left out
 * of its record and described instead by `attached` (offset, length, and the crc32 state that
 * lets the data be verified alone when it is read again from the file). Recovery uses it to
 * check a WAL file through one reused buffer and keep only the location of the appended bytes.
 */
export function decodeFramesDetached(buf: Buffer, payloadBytesMax: number = WAL_FRAME_PAYLOAD_BYTES_MAX): FrameDetachResult {
  const frames: DetachedFrame[] = [];
  let offset = 0;
  const fail = (problem: FrameProblem): FrameDetachResult => ({ frames, frameCount: frames.length, validEndBytes: offset, problem });
  while (offset < buf.length) {
    const checked = checkFrame(buf, offset, payloadBytesMax, false);
    if (typeof checked !== 'number') return fail(checked);
    const payloadStart = offset + FRAME_HEADER_BYTES;
    const endOffsetBytes = payloadStart + checked;
    const payload = buf.subarray(payloadStart, endOffsetBytes);
    const frameCrc = buf.readUInt32LE(offset + 4);
    let record: unknown;
    let attached: AttachedDataLocation | undefined;
    let actualCrc: number;
    try {
      if (payload[0] !== ATTACHED_MARKER) {
        actualCrc = crc32(payload);
        if (actualCrc === frameCrc) record = copyingPackr.unpack(payload);
      } else {
        const headBytes = payload.length < ATTACHED_PREFIX_BYTES ? 0 : payload.readUInt32LE(1);
        const dataStart = ATTACHED_PREFIX_BYTES + headBytes;
        // A bad head length is checked after the checksum: a torn or garbled frame reports its checksum.
        const headEnd = Math.min(Math.max(dataStart, ATTACHED_PREFIX_BYTES), payload.length);
        const headCrc = crc32(payload.subarray(0, headEnd));
        actualCrc = crc32(payload.subarray(headEnd), headCrc);
        if (actualCrc === frameCrc) {
          if (headBytes === 0 || dataStart > payload.length) throw new Error(`attached head of ${headBytes} bytes overruns a ${payload.length}-byte payload`);
          record = copyingPackr.unpack(payload.subarray(ATTACHED_PREFIX_BYTES, dataStart));
          if (typeof record !== 'object' || record === null) throw new Error('attached head is not a map');
          attached = { dataOffsetBytes: payloadStart + dataStart, dataBytes: payload.length - dataStart, headCrc, frameCrc };
        }
      }
    } catch (err) {
      return fail({ kind: 'undecodable', offsetBytes: offset, detail: `msgpack: ${(err as Error).message}` });
    }
    if (actualCrc !== frameCrc) return fail({ kind: 'checksum-mismatch', offsetBytes: offset, detail: `crc32 ${actualCrc} != header ${frameCrc}` });
    frames.push({ record, endOffsetBytes, attached });
    offset = endOffsetBytes;
  }
  return { frames, frameCount: frames.length, validEndBytes: offset, problem: undefined };
}
