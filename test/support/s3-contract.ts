/**
 * The contract of `ObjectStore` — S3's object semantics as Cairn relies on them — as one vitest
 * suite that runs against any implementation: memory and filesystem in
 * `test/unit/object-store-contract.test.ts`, a real S3-compatible server in
 * `test/integration/object-store-s3.test.ts`. Each test gets a fresh, empty store.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/clock.ts';
import {
  InvalidObjectKeyError,
  listAll,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectRangeNotSatisfiableError,
  ObjectStoreUnavailableError,
  putBody,
  type ListPage,
  type ObjectStore,
} from '../../src/object-store/object-store.ts';

export interface ContractStore {
  store: ObjectStore;
  /** Removes what the store left behind (temp dirs); called after `store.close()`. */
  dispose?(): Promise<void>;
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

function randomBody(lengthBytes: number, seed: number): Uint8Array {
  const random = seededRandom(seed);
  const body = new Uint8Array(lengthBytes);
  for (let i = 0; i < lengthBytes; i++) body[i] = Math.floor(random.next() * 256);
  return body;
}

async function putAll(store: ObjectStore, keys: readonly string[]): Promise<void> {
  // A few at a time: fast on a real server without flooding it.
  for (let i = 0; i < keys.length; i += 16) {
    await Promise.all(keys.slice(i, i + 16).map((key) => store.put(key, bytes(key))));
  }
}

async function keysOf(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of listAll(store, prefix)) keys.push(object.key);
  return keys;
}

