/**
 * The object-store contract against a real S3-compatible server (test/support/s3-server.ts:
 * `S3_ENDPOINT`, else a one-node Ceph RGW started here), plus what only S3 has: DeleteObjects
 * batching, the startup overwrite check, and error mapping for a missing bucket and a dead
 * endpoint. Without any S3 server the file fails under CI and is skipped locally, loudly.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { seededRandom } from '../../src/clock.ts';
import { listAll, ObjectStoreRequestError, ObjectStoreUnavailableError } from '../../src/object-store/object-store.ts';
import { verifyStoreRefusesOverwrite } from '../../src/object-store/overwrite-check.ts';
import { S3ObjectStore } from '../../src/object-store/s3-store.ts';
import { objectStoreContract } from '../support/s3-contract.ts';
import { findS3ServerSource, startS3Server, warnS3Unavailable, type S3TestServer } from '../support/s3-server.ts';

const source = findS3ServerSource();

if (source.kind === 'unavailable') {
  warnS3Unavailable(source.reason);
  test.runIf(Boolean(process.env.CI))('an S3-compatible server is available (required in CI)', () => {
    throw new Error(`no S3-compatible server: ${source.reason}`);
  });
  test.skip(`S3 contract (skipped: ${source.reason})`, () => {});
} else {
  let server: S3TestServer;

  beforeAll(async () => {
    server = await startS3Server(source);
    console.info(`S3 test server: ${server.kind}, obtained in ${server.startMs} ms`);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  }, 60_000);

  objectStoreContract(`S3 (${source.kind})`, async () => ({ store: new S3ObjectStore(server.storeConfig()) }));

  describe('S3-specific', () => {
    test('deleteMany over more than one DeleteObjects batch (1000 keys)', async () => {
      const store = new S3ObjectStore(server.storeConfig());
      try {
        const keys = Array.from({ length: 1010 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
        const body = new Uint8Array([1]);
        for (let i = 0; i < keys.length; i += 50) {
          await Promise.all(keys.slice(i, i + 50).map((key) => store.put(key, body)));
        }
        await store.put('keep', body);
        await store.deleteMany(keys);
        const left: string[] = [];
        for await (const object of listAll(store, '')) left.push(object.key);
        expect(left).toEqual(['keep']);
      } finally {
        await store.close();
      }
    }, 120_000);

    test('the store-level prefix isolates stores in one bucket', async () => {
      const a = new S3ObjectStore(server.storeConfig('tenant-a'));
      const b = new S3ObjectStore(server.storeConfig('tenant-b'));
      try {
        await a.put('x', new Uint8Array([1]));
        await b.put('x', new Uint8Array([2, 2]));
        expect((await a.get('x')).body).toEqual(new Uint8Array([1]));
        expect((await b.list({ prefix: '' })).objects).toEqual([{ key: 'x', sizeBytes: 2 }]);
      } finally {
        await a.close();
        await b.close();
      }
    });

    test('the startup overwrite check passes: the server enforces If-None-Match: *', async () => {
      const store = new S3ObjectStore(server.storeConfig());
      try {
        await expect(verifyStoreRefusesOverwrite(store, { random: seededRandom(1) })).resolves.toEqual({ enforced: true });
        expect((await store.list({ prefix: '' })).objects).toEqual([]); // the probe cleaned up
      } finally {
        await store.close();
      }
    });

    test('a missing bucket is a non-retryable ObjectStoreRequestError', async () => {
      const store = new S3ObjectStore({ ...server.storeConfig(), bucket: 'cairn-no-such-bucket' });
      try {
        const error = await store.get('x').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ObjectStoreRequestError);
        expect((error as ObjectStoreRequestError).storeCode).toContain('NoSuchBucket');
        await expect(store.put('x', new Uint8Array(1))).rejects.toMatchObject({ retryable: false });
      } finally {
        await store.close();
      }
    });

    test('an endpoint that refuses connections is a retryable ObjectStoreUnavailableError', async () => {
      // Port 1 on loopback: nothing listens there, so the connection is refused at once.
      const store = new S3ObjectStore({ ...server.storeConfig(), endpoint: 'http://127.0.0.1:1' });
      try {
        const error = await store.head('x').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ObjectStoreUnavailableError);
        expect(error).toMatchObject({ code: 'OBJECT_STORE_UNAVAILABLE', retryable: true, statusCode: 503 });
      } finally {
        await store.close();
      }
    });
  });
}
