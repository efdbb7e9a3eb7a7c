import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { pack } from 'msgpackr';
import { decodeFrames, decodeFramesDetached, encodeFrame, encodeFrameParts, FRAME_HEADER_BYTES, scanFrames } from '../../src/wal/record-codec.ts';
import { WAL_ATTACHMENT_BYTES_MIN } from '../../src/wal/wal-limits.ts';
import { WalRecordTooLargeError } from '../../src/wal/errors.ts';

const records: unknown[] = [
  { t: 'append', inc: 7, data: Buffer.from('hello'), producer: ['p-1', 3, 42], close: false },
  { nested: { deeper: { list: [1, 2.5, -3, null, true, 'x'], empty: {} } } },
  { s: 'héllo wörld — 日本語 🚀', empty: '' },
  { data: Buffer.alloc(0) },
  { big: Buffer.alloc(70_000, 0xab) },
  'a bare string',
  12345678901,
  null,
  [Buffer.from([0, 1, 2]), Buffer.from([255])],
];

function concatFrames(values: unknown[]): Buffer {
  return Buffer.concat(values.map((v) => encodeFrame(v)));
}

describe('WAL record codec', () => {
  it('round-trips records, with binary as Buffers', () => {
    const buf = concatFrames(records);
    const decoded = decodeFrames(buf);
    expect(decoded.problem).toBeUndefined();
    expect(decoded.validEndBytes).toBe(buf.length);
    expect(decoded.frames.map((f) => f.record)).toEqual(records);
    const first = decoded.frames[0]!.record as { data: unknown };
    expect(Buffer.isBuffer(first.data)).toBe(true);
    expect(Buffer.isBuffer((decoded.frames[3]!.record as { data: unknown }).data)).toBe(true);
    expect((decoded.frames[3]!.record as { data: Buffer }).data.length).toBe(0);
  });

  it('reports end offsets that match the frame sizes', () => {
    const sizes = records.map((r) => encodeFrame(r).length);
    const decoded = decodeFrames(concatFrames(records));
    let end = 0;
    decoded.frames.forEach((f, i) => {
      end += sizes[i]!;
      expect(f.endOffsetBytes).toBe(end);
    });
  });

  it('writes the header as little-endian length and crc32 of the payload', () => {
    const frame = encodeFrame({ a: 1 });
    expect(frame.readUInt32LE(0)).toBe(frame.length - FRAME_HEADER_BYTES);
    frame[FRAME_HEADER_BYTES + 1] ^= 0x01;
    expect(scanFrames(frame).problem?.kind).toBe('checksum-mismatch');
  });

  it('decoded Buffers are views of the file buffer, not copies', () => {
    const buf = concatFrames([{ data: Buffer.from('original') }, { data: Buffer.from('second') }]);
    const decoded = decodeFrames(buf);
    const data = decoded.frames.map((frame) => (frame.record as { data: Buffer }).data);
    expect(data.map((view) => view.toString())).toEqual(['original', 'second']);
    expect(data.every((view) => view.buffer === buf.buffer)).toBe(true);
  });

  it('an encoded frame does not alias the caller buffer nor change on later encodes', () => {
    const input = Buffer.from('abc');
    const frame = encodeFrame({ data: input });
    const copy = Buffer.from(frame);
    input.fill(0x7a);
    for (let i = 0; i < 100; i++) encodeFrame({ filler: Buffer.alloc(500, i) });
    expect(frame.equals(copy)).toBe(true);
    expect((decodeFrames(frame).frames[0]!.record as { data: Buffer }).data.toString()).toBe('abc');
  });

  it('detects a single flipped bit in the payload as a checksum mismatch', () => {
    const good = encodeFrame({ a: 'x' });
    const second = encodeFrame({ b: 'y' });
    for (let bit = 0; bit < 8; bit++) {
      const buf = Buffer.concat([good, second]);
      buf[good.length + FRAME_HEADER_BYTES + 2] ^= 1 << bit;
      const decoded = decodeFrames(buf);
      expect(decoded.problem).toMatchObject({ kind: 'checksum-mismatch', offsetBytes: good.length });
      expect(decoded.frames.map((f) => f.record)).toEqual([{ a: 'x' }]);
      expect(decoded.validEndBytes).toBe(good.length);
    }
  });

  it('classifies a cut frame as incomplete, at every cut position', () => {
    const first = encodeFrame({ a: 1 });
    const last = encodeFrame({ data: Buffer.from('payload bytes'), s: 'text' });
    for (let cut = 1; cut < last.length; cut++) {
      const buf = Buffer.concat([first, last.subarray(0, cut)]);
      const scan = scanFrames(buf);
      expect(scan.problem?.kind).toBe('incomplete');
      expect(scan.problem?.offsetBytes).toBe(first.length);
      expect(scan.validEndBytes).toBe(first.length);
      expect(decodeFrames(buf).frames.map((f) => f.record)).toEqual([{ a: 1 }]);
    }
  });

  it('treats a zero or oversized length field as invalid', () => {
    const zeros = Buffer.alloc(64);
    expect(scanFrames(zeros).problem?.kind).toBe('length-invalid');
    const frame = encodeFrame({ a: 1 });
    frame.writeUInt32LE(1000, 0);
    expect(scanFrames(frame, 999).problem?.kind).toBe('length-invalid');
    expect(scanFrames(frame, 1000).problem?.kind).toBe('incomplete');
  });


  it('with checksumsVerified skips only the crc32: records decode, lengths are still checked', () => {
    const buf = concatFrames(records);
    expect(decodeFrames(buf, undefined, true).frames.map((f) => f.record)).toEqual(records);
    // A wrong checksum field is not looked at (the caller scanned the buffer before)…
    const recrc = Buffer.from(buf);
    recrc[4] ^= 1;
    expect(decodeFrames(recrc).problem?.kind).toBe('checksum-mismatch');
    expect(decodeFrames(recrc, undefined, true).problem).toBeUndefined();
    // …but a cut or an invalid length still ends the walk.
    const cut = buf.subarray(0, buf.length - 1);
    expect(decodeFrames(cut, undefined, true).problem?.kind).toBe('incomplete');
    expect(decodeFrames(Buffer.concat([buf, Buffer.alloc(16)]), undefined, true).problem?.kind).toBe('length-invalid');
  });
  it('reports a payload that passes the checksum but is not msgpack as undecodable', () => {
    const payload = Buffer.from([0x92, 0x01]); // an array of two holding only one element
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(crc32(payload), 4);
    const buf = Buffer.concat([header, payload]);
    expect(scanFrames(buf).problem).toBeUndefined();
    expect(decodeFrames(buf).problem?.kind).toBe('undecodable');
  });

  describe('attached data (records whose data is at least WAL_ATTACHMENT_BYTES_MIN bytes)', () => {
    const data = Buffer.alloc(WAL_ATTACHMENT_BYTES_MIN + 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 0xff;
    const record = { t: 'append', inc: 9, data, producer: ['p', 1, 2] };

    it('frames the caller buffer itself beside the head, and decodes it back as a view', () => {
      const parts = encodeFrameParts(record);
      expect(parts).toHaveLength(2);
      expect(parts[1]).toBe(data);
      expect(encodeFrameParts({ data: data.subarray(0, WAL_ATTACHMENT_BYTES_MIN - 1) }).length).toBe(1);
      const buf = Buffer.concat([encodeFrame({ a: 1 }), ...parts, encodeFrame({ b: 2 })]);
      const decoded = decodeFrames(buf);
      expect(decoded.problem).toBeUndefined();
      expect(decoded.frames.map((f) => f.record)).toEqual([{ a: 1 }, record, { b: 2 }]);
      const view = (decoded.frames[1]!.record as { data: Buffer }).data;
      expect(view.buffer).toBe(buf.buffer);
      expect(scanFrames(buf).frameCount).toBe(3);
    });

    it('the checksum covers the attached bytes and the head', () => {
      for (const at of [FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 3, FRAME_HEADER_BYTES + 40, FRAME_HEADER_BYTES + 5000]) {
        const buf = encodeFrame(record);
        buf[at] ^= 0x10;
        expect(decodeFrames(buf).problem?.kind).toBe('checksum-mismatch');
      }
    });

    it('a head length running past the payload is undecodable, not a crash', () => {
      const buf = encodeFrame(record);
      const payloadBytes = buf.readUInt32LE(0);
      buf.writeUInt32LE(payloadBytes, FRAME_HEADER_BYTES + 1);
      buf.writeUInt32LE(crc32(buf.subarray(FRAME_HEADER_BYTES)), 4);
      expect(decodeFrames(buf).problem?.kind).toBe('undecodable');
    });

    it('frames written before this layout (data inside the msgpack) still decode', () => {
      const payload = pack(record);
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      header.writeUInt32LE(payload.length, 0);
      header.writeUInt32LE(crc32(payload), 4);
      expect(decodeFrames(Buffer.concat([header, payload])).frames.map((f) => f.record)).toEqual([record]);
    });

    it('decodeFramesDetached: verifies like decodeFrames, leaves the data out and locates it with its checksum seed', () => {
      const small = { t: 'append', inc: 9, data: Buffer.from('inline') };
      const buf = Buffer.concat([encodeFrame(small), encodeFrame(record), encodeFrame({ b: 2 })]);
      const detached = decodeFramesDetached(buf);
      expect(detached.problem).toBeUndefined();
      const [first, second, third] = detached.frames;
      expect(first!.record).toEqual(small);
      expect((first!.record as { data: Buffer }).data.buffer).not.toBe(buf.buffer);
      expect(first!.attached).toBeUndefined();
      const { data: _data, ...head } = record;
      expect(second!.record).toEqual(head);
      const at = second!.attached!;
      const located = buf.subarray(at.dataOffsetBytes, at.dataOffsetBytes + at.dataBytes);
      expect(located).toEqual(data);
      expect(crc32(located, at.headCrc)).toBe(at.frameCrc);
      expect(third!.record).toEqual({ b: 2 });
      expect(third!.endOffsetBytes).toBe(buf.length);
      for (let i = 0; i < buf.length; i += 7) {
        const damaged = Buffer.from(buf);
        damaged[i] ^= 0x01;
        const expected = decodeFrames(damaged);
        const got = decodeFramesDetached(damaged);
        expect([got.problem?.kind, got.validEndBytes, got.frameCount]).toEqual([expected.problem?.kind, expected.validEndBytes, expected.frameCount]);
      }
      const overrun = encodeFrame(record);
      overrun.writeUInt32LE(overrun.readUInt32LE(0), FRAME_HEADER_BYTES + 1);
      overrun.writeUInt32LE(crc32(overrun.subarray(FRAME_HEADER_BYTES)), 4);
      expect(decodeFramesDetached(overrun).problem?.kind).toBe('undecodable');
      expect(decodeFramesDetached(buf.subarray(0, buf.length - 1)).problem?.kind).toBe('incomplete');
    });

    it('the payload limit counts the attached bytes', () => {
      expect(() => encodeFrameParts(record, data.length)).toThrow(WalRecordTooLargeError);
    });
  });

  it('refuses to encode a payload above the limit', () => {
    expect(() => encodeFrame({ data: Buffer.alloc(2000) }, 1000)).toThrow(WalRecordTooLargeError);
    expect(() => encodeFrame({ data: Buffer.alloc(900) }, 1000)).not.toThrow();
  });
});