export function objectStoreContract(name: string, open: () => Promise<ContractStore>): void {
  describe(`ObjectStore contract: ${name}`, () => {
    let opened: ContractStore;
    let store: ObjectStore;

    beforeEach(async () => {
      opened = await open();
      store = opened.store;
    });
    afterEach(async () => {
      await store.close();
      await opened.dispose?.();
    });

    test('put then get returns the bytes; head returns the size', async () => {
      await store.put('seg/one', bytes('hello, cairn'));
      const got = await store.get('seg/one');
      expect(Buffer.from(got.body).toString()).toBe('hello, cairn');
      expect(got.sizeBytes).toBe(12);
      expect(await store.head('seg/one')).toEqual({ key: 'seg/one', sizeBytes: 12 });
    });

    test('binary safety: every byte value, a 1 MiB random body, and an empty body', async () => {
      const everyByte = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
      const large = randomBody(1024 * 1024, 7);
      await store.put('bin/every-byte', everyByte);
      await store.put('bin/large', large);
      await store.put('bin/empty', new Uint8Array(0));
      expect(Buffer.compare((await store.get('bin/every-byte')).body, everyByte)).toBe(0);
      const gotLarge = await store.get('bin/large');
      expect(gotLarge.body.length).toBe(large.length);
      expect(Buffer.compare(gotLarge.body, large)).toBe(0);
      expect((await store.get('bin/empty')).body.length).toBe(0);
      expect((await store.head('bin/empty')).sizeBytes).toBe(0);
    });

    test('the stored object does not change when the caller reuses its buffer', async () => {
      const body = bytes('abcdef');
      await store.put('k', body);
      body.fill(0);
      const got = await store.get('k');
      expect(Buffer.from(got.body).toString()).toBe('abcdef');
      got.body.fill(0);
      expect(Buffer.from((await store.get('k')).body).toString()).toBe('abcdef');
    });

    test('ranged get: start/end, clipped end, single byte; sizeBytes is the whole object', async () => {
      const body = randomBody(1000, 3);
      await store.put('r', body);
      const cases: [number, number, number][] = [
        [0, 10, 10],
        [100, 356, 356],
        [999, 1000, 1000],
        [990, 5000, 1000], // end past the object: clipped
        [0, 1000, 1000],
      ];
      for (const [startByte, endByte, clippedEnd] of cases) {
        const got = await store.get('r', { startByte, endByte });
        expect(got.sizeBytes).toBe(1000);
        expect(Buffer.compare(got.body, body.subarray(startByte, clippedEnd)), `[${startByte}, ${endByte})`).toBe(0);
      }
    });

    test('ranged get starting at or past the end fails with ObjectRangeNotSatisfiableError', async () => {
      await store.put('r', randomBody(100, 4));
      await expect(store.get('r', { startByte: 100, endByte: 200 })).rejects.toBeInstanceOf(ObjectRangeNotSatisfiableError);
      await expect(store.get('r', { startByte: 5000, endByte: 5001 })).rejects.toMatchObject({
        code: 'OBJECT_RANGE_NOT_SATISFIABLE',
        retryable: false,
      });
      await store.put('empty', new Uint8Array(0));
      await expect(store.get('empty', { startByte: 0, endByte: 1 })).rejects.toBeInstanceOf(ObjectRangeNotSatisfiableError);
    });

    test('a malformed range is a RangeError before any I/O', async () => {
      await store.put('r', bytes('abc'));
      await expect(store.get('r', { startByte: 2, endByte: 2 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.get('r', { startByte: -1, endByte: 2 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.get('r', { startByte: 0.5, endByte: 2 })).rejects.toBeInstanceOf(RangeError);
    });

    test('create-if-absent: a second put of a key fails and leaves the first body', async () => {
      await store.put('seg/x', bytes('first'));
      const error = await store.put('seg/x', bytes('second')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ObjectAlreadyExistsError);
      expect(error).toMatchObject({ code: 'OBJECT_ALREADY_EXISTS', retryable: false, operation: 'put', key: 'seg/x' });
      expect(Buffer.from((await store.get('seg/x')).body).toString()).toBe('first');
    });

    test('a body given as parts (putBody) is stored as their concatenation, create-if-absent', async () => {
      const whole = randomBody(300_000, 11);
      const parts = [whole.subarray(0, 1), whole.subarray(1, 65_537), whole.subarray(65_537, 65_537), whole.subarray(65_537)];
      await putBody(store, 'parts/a', parts);
      expect(Buffer.from((await store.get('parts/a')).body).equals(whole)).toBe(true);
      expect((await store.head('parts/a')).sizeBytes).toBe(whole.length);
      await expect(putBody(store, 'parts/a', [bytes('other')])).rejects.toBeInstanceOf(ObjectAlreadyExistsError);
      expect(Buffer.from((await store.get('parts/a')).body).equals(whole)).toBe(true);
      await putBody(store, 'parts/a', [bytes('new '), bytes('body')], { overwrite: true });
      expect(new TextDecoder().decode((await store.get('parts/a')).body)).toBe('new body');
    });

    test('overwrite: true replaces an object, and creates an absent one', async () => {
      await store.put('m', bytes('v1'));
      await store.put('m', bytes('version 2'), { overwrite: true });
      expect(Buffer.from((await store.get('m')).body).toString()).toBe('version 2');
      expect((await store.head('m')).sizeBytes).toBe(9);
      await store.put('fresh', bytes('new'), { overwrite: true });
      expect(Buffer.from((await store.get('fresh')).body).toString()).toBe('new');
    });

    test('concurrent create-if-absent puts of one key: exactly one wins', async () => {
      const bodies = Array.from({ length: 8 }, (_, i) => bytes(`writer-${i}`));
      const results = await Promise.allSettled(bodies.map((body) => store.put('race', body)));
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const result of results) {
        if (result.status === 'rejected') {
          // S3 may answer 409 ConditionalRequestConflict (retryable) to a write racing another.
          expect(
            result.reason instanceof ObjectAlreadyExistsError || result.reason instanceof ObjectStoreUnavailableError,
            String(result.reason),
          ).toBe(true);
        }
      }
      expect(Buffer.from((await store.get('race')).body).toString()).toBe(`writer-${winners[0]}`);
    });

    test('get and head of a missing key fail with ObjectNotFoundError', async () => {
      await store.put('present', bytes('x'));
      const getError = await store.get('absent').catch((e: unknown) => e);
      expect(getError).toBeInstanceOf(ObjectNotFoundError);
      expect(getError).toMatchObject({ code: 'OBJECT_NOT_FOUND', retryable: false, operation: 'get', key: 'absent' });
      await expect(store.get('absent', { startByte: 0, endByte: 1 })).rejects.toBeInstanceOf(ObjectNotFoundError);
      await expect(store.head('absent')).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND', operation: 'head' });
      await expect(store.head('present/child')).rejects.toBeInstanceOf(ObjectNotFoundError);
    });

    test('keys with slashes: a, a/b and a/b/c coexist', async () => {
      await store.put('a/b', bytes('ab'));
      await store.put('a', bytes('a'));
      await store.put('a/b/c', bytes('abc'));
      expect(Buffer.from((await store.get('a')).body).toString()).toBe('a');
      expect(Buffer.from((await store.get('a/b')).body).toString()).toBe('ab');
      expect(Buffer.from((await store.get('a/b/c')).body).toString()).toBe('abc');
      expect(await keysOf(store, 'a')).toEqual(['a', 'a/b', 'a/b/c']);
      expect(await keysOf(store, 'a/')).toEqual(['a/b', 'a/b/c']);
      expect(await keysOf(store, 'a/b/')).toEqual(['a/b/c']);
    });

    test('keys with spaces, punctuation and non-ASCII characters round-trip', async () => {
      const keys = ['p/with space', 'p/plus+percent%25', 'p/tilde~and.dots..x', 'p/.leading-dot', 'p/é', 'p/日本', 'p/😀'];
      await putAll(store, keys);
      for (const key of keys) expect(Buffer.from((await store.get(key)).body).toString()).toBe(key);
      expect((await keysOf(store, 'p/')).sort()).toEqual([...keys].sort());
    });

    test('list returns keys in UTF-8 byte order, with prefix filtering', async () => {
      // '-' (0x2d) < '.' < '/' (0x2f) < '0' < 'A' < '_' < 'a' < 'é' (U+00E9) < '～' (U+FF5E) < '😀' (U+1F600)
      const ordered = [
        'k/a-c',
        'k/a.b',
        'k/a/b',
        'k/a0',
        'k/aA',
        'k/a_',
        'k/aa',
        'k/aé',
        'k/a～',
        'k/a😀',
        'k/b',
      ];
      await putAll(store, [...ordered].reverse());
      await store.put('j', bytes('outside'));
      await store.put('kk', bytes('outside'));
      const page = await store.list({ prefix: 'k/' });
      expect(page.objects.map((o) => o.key)).toEqual(ordered);
      expect(page.nextStartAfter).toBeUndefined();
      expect(page.objects[0]).toEqual({ key: 'k/a-c', sizeBytes: 5 });
      expect((await store.list({ prefix: 'k/a' })).objects.map((o) => o.key)).toEqual(ordered.slice(0, -1));
      expect((await store.list({ prefix: 'k/a/' })).objects.map((o) => o.key)).toEqual(['k/a/b']);
      expect((await store.list({ prefix: 'k' })).objects.map((o) => o.key)).toEqual([...ordered, 'kk']);
      expect((await store.list({ prefix: '' })).objects.map((o) => o.key)).toEqual(['j', ...ordered, 'kk']);
      expect((await store.list({ prefix: 'nothing/' })).objects).toEqual([]);
    });

    test('list with startAfter returns only later keys, whether or not startAfter is a key', async () => {
      const keys = ['s/00', 's/01', 's/02', 's/10', 's/11', 's/2/x'];
      await putAll(store, keys);
      const after = async (startAfter: string, prefix = 's/') =>
        (await store.list({ prefix, startAfter })).objects.map((o) => o.key);
      expect(await after('s/01')).toEqual(['s/02', 's/10', 's/11', 's/2/x']);
      expect(await after('s/015')).toEqual(['s/02', 's/10', 's/11', 's/2/x']);
      expect(await after('s/1')).toEqual(['s/10', 's/11', 's/2/x']);
      expect(await after('s/2')).toEqual(['s/2/x']);
      expect(await after('s/2/x')).toEqual([]);
      expect(await after('a')).toEqual(keys); // before the prefix
      expect(await after('t')).toEqual([]); // after the prefix
    });

    test('list pages: limit, nextStartAfter, and every key exactly once across pages', async () => {
      const keys = Array.from({ length: 23 }, (_, i) => `pg/${String(i).padStart(4, '0')}`).concat(['pg/x/deeper/1', 'pg/x/2']);
      await putAll(store, keys);
      const expected = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      const pages: ListPage[] = [];
      let startAfter: string | undefined;
      do {
        const page = await store.list({ prefix: 'pg/', startAfter, limit: 7 });
        pages.push(page);
        startAfter = page.nextStartAfter;
      } while (startAfter !== undefined && pages.length < 10);
      expect(pages.map((p) => p.objects.length)).toEqual([7, 7, 7, 4]);
      for (const page of pages.slice(0, -1)) expect(page.nextStartAfter).toBe(page.objects[page.objects.length - 1]!.key);
      expect(pages.flatMap((p) => p.objects.map((o) => o.key))).toEqual(expected);
      // An exact multiple of the limit ends with a full page and then an empty one, or without nextStartAfter.
      const exact = await store.list({ prefix: 'pg/', startAfter: expected[expected.length - 6], limit: 5 });
      expect(exact.objects.map((o) => o.key)).toEqual(expected.slice(-5));
      if (exact.nextStartAfter !== undefined) {
        expect((await store.list({ prefix: 'pg/', startAfter: exact.nextStartAfter, limit: 5 })).objects).toEqual([]);
      }
      await expect(store.list({ prefix: 'pg/', limit: 0 })).rejects.toBeInstanceOf(RangeError);
      await expect(store.list({ prefix: 'pg/', limit: 1001 })).rejects.toBeInstanceOf(RangeError);
    });

    test('delete removes an object; deleting a missing key succeeds', async () => {
      await store.put('d/1', bytes('1'));
      await store.put('d/2', bytes('2'));
      await store.delete('d/1');
      await expect(store.get('d/1')).rejects.toBeInstanceOf(ObjectNotFoundError);
      expect(await keysOf(store, 'd/')).toEqual(['d/2']);
      await store.delete('d/1');
      await store.delete('never/existed');
      // A deleted key can be created again.
      await store.put('d/1', bytes('again'));
      expect(Buffer.from((await store.get('d/1')).body).toString()).toBe('again');
    });

    test('deleteMany removes the listed keys, ignores missing ones, keeps the rest', async () => {
      const keys = Array.from({ length: 20 }, (_, i) => `dm/${String(i).padStart(2, '0')}`);
      await putAll(store, keys);
      await store.deleteMany([...keys.slice(0, 15), 'dm/missing', 'dm/00']);
      expect(await keysOf(store, 'dm/')).toEqual(keys.slice(15));
      await store.deleteMany([]);
      await store.deleteMany(keys);
      expect(await keysOf(store, 'dm/')).toEqual([]);
    });

    test('invalid keys are refused with InvalidObjectKeyError', async () => {
      const invalid = ['', '/a', 'a/', 'a//b', 'a/./b', '../x', 'a/..', 'nul\u0000byte', 'new\nline', 'x'.repeat(1025)];
      for (const key of invalid) {
        await expect(store.put(key, bytes('x')), JSON.stringify(key)).rejects.toBeInstanceOf(InvalidObjectKeyError);
        await expect(store.get(key), JSON.stringify(key)).rejects.toMatchObject({ code: 'OBJECT_KEY_INVALID' });
      }
      await expect(store.deleteMany(['ok', 'a//b'])).rejects.toBeInstanceOf(InvalidObjectKeyError);
      expect((await store.list({ prefix: '' })).objects).toEqual([]);
    });
  });
}
