/**
 * The one error table (protocol/error-table.ts) and the one place that maps errors to responses
 * (http/error-handler.ts): every code has a status, `retryable` and its headers; every error class
 * is answered with its table row's status, headers and body.
 */
import Fastify from 'fastify';
import { StoredDataCorruptError } from '../../src/manifest/unit-checksum.ts';
import { ClusterUnavailableError, SlotNotOwnedError } from '../../src/cluster/errors.ts';
import { describe, expect, test } from 'vitest';
import { installErrorHandler } from '../../src/http/error-handler.ts';
import {
  AlreadyClaimedError,
  FencedError,
  NoPendingWorkError,
  SubscriptionConflictError,
  SubscriptionNotFoundError,
  SubscriptionsNotInClusterError,
  TokenInvalidError,
  WebhookUrlRejectedError,
} from '../../src/subscriptions/errors.ts';
import {
  BadRequestError,
  CairnError,
  ConflictError,
  ERROR_TABLE,
  ForbiddenError,
  GoneError,
  InspectorNotBuiltError,
  PayloadTooLargeError,
  ProducerSequenceGapError,
  ServiceUnavailableError,
  StaleProducerEpochError,
  StreamClosedError,
  StreamNotFoundError,
  TooManyRequestsError,
  UnauthorizedError,
  type ErrorCode,
} from '../../src/protocol/errors.ts';
import {
  WalCheckpointInProgressError,
  WalObjectStoreUnavailableError,
  WalFencedError,
  WalChainClaimedError,
  WalClosedError,
  WalCorruptError,
  WalNotDurableError,
  WalOverloadedError,
  WalRecordTooLargeError,
  WalWriteError,
} from '../../src/wal/index.ts';
import {
  InvalidObjectKeyError,
  ObjectAlreadyExistsError,
  ObjectNotFoundError,
  ObjectRangeNotSatisfiableError,
  ObjectStoreOverwriteUnsafeError,
  ObjectStoreRequestError,
  ObjectStoreUnavailableError,
} from '../../src/object-store/index.ts';
import {
  ProxyRequestError,
  RedirectNotAllowedError,
  SignatureError,
  UpstreamNotAllowedError,
  UpstreamTimeoutError,
  ProxyStreamNotFoundError,
  UpstreamUnreachableError,
} from '../../src/proxy/errors.ts';

/** One instance of every error class, covering every code of the table. */
const samples: CairnError[] = [
  new BadRequestError('bad offset'),
  new UnauthorizedError('no token', false),
  new ForbiddenError('no grant'),
  new StaleProducerEpochError(4),
  new StreamNotFoundError('a/b'),
  new ConflictError('content type differs'),
  new StreamClosedError('0000_0010'),
  new ProducerSequenceGapError(3, 5),
  new GoneError('deleted'),
  new PayloadTooLargeError(100),
  new TooManyRequestsError('slow down', 2),
  new ServiceUnavailableError('full'),
  new InspectorNotBuiltError(),
  new WalOverloadedError(10, 5),
  new WalWriteError('fsync failed', new Error('EIO')),
  new WalClosedError(),
  new WalCheckpointInProgressError(),
  new WalRecordTooLargeError(2000, 1000),
  new WalCorruptError('/wal/1', 8, 'bad crc'),
  new WalNotDurableError('fsync of wal/ failed at recovery'),
  new WalObjectStoreUnavailableError('the object store did not take WAL object k', new Error('SlowDown')),
  new WalFencedError('_cairn/wal/default/0000000001/000000000003.wal'),
  new WalChainClaimedError('default', 2),
  new ObjectStoreUnavailableError('get', 'k', 'connection refused'),
  new ObjectAlreadyExistsError('k'),
  new ObjectNotFoundError('get', 'k'),
  new ObjectRangeNotSatisfiableError('k', { startByte: 9, endByte: 10 }),
  new InvalidObjectKeyError('put', '', 'empty'),
  new ObjectStoreRequestError('get', 'k', 'AccessDenied', 'access denied'),
  new ObjectStoreOverwriteUnsafeError('s3://b', 'probe', 'accepted a second put'),
  new StoredDataCorruptError('k', 'segment bytes fail their checksum'),
  new SlotNotOwnedError(7, 'node-b', 'owned by node-b'),
  new ClusterUnavailableError('lease not confirmed'),
];

/** The subscription APIs' errors: answered with JSON bodies `{ error: { code, message, … } }`. */
const jsonSamples: CairnError[] = [
  new WebhookUrlRejectedError('webhook.url must use https://'),
  new TokenInvalidError('no token'),
  new SubscriptionNotFoundError('sub-1'),
  new SubscriptionsNotInClusterError(),
  new SubscriptionConflictError('sub-1'),
  new FencedError('stale wake'),
  new AlreadyClaimedError('worker-2', 7),
  new NoPendingWorkError('sub-1'),
  // The durable proxy's errors (the Proxy Protocol's JSON shape).
  new ProxyRequestError('MISSING_UPSTREAM_URL', 'Upstream-URL is required'),
  new ProxyRequestError('MISSING_UPSTREAM_METHOD', 'Upstream-Method is required'),
  new ProxyRequestError('INVALID_UPSTREAM_METHOD', 'Upstream-Method must be one of GET, POST, PUT, PATCH, DELETE'),
  new ProxyRequestError('INVALID_ACTION', 'action must be abort'),
  new RedirectNotAllowedError(302),
  new SignatureError('MISSING_SIGNATURE', 'expires and signature are required'),
  new SignatureError('SIGNATURE_EXPIRED', 'expired'),
  new SignatureError('SIGNATURE_INVALID', 'bad signature'),
  new UpstreamNotAllowedError('not on the allowlist'),
  new UpstreamUnreachableError('connection refused'),
  new UpstreamTimeoutError('no response head within 60000 ms'),
  new ProxyStreamNotFoundError('p-1'),
];

