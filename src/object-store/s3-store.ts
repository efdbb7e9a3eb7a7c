/**
 * The S3 `ObjectStore`, over `@aws-sdk/client-s3`. This is the only file that imports the SDK
 * (DESIGN.md): everything S3-specific — request shapes, status codes, error names, batching —
 * stays here and leaves as the interface's typed errors.
 *
 * - `put`: PutObject with `If-None-Match: *` unless overwriting; 412 → `ObjectAlreadyExistsError`.
 *   AWS answers 409 ConditionalRequestConflict while another conditional write to the key is in
 *   flight: that is retryable, and a retry then sees 412 or succeeds.
 * - `get`: GetObject, with `Range: bytes=a-b` for a range; the whole size comes from
 *   `Content-Range`.
 * - `list`: ListObjectsV2 with `Prefix`, `StartAfter`, `MaxKeys`.
 * - `deleteMany`: DeleteObjects in batches of at most 1000 keys (S3's limit), quiet mode.
 *
 * Bodies are sent as one contiguous buffer, so the SDK's default request checksums work on
 * every store tried (AWS, MinIO, Ceph RGW 16). Streamed bodies would need
 * `requestChecksumCalculation: 'WHEN_REQUIRED'` on RGW, which answers 411 to the SDK's
 * aws-chunked uploads (notes/s3-test-server.md).
 *
 * The SDK's own retries are off (`maxAttempts: 1`): `retrying-store.ts` is the one retry
 * policy, with the injected random source, so two layers never multiply attempts.
 */
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  assertValidByteRange,
  assertValidObjectKey,
  listLimit,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectRangeNotSatisfiableError,
  ObjectStoreError,
  ObjectStoreRequestError,
  ObjectStoreUnavailableError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';
import { ReceivedBody, S3HttpHandler } from './s3-http-handler.ts';

export interface S3ObjectStoreConfig {
  bucket: string;
  /** Key prefix inside the bucket, e.g. `cairn/prod`; a '/' is added if missing. Default ''. */
  prefix?: string;
  /** Endpoint URL for S3-compatible stores (MinIO, Ceph RGW, R2), e.g. `http://127.0.0.1:9000`. Default: AWS. */
  endpoint?: string;
  /** Default: the SDK's region provider chain (`AWS_REGION`, `~/.aws/config`). */
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible stores need. Default false. */
  forcePathStyle?: boolean;
  /** Static credentials, for tests. Default: the SDK's standard provider chain (env, profile, IMDS, …). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Time for one whole request and response before it fails as `ObjectStoreUnavailableError`.
   * Default 30,000 ms: an 8 MiB segment at a slow 1 MiB/s still fits, while a hung connection
   * is given up well before a sealer's backlog matters.
   */
  requestTimeoutMs?: number;
  /** Time to establish a TCP/TLS connection. Default 5,000 ms (S3 answers in tens of ms). */
  connectionTimeoutMs?: number;
  /** Passed to the SDK. Default `WHEN_SUPPORTED` (CRC32 on uploads; see the module doc). */
  requestChecksumCalculation?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
}

/** S3's DeleteObjects limit. */
const DELETE_BATCH_KEYS_MAX = 1000;
const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
const CONNECTION_TIMEOUT_MS_DEFAULT = 5_000;
/** The SDK's default socket pool size: enough for the sealer's uploads plus cold reads in parallel. */
const CONNECTIONS_PER_ORIGIN_MAX = 50;

/** S3 error names that mean "slow down / try again" whatever their status. */
const TRANSIENT_S3_ERRORS = new Set([
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'Throttling',
  'ThrottlingException',
  'ConditionalRequestConflict',
  'TimeoutError',
]);

/** Socket-level error codes: the request may not have reached S3, or its answer was lost. */
const TRANSIENT_NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

export class S3ObjectStore implements ObjectStore {
  readonly description: string;
  readonly #client: S3Client;
  readonly #bucket: string;
  /** '' or ends with '/'. */
  readonly #prefix: string;

