import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import {
  decodeManifest,
  encodeManifest,
  ManifestCorruptError,
  sameManifest,
  type Manifest,
  type SegmentRef,
} from '../../src/manifest/manifest.ts';
import { manifestKey, parseStreamObjectKey, segmentKey, streamObjectPrefix } from '../../src/manifest/object-keys.ts';
import { assertValidObjectKey, compareObjectKeys } from '../../src/object-store/object-store.ts';
import { formatOffset } from '../../src/protocol/offset.ts';

const KEY = 'ab/abcdef/0000000000000001-node/manifest-00000000000000000001.json';

function segment(start: number, end: number, sealedAtMs = 1_700_000_000_000): SegmentRef {
  return { start, end, unitEnds: [end], sealedAtMs };
}

function manifest(overrides: Partial<Manifest> = {}): Manifest {
  return {
    format: 1,
    path: '/v1/stream/orders',
    incarnation: 3,
    nodeId: '0123456789ab',
    contentType: 'application/json',
    version: 2,
    retainedStart: 0,
    segments: [{ start: 0, end: 100, unitEnds: [40, 100], sealedAtMs: 1_700_000_000_000 }, segment(100, 250)],
    ...overrides,
  };
}

function bytes(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function expectCorrupt(data: Uint8Array, reason: RegExp): void {
  let thrown: unknown;
  try {
    decodeManifest(KEY, data);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(ManifestCorruptError);
  const error = thrown as ManifestCorruptError;
  expect(error.key).toBe(KEY);
  expect(error.name).toBe('ManifestCorruptError');
  expect(error.message).toContain(KEY);
  expect(error.message).toMatch(reason);
}

describe('manifest codec', () => {
  test('round-trips, with and without a fork', () => {
    const plain = manifest();
    expect(decodeManifest(KEY, encodeManifest(plain))).toEqual(plain);
    const forked = manifest({ fork: { incarnation: 2, position: 4096 }, retainedStart: 100, segments: [segment(100, 250)] });
    expect(decodeManifest(KEY, encodeManifest(forked))).toEqual(forked);
    const empty = manifest({ segments: [], version: 1 });
    expect(decodeManifest(KEY, encodeManifest(empty))).toEqual(empty);
  });

  test('round-trips any path and contiguous segments (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 40 }),
        fc.nat({ max: 2 ** 40 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 1e6 }), fc.nat()), { maxLength: 8 }),
        fc.nat({ max: 2 ** 52 }),
        (path, incarnation, specs, start) => {
          const segments: SegmentRef[] = [];
          let at = start;
          for (const [size, sealedAtMs] of specs) {
            segments.push(segment(at, at + size, sealedAtMs));
            at += size;
          }
          const value = manifest({ path, incarnation, segments, retainedStart: start });
          const decoded = decodeManifest(KEY, encodeManifest(value));
          expect(decoded).toEqual(value);
          expect(sameManifest(decoded, value)).toBe(true);
        },
      ),
    );
  });

  test('bytes that are not JSON are corrupt', () => {
    const encoded = encodeManifest(manifest());
    expectCorrupt(encoded.subarray(0, encoded.length - 1), /corrupt/);
    expectCorrupt(bytes(''), /corrupt/);
    expectCorrupt(bytes('{"format":1,'), /corrupt/);
    expectCorrupt(new Uint8Array([0xff, 0xfe, 0x00]), /corrupt/);
  });

  test('JSON that is not a format-1 manifest is corrupt', () => {
    for (const text of ['null', '1', '"manifest"', '[]', '{}', '{"format":1}', '{"format":1,"segments":{}}']) {
      expectCorrupt(bytes(text), /not a format-1 manifest/);
    }
    expectCorrupt(bytes(JSON.stringify({ ...manifest(), format: 2 })), /not a format-1 manifest/);
    expectCorrupt(bytes(JSON.stringify({ ...manifest(), format: '1' })), /not a format-1 manifest/);
  });

  test('segments with a gap or an overlap are corrupt', () => {
    expectCorrupt(encodeManifest(manifest({ segments: [segment(0, 100), segment(101, 200)] })), /not contiguous/);
    expectCorrupt(encodeManifest(manifest({ segments: [segment(0, 100), segment(99, 200)] })), /not contiguous/);
    expectCorrupt(encodeManifest(manifest({ segments: [segment(0, 100), segment(100, 200), segment(300, 400)] })), /not contiguous/);
    expectCorrupt(encodeManifest(manifest({ segments: [segment(100, 200), segment(0, 100)] })), /not contiguous/);
  });

  // KNOWN BUG (fails until src/manifest/manifest.ts is fixed): decodeManifest only checks that each
  // segment starts where the previous one ends, so a segment running backwards lets the next one
  // overlap earlier bytes, and segments without numeric start/end pass (undefined === undefined).
  // DESIGN.md: segments are contiguous and non-overlapping; manifest.ts: never guessed around.
  test('segments that chain end to start but overlap, run backwards or lack positions are corrupt', () => {
    const backwards = { start: 100, end: 50, unitEnds: [50], sealedAtMs: 0 };
    expectCorrupt(encodeManifest(manifest({ segments: [segment(0, 100), backwards, segment(50, 200)] })), /corrupt/);
    expectCorrupt(bytes(JSON.stringify({ ...manifest(), segments: [{}, {}] })), /corrupt/);
    expectCorrupt(bytes(JSON.stringify({ ...manifest(), segments: [{ start: '0', end: '100' }, { start: '100', end: '200' }] })), /corrupt/);
  });

  test('sameManifest: equal content, not identity', () => {
    const a = manifest();
    expect(sameManifest(a, manifest())).toBe(true);
    expect(sameManifest(a, decodeManifest(KEY, encodeManifest(a)))).toBe(true);
    expect(sameManifest(a, manifest({ version: 3 }))).toBe(false);
    expect(sameManifest(a, manifest({ nodeId: 'ba9876543210' }))).toBe(false);
    expect(sameManifest(a, manifest({ incarnation: 4 }))).toBe(false);
    expect(sameManifest(a, manifest({ retainedStart: 100 }))).toBe(false);
    expect(sameManifest(a, manifest({ fork: { incarnation: 1, position: 0 } }))).toBe(false);
    expect(sameManifest(a, manifest({ segments: [segment(0, 100), segment(100, 250, 1)] }))).toBe(false);
    expect(sameManifest(a, manifest({ segments: [segment(0, 100), segment(100, 250)] }))).toBe(false); // unitEnds differ
    expect(sameManifest(a, manifest({ segments: [segment(0, 100)] }))).toBe(false);
  });
});

