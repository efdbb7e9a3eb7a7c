import { describe, expect, test, vi } from 'vitest';
import { PRODUCER_SEQUENCE_GAP_WAIT_MS } from '../../src/config/limits.ts';
import {
  BadRequestError,
  ConflictError,
  GoneError,
  ProducerSequenceGapError,
  ServiceUnavailableError,
  StaleProducerEpochError,
  StreamClosedError,
  StreamNotFoundError,
} from '../../src/protocol/errors.ts';
import { formatOffset } from '../../src/protocol/offset.ts';
import { WalOverloadedError, WalWriteError } from '../../src/wal/index.ts';
import { StreamRegistry, withResidue, type AppendRequest, type CreateRequest, type RegistryOptions } from '../../src/stream/registry.ts';
import { testClock, MemoryRecordLog, RecordingListener } from '../support/record-log.ts';

const bytes = (text: string) => Buffer.from(text);

function setup(options: Partial<RegistryOptions> = {}) {
  const clock = testClock();
  const log = new MemoryRecordLog();
  const listener = new RecordingListener();
  const registry = new StreamRegistry({ log, clock, listener, ...options });
  return { clock, log, listener, registry };
}

function createRequest(path: string, overrides: Partial<CreateRequest> = {}): CreateRequest {
  return { path, contentType: 'text/plain', ttlSeconds: undefined, expiresAtMs: undefined, closed: false, body: Buffer.alloc(0), ...overrides };
}

function appendRequest(path: string, body: string, overrides: Partial<AppendRequest> = {}): AppendRequest {
  return { path, contentType: 'text/plain', body: bytes(body), close: false, producer: undefined, streamSeq: undefined, ...overrides };
}

const producer = (seq: number, epoch = 0) => ({ producerId: 'p', epoch, seq });

describe('create', () => {
  test('writes one create record; the stream is visible once it is durable', async () => {
    const { registry, log, listener } = setup();
    log.hold();
    const created = registry.create(createRequest('/a', { body: bytes('hi') }));
    await Promise.resolve();
    expect(() => registry.get('/a', { touch: false })).toThrow(StreamNotFoundError); // not yet durable
    log.release();
    const outcome = await created;
    expect(outcome.created).toBe(true);
    expect(outcome.stream).toMatchObject({ incarnation: 1, durableOffset: 2, createDurable: true });
    expect(log.records).toMatchObject([{ t: 'create', inc: 1, path: '/a', contentType: 'text/plain', closed: false, data: bytes('hi') }]);
    expect(listener.events).toEqual([{ event: 'durable', inc: 1, tail: 2 }]);
    expect(registry.appendedBytes).toBe(2);
    expect(registry.streamCount).toBe(1);
  });

  test('an identical create is a 200 without a record; a different one is a 409', async () => {
    const { registry, log } = setup();
    await registry.create(createRequest('/a', { ttlSeconds: 60 }));
    expect(await registry.create(createRequest('/a', { ttlSeconds: 60 }))).toMatchObject({ created: false });
    await expect(registry.create(createRequest('/a', { ttlSeconds: 61 }))).rejects.toThrow(ConflictError);
    await expect(registry.create(createRequest('/a', { contentType: 'application/json', ttlSeconds: 60 }))).rejects.toThrow(ConflictError);
    await expect(registry.create(createRequest('/b', { ttlSeconds: 1, expiresAtMs: 5 }))).rejects.toThrow(BadRequestError);
    expect(log.records).toHaveLength(1);
  });

  test('a fork inherits the content type and TTL and starts at the source tail', async () => {
    const { registry } = setup();
    await registry.create(createRequest('/s', { body: bytes('abc'), ttlSeconds: 90 }));
    const { stream } = await registry.create(
      createRequest('/f', { contentType: undefined, fork: { sourcePath: '/s', offset: undefined, subOffset: undefined } }),
    );
    expect(stream).toMatchObject({ contentType: 'text/plain', ttlSeconds: 90, basePosition: 3, tailOffset: 3 });
    await expect(
      registry.create(createRequest('/g', { contentType: 'application/json', fork: { sourcePath: '/s', offset: undefined, subOffset: undefined } })),
    ).rejects.toThrow(ConflictError);
    await expect(registry.create(createRequest('/h', { fork: { sourcePath: '/none', offset: undefined, subOffset: undefined } }))).rejects.toThrow(
      StreamNotFoundError,
    );
  });

  test('a fork inside sealed data asks the sealed-unit reader given at construction', async () => {
    const asked: number[] = [];
    const { registry } = setup({
      sealedUnitReader: async (_owner, position) => {
        asked.push(position);
        return bytes('abcdef').subarray(position);
      },
    });
    const { stream: source } = await registry.create(createRequest('/s', { body: bytes('abcdef') }));
    await registry.commitSeal(source, { start: 0, end: 6, unitEnds: [6], sealedAtMs: 0 }, 1);
    const { stream } = await registry.create(createRequest('/f', { fork: { sourcePath: '/s', offset: { incarnation: 1, position: 2 }, subOffset: 3 } }));
    expect(stream.basePosition).toBe(5);
    expect(asked).toEqual([2]);
  });

  test('the hot-tail budget refuses bytes past it with a 503, and nothing is written', async () => {
    const { registry, log } = setup({ hotTailBudgetBytes: 4 });
    await registry.create(createRequest('/a', { body: bytes('abc') }));
    await expect(registry.append(appendRequest('/a', 'de'))).rejects.toThrow(ServiceUnavailableError);
    expect(log.records).toHaveLength(1);
    expect(registry.hotTailBytes).toBe(3);
  });
});