  constructor(config: S3ObjectStoreConfig) {
    this.#bucket = config.bucket;
    const prefix = (config.prefix ?? '').replace(/^\/+/, '');
    this.#prefix = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.description = `s3://${config.bucket}/${this.#prefix}${config.endpoint ? ` at ${config.endpoint}` : ''}`;
    this.#client = new S3Client({
      endpoint: config.endpoint,
      region: config.region,
      forcePathStyle: config.forcePathStyle ?? false,
      credentials: config.credentials,
      maxAttempts: 1,
      requestChecksumCalculation: config.requestChecksumCalculation ?? 'WHEN_SUPPORTED',
      // No `Expect: 100-continue` round trip before uploads (segments are sent whole, and undici does not do it).
      expectContinueHeader: false,
      requestHandler: new S3HttpHandler({
        requestTimeoutMs: config.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT,
        connectionTimeoutMs: config.connectionTimeoutMs ?? CONNECTION_TIMEOUT_MS_DEFAULT,
        connectionsPerOriginMax: CONNECTIONS_PER_ORIGIN_MAX,
      }),
    });
  }

  /**
   * Creates the bucket if it does not exist (for tests and embedded setups against a local
   * S3-compatible server; production buckets are provisioned outside Cairn).
   * Errors: `ObjectStoreUnavailableError`, `ObjectStoreRequestError` (e.g. AccessDenied).
   */
  async ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket }));
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      if (name === 'BucketAlreadyOwnedByYou' || name === 'BucketAlreadyExists') return;
      throw translateError('put', '', error);
    }
  }

  async put(key: string, body: Uint8Array, options: PutOptions = {}): Promise<void> {
    assertValidObjectKey('put', key);
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#prefix + key,
          Body: body,
          ContentLength: body.length,
          IfNoneMatch: options.overwrite ? undefined : '*',
        }),
      );
    } catch (error) {
      throw translateError('put', key, error);
    }
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    assertValidObjectKey('get', key);
    if (range) assertValidByteRange(range);
    let body: Uint8Array;
    let contentRange: string | undefined;
    try {
      const response = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.#prefix + key,
          Range: range ? `bytes=${range.startByte}-${range.endByte - 1}` : undefined,
        }),
      );
      body = response.Body === undefined ? new Uint8Array(0) : await readBody(response.Body as AsyncIterable<Uint8Array>, response.ContentLength);
      contentRange = response.ContentRange;
      if (response.ContentLength !== undefined && response.ContentLength !== body.length) {
        throw new ObjectStoreUnavailableError(
          'get',
          key,
          `S3 GET ${key}: body has ${body.length} bytes, Content-Length said ${response.ContentLength}`,
        );
      }
    } catch (error) {
      throw translateError('get', key, error, range);
    }
    if (!range) return { body, sizeBytes: body.length };
    if (contentRange === undefined) {
      // The server ignored Range and sent the whole object (allowed by HTTP): cut it here.
      if (range.startByte >= body.length) throw new ObjectRangeNotSatisfiableError(key, range);
      return { body: body.slice(range.startByte, range.endByte), sizeBytes: body.length };
    }
    const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange);
    if (!match || Number(match[1]) !== range.startByte) {
      throw new ObjectStoreUnavailableError('get', key, `S3 GET ${key}: unexpected Content-Range "${contentRange}"`);
    }
    return { body, sizeBytes: Number(match[3]) };
  }

  async head(key: string): Promise<ObjectInfo> {
    assertValidObjectKey('head', key);
    try {
      const response = await this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }));
      return { key, sizeBytes: response.ContentLength ?? 0 };
    } catch (error) {
      throw translateError('head', key, error);
    }
  }

  async list(options: ListOptions): Promise<ListPage> {
    const limit = listLimit(options);
    const { prefix, startAfter } = options;
    try {
      let continuationToken: string | undefined;
      for (;;) {
        const response = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: this.#prefix + prefix,
            StartAfter: startAfter === undefined || continuationToken ? undefined : this.#prefix + startAfter,
            ContinuationToken: continuationToken,
            MaxKeys: limit,
          }),
        );
        const objects: ObjectInfo[] = (response.Contents ?? []).map((entry) => ({
          key: (entry.Key ?? '').slice(this.#prefix.length),
          sizeBytes: entry.Size ?? 0,
        }));
        if (!response.IsTruncated) return { objects };
        if (objects.length > 0) return { objects, nextStartAfter: objects[objects.length - 1]!.key };
        // Truncated yet empty: allowed by the API; follow the token rather than return a page with no key to resume after.
        continuationToken = response.NextContinuationToken;
        if (!continuationToken) {
          throw new ObjectStoreUnavailableError('list', prefix, 'S3 LIST: truncated page without a continuation token');
        }
      }
    } catch (error) {
      throw translateError('list', prefix, error);
    }
  }

  async delete(key: string): Promise<void> {
    assertValidObjectKey('delete', key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#prefix + key }));
    } catch (error) {
      throw translateError('delete', key, error);
    }
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    for (const key of keys) assertValidObjectKey('deleteMany', key);
    const unique = [...new Set(keys)];
    for (let i = 0; i < unique.length; i += DELETE_BATCH_KEYS_MAX) {
      const batch = unique.slice(i, i + DELETE_BATCH_KEYS_MAX);
      let errors: { Key?: string; Code?: string; Message?: string }[];
      try {
        const response = await this.#client.send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.#prefix + key })), Quiet: true },
          }),
        );
        errors = (response.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      } catch (error) {
        throw translateError('deleteMany', '', error);
      }
      if (errors.length > 0) {
        const first = errors[0]!;
        const key = (first.Key ?? '').slice(this.#prefix.length);
        const message = `S3 DeleteObjects: ${errors.length} of ${batch.length} keys failed, first ${key}: ${first.Code} ${first.Message ?? ''}`;
        throw TRANSIENT_S3_ERRORS.has(first.Code ?? '')
          ? new ObjectStoreUnavailableError('deleteMany', key, message)
          : new ObjectStoreRequestError('deleteMany', key, first.Code ?? 'UNKNOWN', message);
      }
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }
}

