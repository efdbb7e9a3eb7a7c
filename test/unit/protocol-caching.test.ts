import { describe, expect, test } from 'vitest';
import {
  CACHE_CONTROL_IMMUTABLE,
  CACHE_CONTROL_PRIVATE,
  CACHE_CONTROL_PRIVATE_IMMUTABLE,
  CACHE_CONTROL_SHARED,
  ifNoneMatchHits,
  readCacheControl,
  readEtag,
} from '../../src/protocol/caching.ts';

describe('protocol caching', () => {
  test('Cache-Control of a read: immutable or not, shared caches allowed or not', () => {
    expect(readCacheControl(true, true)).toBe(CACHE_CONTROL_IMMUTABLE);
    expect(readCacheControl(false, true)).toBe(CACHE_CONTROL_SHARED);
    expect(readCacheControl(true, false)).toBe(CACHE_CONTROL_PRIVATE_IMMUTABLE);
    expect(readCacheControl(false, false)).toBe(CACHE_CONTROL_PRIVATE);
    expect(CACHE_CONTROL_IMMUTABLE).toContain('immutable');
    expect(CACHE_CONTROL_PRIVATE).toMatch(/^private/);
  });

  test('the ETag names incarnation, range and closure', () => {
    expect(readEtag(3, 0, 100, false)).toBe('"3:0:100"');
    expect(readEtag(3, 0, 100, true)).toBe('"3:0:100:c"');
    expect(readEtag(4, 0, 100, false)).not.toBe(readEtag(3, 0, 100, false));
  });

  test('If-None-Match: a list, weak or strong, or *', () => {
    const etag = readEtag(1, 0, 10, false);
    expect(ifNoneMatchHits(undefined, etag)).toBe(false);
    expect(ifNoneMatchHits(etag, etag)).toBe(true);
    expect(ifNoneMatchHits(`W/${etag}`, etag)).toBe(true);
    expect(ifNoneMatchHits(`"x", ${etag}`, etag)).toBe(true);
    expect(ifNoneMatchHits('*', etag)).toBe(true);
    expect(ifNoneMatchHits('"1:0:11"', etag)).toBe(false);
    expect(ifNoneMatchHits(readEtag(1, 0, 10, true), etag)).toBe(false);
  });
});