describe('append and close', () => {
  test('appends return the new tail; Stream-Seq must grow', async () => {
    const { registry, log } = setup();
    await registry.create(createRequest('/a'));
    expect(await registry.append(appendRequest('/a', 'abc', { streamSeq: 'b' }))).toMatchObject({ kind: 'appended', position: 3 });
    await expect(registry.append(appendRequest('/a', 'x', { streamSeq: 'a' }))).rejects.toThrow(ConflictError);
    await expect(registry.append(appendRequest('/a', 'x', { contentType: 'application/json' }))).rejects.toThrow(ConflictError);
    await expect(registry.append(appendRequest('/a', ''))).rejects.toThrow(BadRequestError);
    expect(log.records.map((r) => r.t)).toEqual(['create', 'append']);
  });

  test('a WAL failure is a 503 and the bytes never become durable', async () => {
    const { registry, log } = setup();
    const { stream } = await registry.create(createRequest('/a'));
    log.fail(new WalWriteError('fsync failed', new Error('EIO')));
    await expect(registry.append(appendRequest('/a', 'abc'))).rejects.toMatchObject({ statusCode: 503, retryable: true });
    expect(stream.durableOffset).toBe(0);
  });

  test('an append the log refuses leaves nothing behind: a later append does not expose its bytes', async () => {
    const { registry, log } = setup();
    const { stream } = await registry.create(createRequest('/a'));
    await registry.append(appendRequest('/a', 'ab'));
    log.refuseNext(new WalOverloadedError(10, 5));
    await expect(registry.append(appendRequest('/a', 'XX'))).rejects.toThrow(WalOverloadedError);
    expect(stream.tailOffset).toBe(2);
    await registry.append(appendRequest('/a', 'cd'));
    expect(stream.durableOffset).toBe(4);
    expect(Buffer.concat(stream.hotTail.loadedEntries()).toString()).toBe('abcd');
    expect(log.records.filter((r) => r.t === 'append').map((r) => Buffer.from(r.t === 'append' && Buffer.isBuffer(r.data) ? r.data : []).toString())).toEqual(['ab', 'cd']);
  });

  test('closing: close-only, then retries of the close are duplicates, other appends 409', async () => {
    const { registry } = setup();
    const { stream } = await registry.create(createRequest('/a', { body: bytes('ab') }));
    expect(await registry.append(appendRequest('/a', '', { close: true }))).toMatchObject({ kind: 'appended', position: 2 });
    expect(stream.durableClosed).toBe(true);
    expect(await registry.append(appendRequest('/a', '', { close: true }))).toMatchObject({ kind: 'duplicate', position: 2 });
    const closed = await registry.append(appendRequest('/a', 'x')).catch((error: unknown) => error);
    expect(closed).toBeInstanceOf(StreamClosedError);
    expect((closed as StreamClosedError).headers['stream-next-offset']).toBe(formatOffset(1, 2));
  });

  test('producer: accept, duplicate, stale epoch, new epoch not at 0; the final append-and-close is retry-safe', async () => {
    const { registry, log } = setup();
    await registry.create(createRequest('/a'));
    expect(await registry.append(appendRequest('/a', 'a', { producer: producer(0) }))).toMatchObject({ kind: 'appended', producer: { epoch: 0, seq: 0 } });
    expect(await registry.append(appendRequest('/a', 'a', { producer: producer(0) }))).toMatchObject({ kind: 'duplicate', producer: { epoch: 0, seq: 0 } });
    expect(await registry.append(appendRequest('/a', 'b', { producer: producer(0, 1) }))).toMatchObject({ kind: 'appended' });
    await expect(registry.append(appendRequest('/a', 'z', { producer: producer(1, 0) }))).rejects.toThrow(StaleProducerEpochError);
    await expect(registry.append(appendRequest('/a', 'z', { producer: producer(1, 2) }))).rejects.toThrow(BadRequestError);
    expect(await registry.append(appendRequest('/a', 'c', { producer: producer(1, 1), close: true }))).toMatchObject({ kind: 'appended', position: 3 });
    expect(await registry.append(appendRequest('/a', 'c', { producer: producer(1, 1), close: true }))).toMatchObject({ kind: 'duplicate', position: 3 });
    expect(log.records.filter((r) => r.t === 'append')).toHaveLength(3);
  });

  test('a request ahead of its predecessor waits for it, then is accepted in order', async () => {
    const { registry } = setup();
    const { stream } = await registry.create(createRequest('/a'));
    const second = registry.append(appendRequest('/a', 'B', { producer: producer(1) }));
    const first = registry.append(appendRequest('/a', 'A', { producer: producer(0) }));
    await Promise.all([first, second]);
    expect(Buffer.concat(stream.hotTail.loadedEntries()).toString()).toBe('AB');
    expect(stream.producer('p')).toEqual({ epoch: 0, lastSeq: 1 });
  });

  test('a gap that stays is a 409 with the expected and received seq', async () => {
    const { registry, clock } = setup();
    await registry.create(createRequest('/a'));
    await registry.append(appendRequest('/a', 'A', { producer: producer(0) }));
    const pending = registry.append(appendRequest('/a', 'C', { producer: producer(2) })).catch((error: unknown) => error);
    await vi.waitFor(() => expect(clock.pendingTimerCount).toBe(1)); // waiting for seq 1
    clock.advance(PRODUCER_SEQUENCE_GAP_WAIT_MS);
    const gap = await pending;
    expect(gap).toBeInstanceOf(ProducerSequenceGapError);
    expect((gap as ProducerSequenceGapError).headers).toMatchObject({ 'producer-expected-seq': '1', 'producer-received-seq': '2' });
  });
});

