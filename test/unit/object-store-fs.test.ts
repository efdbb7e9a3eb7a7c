/**
 * What only the filesystem store has: its on-disk layout, temporary files, directory pruning,
 * and races between puts and deletes in one directory. Its object semantics are checked by
 * the contract suite (object-store-contract.test.ts).
 */
import fc from 'fast-check';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { decodeComponent, encodeComponent, FsObjectStore } from '../../src/object-store/fs-store.ts';
import { ObjectStoreRequestError, listAll } from '../../src/object-store/object-store.ts';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('FsObjectStore', () => {
  let rootDir: string;
  let store: FsObjectStore;

  beforeEach(async () => {
    rootDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-fs-store-'));
    store = new FsObjectStore({ rootDir });
  });
  afterEach(async () => {
    await rm(rootDir, { recursive: true, force: true });
  });

  test('lays a key out as directories with a ~ suffix and a plain file name', async () => {
    await store.put('ab/stream-1/3/0000-0100.seg', bytes('segment'));
    expect(await readFile(path.join(rootDir, 'ab~', 'stream-1~', '3~', '0000-0100.seg'), 'utf8')).toBe('segment');
    await store.put('p/.x y', bytes('odd'));
    expect(await readFile(path.join(rootDir, 'p~', '%2Ex%20y'), 'utf8')).toBe('odd');
    expect(store.description).toBe(`filesystem ${rootDir}`);
  });

  test('leaves no temporary file behind, after a put or a refused put', async () => {
    await store.put('d/k', bytes('1'));
    await store.put('d/k', bytes('2')).catch(() => {});
    await store.put('d/k', bytes('3'), { overwrite: true });
    expect(await readdir(path.join(rootDir, 'd~'))).toEqual(['k']);
  });

  test('a stale temporary file and foreign files are never listed', async () => {
    await store.put('d/k', bytes('1'));
    await writeFile(path.join(rootDir, 'd~', '.tmp-123-1-abcdef'), 'half written');
    await writeFile(path.join(rootDir, 'd~', 'bad~name'), 'not ours');
    await writeFile(path.join(rootDir, 'd~', 'bad%zz'), 'not ours');
    await writeFile(path.join(rootDir, 'd~', 'a%41'), 'not canonical: a%41 would be aA');
    const keys: string[] = [];
    for await (const object of listAll(store, '')) keys.push(object.key);
    expect(keys).toEqual(['d/k']);
  });

  test('delete prunes directories left empty, up to but excluding the root', async () => {
    await store.put('a/b/c/one', bytes('1'));
    await store.put('a/other', bytes('2'));
    await store.delete('a/b/c/one');
    expect(await readdir(rootDir)).toEqual(['.tmp', 'a~']);
    expect(await readdir(path.join(rootDir, 'a~'))).toEqual(['other']);
    await store.deleteMany(['a/other']);
    expect(await readdir(rootDir)).toEqual(['.tmp']);
    expect(await readdir(path.join(rootDir, '.tmp'))).toEqual([]);
  });

  test('the first put removes temporary files another process left in .tmp, and only those', async () => {
    await mkdir(path.join(rootDir, '.tmp'), { recursive: true });
    await writeFile(path.join(rootDir, '.tmp', '.tmp-999999999-1-abcdef'), 'interrupted upload');
    await writeFile(path.join(rootDir, '.tmp', `.tmp-${process.pid}-0-abcdef`), 'this process, in flight');
    await store.put('x', bytes('x'));
    expect(await readdir(path.join(rootDir, '.tmp'))).toEqual([`.tmp-${process.pid}-0-abcdef`]);
    expect((await store.list({ prefix: '' })).objects.map((object) => object.key)).toEqual(['x']);
  });

  test('puts and deletes racing in one directory never lose a put', async () => {
    // Deleting the last object prunes its directory, which a concurrent put may have just created.
    // Starting the put after a varying number of event-loop turns sweeps it across the delete's steps.
    const turns = (n: number) => new Promise<void>((resolve) => (n === 0 ? resolve() : setImmediate(() => void turns(n - 1).then(resolve))));
    for (let round = 0; round < 300; round++) {
      await store.put(`race/${round}/a`, bytes('a'));
      const put = turns(round % 15).then(() => store.put(`race/${round}/b`, bytes('b')));
      await Promise.all([store.delete(`race/${round}/a`), put]);
      expect((await store.get(`race/${round}/b`)).body).toEqual(bytes('b'));
    }
  });

  test('a key component too long for a file name is a non-retryable request error', async () => {
    const error = await store.put(`x/${'é'.repeat(100)}`, bytes('1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectStoreRequestError);
    expect(error).toMatchObject({ storeCode: 'ENAMETOOLONG', retryable: false });
  });

  test('a file where a directory should be is reported, not hidden', async () => {
    await mkdir(path.join(rootDir), { recursive: true });
    await writeFile(path.join(rootDir, 'blocked~'), 'a file squatting on a directory name');
    await expect(store.put('blocked/k', bytes('1'))).rejects.toBeInstanceOf(ObjectStoreRequestError);
  });
});

describe('fs-store key component encoding', () => {
  test('decode(encode(c)) = c, and encoded names use only safe characters and never start with "."', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), (component) => {
        const name = encodeComponent(component);
        expect(name).toMatch(/^[A-Za-z0-9_%-][A-Za-z0-9_.%-]*$/);
        expect(decodeComponent(name)).toBe(component);
      }),
      { numRuns: 500 },
    );
  });

  test('names encodeComponent cannot produce decode to undefined', () => {
    for (const name of ['.tmp-1', 'a~', '%2', '%zz', '%41', 'a b', '%C3', '']) expect(decodeComponent(name), name).toBeUndefined();
  });
});