/**
 * A response body as one buffer. The transport (s3-http-handler.ts) has already received it into
 * one buffer of `Content-Length` bytes: taken as it is. Any other stream is read into one buffer
 * of `contentLength` bytes as it arrives (no list of chunks joined at the end); when the length is
 * unknown, the chunks joined. A body longer or shorter than announced comes back at its true
 * length, so the caller's length check fails it.
 */
async function readBody(body: AsyncIterable<Uint8Array>, contentLength: number | undefined): Promise<Uint8Array> {
  if (body instanceof ReceivedBody) return body.bytes;
  if (contentLength === undefined) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of body) chunks.push(chunk);
    return asUint8Array(Buffer.concat(chunks));
  }
  // Not zero-filled: every byte is overwritten, or the shorter view is returned.
  const bytes = asUint8Array(Buffer.allocUnsafeSlow(contentLength));
  let filled = 0;
  for await (const chunk of body) {
    if (filled + chunk.length > contentLength) return asUint8Array(Buffer.concat([bytes.subarray(0, filled), chunk]));
    bytes.set(chunk, filled);
    filled += chunk.length;
  }
  return filled === contentLength ? bytes : bytes.subarray(0, filled);
}

/** A plain Uint8Array over a Buffer's bytes (the interface's type; no copy). */
function asUint8Array(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Maps an SDK or network error to the interface's typed errors (by status and error name, never message text). */
function translateError(operation: ObjectStoreOperation, key: string, error: unknown, range?: ByteRange): Error {
  if (error instanceof ObjectStoreError) return error;
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    message?: string;
  };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? 'Error';
  const message = `S3 ${operation} ${key}: ${status ?? 'no response'} ${name}: ${e.message ?? String(error)}`;
  const options = { cause: error };
  if (operation === 'put' && (status === 412 || name === 'PreconditionFailed')) {
    return new ObjectAlreadyExistsError(key, options);
  }
  if ((operation === 'get' || operation === 'head') && status === 404 && name !== 'NoSuchBucket') {
    return new ObjectNotFoundError(operation, key, options);
  }
  if (operation === 'get' && range && (status === 416 || name === 'InvalidRange')) {
    return new ObjectRangeNotSatisfiableError(key, range, options);
  }
  const transient =
    (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
    TRANSIENT_S3_ERRORS.has(name) ||
    (status === undefined && e.code !== undefined && TRANSIENT_NETWORK_ERRORS.has(e.code));
  if (transient) return new ObjectStoreUnavailableError(operation, key, message, options);
  return new ObjectStoreRequestError(operation, key, status === undefined ? name : `${status} ${name}`, message, options);
}
