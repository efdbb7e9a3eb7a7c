/**
 * The object store: one interface (`object-store.ts`), three implementations (filesystem, S3,
 * memory) and decorators for retries, metrics and fault injection. A production store is
 * composed as `new RetryingObjectStore(new MeteredObjectStore(base), …)` — metrics inside the
 * retries, so they count the requests the store really saw — and checked at startup with
 * `verifyStoreRefusesOverwrite`.
 *
 * `S3ObjectStore` is not re-exported: import `./s3-store.ts` (lazily, when S3 is configured),
 * so the embedded default never loads the AWS SDK (about 100 ms of startup).
 */
export type { S3ObjectStoreConfig } from './s3-store.ts';
export * from './object-store.ts';
export { MemoryObjectStore, type MemoryObjectStoreOptions } from './memory-store.ts';
export { FsObjectStore, type FsObjectStoreOptions } from './fs-store.ts';
export { nodeStoreFs, type StoreFs, type StoreFileHandle } from './store-fs.ts';
export {
  RetryingObjectStore,
  RETRY_POLICY_DEFAULT,
  type RetryEvent,
  type RetryingObjectStoreOptions,
  type RetryPolicy,
} from './retrying-store.ts';
export {
  MeteredObjectStore,
  type ObjectStoreFinishListener,
  type ObjectStoreMetricsSnapshot,
  type OperationMetrics,
} from './metered-store.ts';
export {
  FaultInjectingObjectStore,
  injectedUnavailable,
  type FaultAction,
  type FaultHandle,
  type FaultRule,
  type ObjectStoreCall,
} from './fault-injecting-store.ts';
export {
  ObjectStoreOverwriteUnsafeError,
  OVERWRITE_PROBE_KEY_PREFIX,
  putCreateIfAbsent,
  storedBytesEqual,
  verifyStoreRefusesOverwrite,
  type OverwriteCheckOptions,
} from './overwrite-check.ts';