describe('the error table', () => {
  test.each(Object.entries(ERROR_TABLE))('%s has a status, retryable, and headers consistent with them', (_code, entry) => {
    expect(entry.status).toBeGreaterThanOrEqual(400);
    expect(entry.status).toBeLessThan(600);
    expect(typeof entry.retryable).toBe('boolean');
    expect(Array.isArray(entry.headers)).toBe(true);
    // A retryable answer tells the client when to come back; a final one does not.
    expect((entry.headers as readonly string[]).includes('retry-after')).toBe(entry.retryable);
    for (const name of entry.headers) expect(name).toBe(name.toLowerCase());
  });

  test('every code has an error class, and every class carries exactly its row', () => {
    const covered = new Set([...samples, ...jsonSamples].map((error) => error.code));
    expect([...covered].sort()).toEqual(Object.keys(ERROR_TABLE).sort());
    for (const error of [...samples, ...jsonSamples]) {
      const entry = ERROR_TABLE[error.code];
      expect(error).toBeInstanceOf(CairnError);
      expect(error.statusCode).toBe(entry.status);
      expect(error.retryable).toBe(entry.retryable);
      expect(Object.keys(error.headers).sort()).toEqual([...entry.headers].sort());
    }
  });
});

async function answer(error: Error) {
  const app = Fastify({ logger: false });
  installErrorHandler(app, 1234);
  app.get('/', async () => {
    throw error;
  });
  const response = await app.inject({ method: 'GET', url: '/' });
  await app.close();
  return response;
}

describe('the error handler', () => {
  test.each(samples.map((error) => [error.code, error] as const))('%s is answered from its table row', async (code: ErrorCode, error) => {
    const entry = ERROR_TABLE[code];
    const response = await answer(error);
    expect(response.statusCode).toBe(entry.status);
    expect(response.headers['cache-control']).toBe('no-store');
    if ('json' in entry && entry.json) {
      // The Proxy Protocol's error shape (its §11).
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(response.body)).toEqual({ error: { code, message: error.message } });
      for (const [name, value] of Object.entries(error.headers)) expect(response.headers[name]).toBe(value);
      return;
    }
    expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
    if (entry.status >= 500 && !entry.retryable) {
      expect(response.body).toBe('internal server error');
      return;
    }
    for (const [name, value] of Object.entries(error.headers)) expect(response.headers[name]).toBe(value);
    expect(response.body).toBe('subject' in entry ? `${entry.subject}: ${error.message}` : error.message);
  });

  test.each(jsonSamples.map((error) => [error.code, error] as const))('%s is answered as JSON from its table row', async (code: ErrorCode, error) => {
    const entry = ERROR_TABLE[code];
    expect('json' in entry && entry.json).toBe(true);
    const response = await answer(error);
    expect(response.statusCode).toBe(entry.status);
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.headers['content-type']).toContain('application/json');
    const bodyCode = 'bodyCode' in entry ? entry.bodyCode : code;
    expect(response.json()).toEqual({ error: { code: bodyCode, message: error.message, ...error.details } });
  });

  test('ALREADY_CLAIMED names the holder and generation (PROTOCOL.md §7.2)', async () => {
    const response = await answer(new AlreadyClaimedError('worker-2', 7));
    expect(response.json().error).toMatchObject({ code: 'ALREADY_CLAIMED', current_holder: 'worker-2', generation: 7 });
  });

  test('the WAL and object-store answers keep their bodies and Retry-After', async () => {
    const wal = await answer(new WalOverloadedError(10, 5));
    expect(wal.statusCode).toBe(503);
    expect(wal.headers['retry-after']).toBe('1');
    expect(wal.body).toBe('write-ahead log unavailable: WAL queue is full (10 bytes queued, limit 5); retry later');
    const store = await answer(new ObjectStoreUnavailableError('get', 'k', 'connection refused'));
    expect(store.statusCode).toBe(503);
    expect(store.headers['retry-after']).toBe('5');
    expect(store.body).toBe('object store unavailable: connection refused');
    const tooLarge = await answer(new WalRecordTooLargeError(2000, 1000));
    expect(tooLarge.statusCode).toBe(413);
    expect(tooLarge.headers['retry-after']).toBeUndefined();
  });

  test('an untyped error is a 500 without its message; a Fastify 4xx keeps its status', async () => {
    const bug = await answer(new Error('secret detail'));
    expect(bug.statusCode).toBe(500);
    expect(bug.body).toBe('internal server error');
    const fastify4xx = await answer(Object.assign(new Error('bad media type'), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }));
    expect(fastify4xx.statusCode).toBe(415);
    expect(fastify4xx.body).toBe('bad media type');
  });
});
