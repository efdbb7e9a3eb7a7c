/**
 * The object-store contract (test/support/s3-contract.ts) against the memory and filesystem
 * stores. The same suite runs against a real S3-compatible server in
 * test/integration/object-store-s3.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FsObjectStore } from '../../src/object-store/fs-store.ts';
import { MemoryObjectStore } from '../../src/object-store/memory-store.ts';
import { objectStoreContract } from '../support/s3-contract.ts';

objectStoreContract('memory', async () => ({ store: new MemoryObjectStore() }));

objectStoreContract('filesystem', async () => {
  const rootDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-objects-'));
  return {
    // A root that does not exist yet: the store creates it on the first put.
    store: new FsObjectStore({ rootDir: path.join(rootDir, 'objects') }),
    dispose: () => rm(rootDir, { recursive: true, force: true }),
  };
});
