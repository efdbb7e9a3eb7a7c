/**
 * The storage half of a Cairn server, built as src/server.ts builds it (WAL recovery, registry,
 * sealer, collector, filesystem store with retries, read path) but on a simulated machine and
 * without HTTP, so power-loss tests can boot it thousands of times per run.
 */
import { pino } from 'pino';
import { seededRandom, type Clock } from '../../../src/clock.ts';
import { FsObjectStore, RetryingObjectStore } from '../../../src/object-store/index.ts';
import { ReadPath } from '../../../src/read-path/read-path.ts';
import { SegmentCache } from '../../../src/read-path/segment-cache.ts';
import { StreamRegistry, type RegistrySnapshot } from '../../../src/stream/registry.ts';
import type { StreamRecord } from '../../../src/stream/records.ts';
import { ObjectCollector, type DeleteJob } from '../../../src/tiering/object-collector.ts';
import { ObjectNaming } from '../../../src/manifest/object-naming.ts';
import { Sealer } from '../../../src/tiering/sealer.ts';
import { SealActivity } from '../../../src/tiering/seal-activity.ts';
import { ManifestStore } from '../../../src/manifest/manifest-store.ts';
import { openWal, type WalWriter } from '../../../src/wal/index.ts';
import type { SimulatedProcess } from './simulated-disk.ts';

export const DATA_DIR = '/data';
const NODE_ID = '0123456789ab';

interface CheckpointState extends RegistrySnapshot {
  pendingObjectDeletes?: DeleteJob[];
}

export interface StorageStack {
  registry: StreamRegistry;
  writer: WalWriter;
  sealer: Sealer;
  checkpoint(): Promise<void>;
  /** The bytes of `path` a reader is served now (position 0 to the durable offset), or undefined if it does not exist. */
  readAll(path: string): Promise<Buffer | undefined>;
  /** Stops background work of a killed process (its file calls already hang). */
  abandon(): void;
}

const silent = pino({ level: 'silent' });

/**
 * Boots the stack on `process`: recovery (checkpoint + replay), then seals as the policy says.
 * @throws whatever recovery throws (the caller decides whether a refusal is expected).
 */
export async function bootStack(process: SimulatedProcess, clock: Clock, seed: number, segmentSizeBytes: number): Promise<StorageStack> {
  const store = new RetryingObjectStore(new FsObjectStore({ rootDir: `${DATA_DIR}/objects`, fs: process.storeFs }), {
    random: seededRandom(seed),
    clock,
    policy: { attemptsMax: 2 },
    sleep: async () => {},
  });
  const naming = new ObjectNaming(NODE_ID);
  const wal = await openWal({ dir: `${DATA_DIR}/wal`, durability: 'wal', fs: process.walFs, clock, logger: silent });
  const writer = wal.writer;
  // The sealer, collector and read path are built below; the registry calls them only later.
  const registry = new StreamRegistry({
    log: { append: (record: StreamRecord) => writer.enqueue(record) },
    clock,
    hotTailBudgetBytes: 1 << 30,
    listener: {
      durable: (stream) => sealer.durable(stream),
      removed: (stream) => sealer.removed(stream),
      segmentsDropped: (stream, segments) => collector.deleteKeys(segments.map((segment) => naming.segment(stream, segment))),
    },
    sealedUnitReader: (stream, position) => reads.unitRest(stream, position),
    onBackgroundError: () => {},
  });
  const seals = new SealActivity();
  const collector = new ObjectCollector({ store, logger: silent, seals, clock, recordsDurable: () => registry.recordsDurable() });
  const sealer = new Sealer({
    registry,
    manifests: new ManifestStore({ store, naming }),
    collector,
    seals,
    clock,
    logger: silent,
    policy: { segmentSizeBytes, sealIdleMs: 1e12, unsealedAgeMsMax: 1e12 },
    chunkBytesMax: 4096,
    hotTailBudgetBytes: 1 << 30,
    retention: { retentionMs: undefined, retentionBytes: undefined },
    uploadsMax: 2,
  });
  const cache = new SegmentCache(store, 1 << 20);
  const reads: ReadPath = new ReadPath({ registry, cache, naming, chunkBytesMax: 4096 });
  if (wal.checkpoint !== undefined) registry.restore(wal.checkpoint as CheckpointState);
  for await (const record of wal.replay()) registry.apply(record as StreamRecord);
  registry.markAllDurable();
  sealer.start();
  return {
    registry,
    writer,
    sealer,
    checkpoint: () => writer.checkpoint({ ...registry.snapshot(), pendingObjectDeletes: collector.pending() } satisfies CheckpointState),
    async readAll(path) {
      let stream;
      try {
        stream = registry.get(path, { touch: false });
      } catch {
        return undefined;
      }
      const parts: Buffer[] = [];
      let position = registry.earliestPosition(stream);
      while (position < stream.durableOffset) {
        const result = await reads.read(stream, position);
        parts.push(...result.body);
        if (result.end <= position) throw new Error(`read of ${path} at ${position} made no progress`);
        position = result.end;
      }
      return Buffer.concat(parts);
    },
    abandon() {
      void sealer.close();
      void collector.close();
    },
  };
}
