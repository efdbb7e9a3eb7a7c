/**
 * A stream registry over an in-memory record log, for unit tests of the layers above it (sealer,
 * read path). Uses only the registry's public methods.
 */
import type { Clock } from '../../src/clock.ts';
import { MemoryRecordLog, testClock, type ManualClock } from './record-log.ts';
import type { StreamRecord } from '../../src/stream/records.ts';
import { StreamRegistry } from '../../src/stream/registry.ts';
import type { StreamState } from '../../src/stream/stream-state.ts';

export function memoryRegistry(clock: Clock = testClock(1_700_000_000_000)): { registry: StreamRegistry; log: MemoryRecordLog } {
  const log = new MemoryRecordLog();
  return { registry: new StreamRegistry({ log, clock }), log };
}

/**
 * A registry rebuilt from `records` as a restart would (replay, then everything durable), with
 * the records `lose` says a crash lost left out.
 */
export function replayedRegistry(
  records: readonly StreamRecord[],
  clock: Clock = testClock(1_700_000_000_000),
  lose: (record: StreamRecord) => boolean = () => false,
): { registry: StreamRegistry; log: MemoryRecordLog } {
  const rebuilt = memoryRegistry(clock);
  for (const record of records) if (!lose(record)) rebuilt.registry.apply(record);
  rebuilt.registry.markAllDurable();
  return rebuilt;
}

/** Creates `path` holding `body` (octet-stream unless `contentType`). */
export async function createStream(registry: StreamRegistry, path: string, body: string | Buffer = '', contentType = 'application/octet-stream'): Promise<StreamState> {
  const { stream } = await registry.create({
    path,
    contentType,
    ttlSeconds: undefined,
    expiresAtMs: undefined,
    closed: false,
    body: Buffer.from(body),
  });
  return stream;
}

export async function appendTo(registry: StreamRegistry, path: string, body: string | Buffer, close = false): Promise<void> {
  await registry.append({ path, contentType: undefined, body: Buffer.from(body), close, producer: undefined, streamSeq: undefined });
}