describe('object keys', () => {
  const NODE = '0123456789ab';

  function streamId(path: string): string {
    return createHash('sha256').update(path).digest('hex').slice(0, 32);
  }

  test('prefix layout: <hash2>/<stream-id>/<incarnation:016>-<node-id>/', () => {
    const id = streamId('/v1/stream/orders');
    expect(streamObjectPrefix('/v1/stream/orders', 255, NODE)).toBe(`${id.slice(0, 2)}/${id}/0000000000000255-${NODE}/`);
    expect(streamObjectPrefix('/v1/stream/orders', 0, NODE)).toMatch(/^([0-9a-f]{2})\/\1[0-9a-f]{30}\/0{16}-0123456789ab\/$/);
    expect(streamObjectPrefix('x', Number.MAX_SAFE_INTEGER, NODE)).toContain('/9007199254740991-');
    // The incarnation reads as in offset tokens.
    for (const incarnation of [1, 42, 2 ** 40]) {
      const [tokenIncarnation] = formatOffset(incarnation, 0).split('_');
      expect(streamObjectPrefix('/s', incarnation, NODE).split('/')[2]).toBe(`${tokenIncarnation}-${NODE}`);
    }
  });

  test('segment and manifest names: zero-padded to 20 digits', () => {
    const prefix = streamObjectPrefix('/s', 1, NODE);
    expect(segmentKey(prefix, 0, 1024)).toBe(`${prefix}00000000000000000000-00000000000000001024.seg`);
    expect(segmentKey(prefix, Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER)).toBe(
      `${prefix}00009007199254740990-00009007199254740991.seg`,
    );
    expect(manifestKey(prefix, 7)).toBe(`${prefix}manifest-00000000000000000007.json`);
  });

  test('distinct paths, incarnations and nodes get prefixes that are not prefixes of each other', () => {
    const prefixes = [
      streamObjectPrefix('/a', 1, NODE),
      streamObjectPrefix('/b', 1, NODE),
      streamObjectPrefix('/a', 2, NODE),
      streamObjectPrefix('/a', 16, NODE),
      streamObjectPrefix('/a', 1, 'abc'),
      streamObjectPrefix('/a', 1, 'abcd'),
    ];
    expect(new Set(prefixes).size).toBe(prefixes.length);
    for (const a of prefixes) {
      for (const b of prefixes) if (a !== b) expect(b.startsWith(a)).toBe(false);
    }
  });

  test('keys are valid object keys for any path, even odd ones', () => {
    const paths = ['', '.', '..', '/', '//', '../../etc/passwd', 'a/./b', '\u0000\u001f\u007f', '🚀/ünïcødé/日本', '\ud800', 'x'.repeat(2000), '€'.repeat(2000)];
    for (const path of paths) {
      const prefix = streamObjectPrefix(path, Number.MAX_SAFE_INTEGER, NODE);
      for (const key of [segmentKey(prefix, 0, Number.MAX_SAFE_INTEGER), manifestKey(prefix, Number.MAX_SAFE_INTEGER)]) {
        expect(() => assertValidObjectKey('put', key)).not.toThrow();
      }
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 2100 }), fc.nat({ max: Number.MAX_SAFE_INTEGER }), (path, incarnation) => {
        const prefix = streamObjectPrefix(path, incarnation, NODE);
        expect(() => assertValidObjectKey('put', segmentKey(prefix, incarnation, Number.MAX_SAFE_INTEGER))).not.toThrow();
        expect(() => assertValidObjectKey('put', manifestKey(prefix, incarnation))).not.toThrow();
      }),
    );
  });

  test('a LIST (key order) returns segments in offset order, then manifests in version order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { minLength: 1, maxLength: 15 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 2 ** 50 }), { maxLength: 10 }),
        fc.nat({ max: 2 ** 50 }),
        fc.string({ maxLength: 20 }),
        fc.array(fc.integer(), { minLength: 25, maxLength: 25 }),
        (sizes, versions, base, path, weights) => {
          const prefix = streamObjectPrefix(path, 1, NODE);
          const segments: [number, number][] = [];
          let at = base;
          for (const size of sizes) {
            segments.push([at, at + size]);
            at += size;
          }
          const expected = [
            ...segments.map(([start, end]) => segmentKey(prefix, start, end)),
            ...[...versions].sort((a, b) => a - b).map((version) => manifestKey(prefix, version)),
          ];
          // A random permutation (by random weights), then the store's key order.
          const shuffled = expected.map((key, i) => [weights[i], key] as const).sort((a, b) => a[0] - b[0]);
          const listed = shuffled.map(([, key]) => key).sort(compareObjectKeys);
          expect(listed).toEqual(expected);
        },
      ),
    );
  });

  test('parseStreamObjectKey round-trips segment and manifest keys', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.string({ unit: 'binary', maxLength: 50 }),
        (a, b, path) => {
          const prefix = streamObjectPrefix(path, 9, NODE);
          const [start, end] = a <= b ? [a, b] : [b, a];
          expect(parseStreamObjectKey(prefix, segmentKey(prefix, start, end))).toEqual({ kind: 'segment', start, end });
          expect(parseStreamObjectKey(prefix, manifestKey(prefix, a))).toEqual({ kind: 'manifest', version: a });
        },
      ),
    );
  });

  test('parseStreamObjectKey rejects foreign keys', () => {
    const prefix = streamObjectPrefix('/s', 1, NODE);
    const otherNode = streamObjectPrefix('/s', 1, 'ba9876543210');
    const otherIncarnation = streamObjectPrefix('/s', 2, NODE);
    const otherStream = streamObjectPrefix('/t', 1, NODE);
    for (const other of [otherNode, otherIncarnation, otherStream]) {
      expect(parseStreamObjectKey(prefix, segmentKey(other, 0, 10))).toBeUndefined();
      expect(parseStreamObjectKey(prefix, manifestKey(other, 1))).toBeUndefined();
    }
    const names = [
      '',
      '0-10.seg', // not padded
      '00000000000000000000-00000000000000000010', // no suffix
      '00000000000000000000-00000000000000000010.seg.tmp',
      '00000000000000000000-00000000000000000010.json',
      '000000000000000000000-00000000000000000010.seg', // 21 digits
      '0000000000000000000a-00000000000000000010.seg',
      'x00000000000000000000-00000000000000000010.seg',
      'sub/00000000000000000000-00000000000000000010.seg',
      'manifest-1.json',
      'manifest-00000000000000000001.seg',
      'manifest-00000000000000000001.json.bak',
      'Manifest-00000000000000000001.json',
      'node-id',
    ];
    for (const name of names) expect(parseStreamObjectKey(prefix, prefix + name)).toBeUndefined();
    // The whole prefix must match, its trailing '/' included.
    expect(parseStreamObjectKey(prefix, `${prefix.slice(0, -1)}_00000000000000000000-00000000000000000010.seg`)).toBeUndefined();
    expect(parseStreamObjectKey(prefix, `${prefix.slice(0, -1)}00000000000000000000-00000000000000000010.seg`)).toBeUndefined();
  });
});
