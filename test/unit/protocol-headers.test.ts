import { describe, expect, test } from 'vitest';
import { BadRequestError } from '../../src/protocol/errors.ts';
import { formatOffset } from '../../src/protocol/offset.ts';
import {
  parseClosedFlag,
  parseExpiresAtMs,
  parseForkOffset,
  parseForkSubOffset,
  parseProducerHeaders,
  parseRetention,
  parseTtlSeconds,
  singleHeader,
} from '../../src/protocol/headers.ts';

describe('protocol headers', () => {
  test('singleHeader rejects a repeated header', () => {
    expect(singleHeader(undefined, 'X')).toBeUndefined();
    expect(singleHeader('a', 'X')).toBe('a');
    expect(singleHeader(['a'], 'X')).toBe('a');
    expect(() => singleHeader(['a', 'b'], 'X')).toThrow(BadRequestError);
  });

  test('Stream-Closed is set only by "true", any case', () => {
    expect(parseClosedFlag('true')).toBe(true);
    expect(parseClosedFlag(' TRUE ')).toBe(true);
    expect(parseClosedFlag('false')).toBe(false);
    expect(parseClosedFlag('1')).toBe(false);
    expect(parseClosedFlag(undefined)).toBe(false);
  });

  test('Stream-TTL: non-negative integer seconds, no sign or leading zeros', () => {
    expect(parseTtlSeconds(undefined)).toBeUndefined();
    expect(parseTtlSeconds('0')).toBe(0);
    expect(parseTtlSeconds('3600')).toBe(3600);
    for (const bad of ['-1', '+1', '01', '1.5', 'abc', '', '1e3']) expect(() => parseTtlSeconds(bad), bad).toThrow(BadRequestError);
  });

  test('retention headers: positive integers', () => {
    expect(parseRetention('60000', 'Cairn-Retention-Ms')).toBe(60_000);
    expect(parseRetention(undefined, 'Cairn-Retention-Ms')).toBeUndefined();
    expect(() => parseRetention('0', 'Cairn-Retention-Ms')).toThrow(/Cairn-Retention-Ms/);
    expect(() => parseRetention('007', 'Cairn-Retention-Bytes')).toThrow(BadRequestError);
  });

  test('Stream-Expires-At: RFC 3339 to ms since the epoch', () => {
    expect(parseExpiresAtMs('2030-01-02T03:04:05Z')).toBe(Date.UTC(2030, 0, 2, 3, 4, 5));
    expect(parseExpiresAtMs('2030-01-02T03:04:05.250+01:00')).toBe(Date.UTC(2030, 0, 2, 2, 4, 5, 250));
    expect(parseExpiresAtMs(undefined)).toBeUndefined();
    for (const bad of ['2030-01-02', 'tomorrow', '2030-13-45T00:00:00Z']) expect(() => parseExpiresAtMs(bad), bad).toThrow(BadRequestError);
  });

  test('producer headers come all three or none', () => {
    expect(parseProducerHeaders(undefined, undefined, undefined)).toBeUndefined();
    expect(parseProducerHeaders('p', '2', '7')).toEqual({ producerId: 'p', epoch: 2, seq: 7 });
    expect(parseProducerHeaders('p', '0', String(Number.MAX_SAFE_INTEGER))).toEqual({ producerId: 'p', epoch: 0, seq: Number.MAX_SAFE_INTEGER });
    expect(() => parseProducerHeaders('p', '1', undefined)).toThrow(/together/);
    expect(() => parseProducerHeaders(' ', '1', '1')).toThrow(/empty/);
    expect(() => parseProducerHeaders('p', '-1', '1')).toThrow(/Producer-Epoch/);
    expect(() => parseProducerHeaders('p', '1', String(Number.MAX_SAFE_INTEGER + 2))).toThrow(/Producer-Seq/);
  });

  test('fork offset and sub-offset', () => {
    expect(parseForkOffset(undefined)).toBeUndefined();
    expect(parseForkOffset(formatOffset(3, 50))).toMatchObject({ incarnation: 3, position: 50 });
    expect(() => parseForkOffset('not-an-offset')).toThrow(BadRequestError);
    expect(parseForkSubOffset('12')).toBe(12);
    expect(parseForkSubOffset(undefined)).toBeUndefined();
    expect(() => parseForkSubOffset('-3')).toThrow(BadRequestError);
  });
});