describe('delete and expiry', () => {
  test('delete removes the stream (the listener hears it); a source with forks is soft-deleted (410)', async () => {
    const { registry, listener } = setup();
    await registry.create(createRequest('/a'));
    await registry.delete('/a');
    expect(() => registry.get('/a', { touch: false })).toThrow(StreamNotFoundError);
    expect(listener.events.at(-1)).toEqual({ event: 'removed', inc: 1 });

    await registry.create(createRequest('/s'));
    await registry.create(createRequest('/f', { fork: { sourcePath: '/s', offset: undefined, subOffset: undefined } }));
    await registry.delete('/s');
    expect(() => registry.get('/s', { touch: false })).toThrow(GoneError);
    await expect(registry.create(createRequest('/s'))).rejects.toThrow(ConflictError);
    await registry.delete('/f');
    expect(listener.events.filter((e) => e.event === 'removed').map((e) => e.inc)).toEqual([1, 3, 2]);
    expect(registry.streamCount).toBe(0);
  });

  test('an expired stream is 404 and deleted in the background; a failed delete goes to onBackgroundError', async () => {
    const errors: unknown[] = [];
    const { registry, clock, log } = setup({ onBackgroundError: (error) => errors.push(error) });
    await registry.create(createRequest('/a', { ttlSeconds: 10 }));
    await registry.create(createRequest('/b', { ttlSeconds: 10 }));
    clock.advance(5_000);
    registry.get('/a', { touch: true }); // sliding TTL
    clock.advance(6_000);
    expect(registry.reapExpired()).toBe(1); // /b
    expect(() => registry.get('/b', { touch: false })).toThrow(StreamNotFoundError);
    log.fail(new WalWriteError('fsync failed', new Error('EIO')));
    clock.advance(10_000);
    expect(() => registry.get('/a', { touch: false })).toThrow(StreamNotFoundError);
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(WalWriteError);
  });
});

describe('tiering commits', () => {
  test('commitSeal and commitTrim write records and apply them; holds() follows removal', async () => {
    const { registry, log, listener } = setup();
    const { stream } = await registry.create(createRequest('/a', { body: bytes('abcdef') }));
    await registry.commitSeal(stream, { start: 0, end: 4, unitEnds: [4], sealedAtMs: 0 }, 1);
    await registry.commitTrim(stream, 4, 2);
    expect(log.records.map((r) => r.t)).toEqual(['create', 'seal', 'trim']);
    expect(stream).toMatchObject({ sealedOffset: 4, retainedStart: 4, manifestVersion: 2 });
    expect(listener.events.at(-1)).toEqual({ event: 'segmentsDropped', inc: 1, ranges: [[0, 4]] });
    expect(registry.earliestPosition(stream)).toBe(4);
    expect(registry.holds(stream)).toBe(true);
    await registry.delete('/a');
    expect(registry.holds(stream)).toBe(false);
  });
});

describe('incarnations in cluster mode', () => {
  test('two nodes creating in the same millisecond never make the same incarnation (residue = node index)', async () => {
    const clock = testClock();
    const nodes = [0, 1, 7].map(
      (residue) =>
        new StreamRegistry({ log: new MemoryRecordLog(), clock, incarnationFloor: () => 1_796_000_000_000_000, incarnationResidue: () => residue }),
    );
    const seen = new Set<number>();
    for (let i = 0; i < 5; i++) {
      for (const [n, registry] of nodes.entries()) {
        const { stream } = await registry.create({ path: `/n${n}-${i}`, contentType: 'text/plain', body: Buffer.alloc(0), closed: false, ttlSeconds: undefined, expiresAtMs: undefined });
        expect(stream.incarnation % 1000).toBe([0, 1, 7][n]);
        expect(seen.has(stream.incarnation)).toBe(false);
        seen.add(stream.incarnation);
      }
    }
    expect(withResidue(1_000, undefined)).toBe(1_000);
    expect(withResidue(1_000, 3)).toBe(1_003);
    expect(withResidue(1_004, 3)).toBe(2_003);
  });
});
