/**
 * Opening the diskless WAL (`--durability object-store`) from the object store alone: claim a
 * new generation, load the newest checkpoint, fence every earlier generation at its first
 * missing WAL object, hand back the records to replay, and start a writer. The local disk plays
 * no part: a process started on an empty data directory (or another machine) recovers exactly
 * what was acknowledged. Key layout and the fencing argument: object-wal-keys.ts.
 *
 * Why every acknowledged record is replayed: a record is acknowledged only when its WAL object
 * and every earlier one of its generation are stored (object-wal-writer.ts), so the stored
 * objects of a generation from its checkpoint on form a gap-free prefix that contains every
 * acknowledged record; recovery reads that prefix up to the first missing sequence and puts an
 * empty fence object there create-if-absent. If the fence is refused, the old process stored
 * that object after the listing: it is read and the next sequence is fenced. Once the fence is
 * stored, the old process can store nothing more at that key, so it acknowledges nothing more.
 */
import { systemClock } from '../clock.ts';
import { ObjectAlreadyExistsError, ObjectNotFoundError, listAll, type ObjectStore } from '../object-store/index.ts';
import { WalChainClaimedError, WalCorruptError } from './errors.ts';
import { claimObjectKey, chainPrefix, nodeIdObjectKey, checkpointObjectKey, comparePositions, parseChainKey, walObjectKey } from './object-wal-keys.ts';
import { ObjectWalWriter, type ObjectCheckpointHeader, type ObjectWalWriterOptions } from './object-wal-writer.ts';
import { decodeFrames } from './record-codec.ts';
import { CHECKPOINT_PAYLOAD_BYTES_MAX, OBJECT_WAL_READS_MAX } from './wal-limits.ts';
import { silentWalLogger } from './wal-logger.ts';

export type OpenObjectWalOptions = Omit<ObjectWalWriterOptions, 'generation' | 'walBytesSinceCheckpoint'>;

export interface OpenedObjectWal {
  writer: ObjectWalWriter;
  /** The newest checkpoint's snapshot, or `undefined`. Apply it before the replayed records. */
  checkpoint: unknown;
  /** Records after the checkpoint, in append order, one WAL object at a time. Call once, before appending. */
  replay(): AsyncIterable<unknown>;
  /** What the open found and did, for the start-up log. */
  summary: { generation: number; checkpointKey: string | undefined; fencedGenerations: number };
}

/** The node id stored with `chain`, or undefined when none is (the chain never started). @throws the store's error. */
export async function storedChainNodeId(store: ObjectStore, chain: string): Promise<string | undefined> {
  try {
    return new TextDecoder().decode((await store.get(nodeIdObjectKey(chain))).body).trim();
  } catch (error) {
    if (error instanceof ObjectNotFoundError) return undefined;
    throw error;
  }
}

/**
 * The node id of `chain`, stored with it so that it outlives the local disk: the objects a node
 * writes are named by its id (object-naming.ts), and a restart on an empty disk must go on
 * naming the same streams' objects the same way. Reads `_cairn/wal/<chain>/node-id`; when absent,
 * stores `fresh` there create-if-absent (a concurrent start's id wins and is read back).
 * @throws the object store's error.
 */
export async function chainNodeId(store: ObjectStore, chain: string, fresh: string): Promise<string> {
  const key = nodeIdObjectKey(chain);
  const read = () => storedChainNodeId(store, chain);
  const stored = await read();
  if (stored !== undefined) return stored;
  try {
    await store.put(key, new TextEncoder().encode(`${fresh}\n`));
    return fresh;
  } catch (error) {
    if (!(error instanceof ObjectAlreadyExistsError)) throw error;
    const winner = await read();
    if (winner === undefined) throw error;
    return winner;
  }
}

/** What a LIST of a chain found. */
interface ChainListing {
  /** generation → seq → object size (0: a fence). */
  walKeys: Map<number, Map<number, number>>;
  checkpointAt: { generation: number; seq: number; count: number } | undefined;
  generationMax: number;
}

async function listChain(store: ObjectStore, chain: string): Promise<ChainListing> {
  const walKeys = new Map<number, Map<number, number>>();
  let checkpointAt: { generation: number; seq: number; count: number } | undefined;
  let generationMax = 0;
  for await (const info of listAll(store, chainPrefix(chain))) {
    const parsed = parseChainKey(chain, info.key);
    if (parsed === undefined) continue;
    generationMax = Math.max(generationMax, parsed.generation);
    if (parsed.kind === 'checkpoint') {
      if (checkpointAt === undefined || comparePositions(parsed, checkpointAt) > 0) checkpointAt = parsed;
    } else if (parsed.kind === 'wal') {
      let seqs = walKeys.get(parsed.generation);
      if (seqs === undefined) walKeys.set(parsed.generation, (seqs = new Map()));
      seqs.set(parsed.seq, info.sizeBytes);
    }
  }
  return { walKeys, checkpointAt, generationMax };
}

/** The state of a chain as of now, read from the object store; every generation read is fenced. */
export interface ChainRead {
  /** The newest checkpoint's snapshot, or `undefined`. Apply it before the replayed records. */
  checkpoint: unknown;
  checkpointKey: string | undefined;
  /** Records after the checkpoint, in append order, one WAL object at a time (16 GETs ahead). Call once. */
  replay(): AsyncIterable<unknown>;
  /** After `replay()`: object bytes read, and generations this read fenced (the others were fenced already). */
  readonly replayedBytes: number;
  readonly fencedGenerations: number;
}

/**
 * Reads `chain` from its newest checkpoint through generation `generationEnd` − 1, fencing each
 * generation at its first missing sequence (module doc). A start passes the generation it just
 * claimed; a cluster node taking over a dead node's slots passes the listed maximum + 1, which
 * fences the dead process's own generation too.
 * @throws WalCorruptError (naming the key) if the checkpoint or a WAL object does not decode, or
 *   a listed object is gone; the object store's error if it cannot be read.
 */
async function readChain(store: ObjectStore, chain: string, listing: ChainListing, generationEnd: number): Promise<ChainRead> {
  const { walKeys, checkpointAt } = listing;
  let snapshot: unknown;
  let checkpointKey: string | undefined;
  if (checkpointAt !== undefined) {
    checkpointKey = checkpointObjectKey(chain, checkpointAt.generation, checkpointAt.seq, checkpointAt.count);
    const decoded = decodeFrames(Buffer.from((await store.get(checkpointKey)).body), CHECKPOINT_PAYLOAD_BYTES_MAX);
    const header = decoded.frames[0]?.record as Partial<ObjectCheckpointHeader> | undefined;
    if (decoded.problem !== undefined || decoded.frames.length !== 2 || header?.formatVersion !== 1 || header.seq !== checkpointAt.seq || header.generation !== checkpointAt.generation) {
      throw new WalCorruptError(checkpointKey, decoded.problem?.offsetBytes ?? 0, `checkpoint object does not decode as header + snapshot (${decoded.problem?.detail ?? JSON.stringify(header)})`);
    }
    snapshot = decoded.frames[1]!.record;
  }
  // Generations from the checkpoint's on, each read from its start. Without a checkpoint: all of
  // them, those that stored nothing too (a paused first start could still store its object 0).
  // Generations before a checkpoint's were all fenced by the start that wrote it.
  const first = checkpointAt ?? { generation: 1, seq: 0 };
  let replayedBytes = 0;
  let fencedGenerations = 0;
  const decodeObject = (key: string, body: Uint8Array): unknown[] => {
    const decoded = decodeFrames(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    if (decoded.problem !== undefined) {
      throw new WalCorruptError(key, decoded.problem.offsetBytes, `WAL object frame ${decoded.problem.kind} (${decoded.problem.detail})`);
    }
    replayedBytes += body.length;
    return decoded.frames.map((frame) => frame.record);
  };
  async function* replay(): AsyncGenerator<unknown> {
    for (let g = first.generation; g < generationEnd; g++) {
      const listed = walKeys.get(g) ?? new Map<number, number>();
      let seq = g === first.generation ? first.seq : 0;
      // The listed run from the start: read ahead, OBJECT_WAL_READS_MAX GETs in flight.
      const run: number[] = [];
      for (let s = seq; (listed.get(s) ?? 0) > 0; s++) run.push(s);
      const reads: Promise<Uint8Array>[] = [];
      const startRead = (i: number): void => {
        if (i >= run.length) return;
        reads[i] = store.get(walObjectKey(chain, g, run[i]!)).then((result) => result.body);
        reads[i]!.catch(() => {}); // a read-ahead failing after an earlier one threw is not unhandled
      };
      for (let i = 0; i < Math.min(OBJECT_WAL_READS_MAX, run.length); i++) startRead(i);
      for (let i = 0; i < run.length; i++) {
        const body = await reads[i]!;
        startRead(i + OBJECT_WAL_READS_MAX);
        delete reads[i];
        yield* decodeObject(walObjectKey(chain, g, run[i]!), body);
      }
      seq += run.length;
      // Past the run: the fence, or objects stored after the listing (read one at a time).
      for (; ; seq++) {
        const key = walObjectKey(chain, g, seq);
        if (listed.get(seq) === 0) break; // a fence stored by an earlier start
        if (!listed.has(seq)) {
          try {
            await store.put(key, new Uint8Array(0));
            fencedGenerations++;
            break;
          } catch (error) {
            if (!(error instanceof ObjectAlreadyExistsError)) throw error;
            // The old process stored it after the listing (or another reader fenced it): read it.
          }
        }
        let body: Uint8Array;
        try {
          body = (await store.get(key)).body;
        } catch (error) {
          if (error instanceof ObjectNotFoundError) throw new WalCorruptError(key, 0, 'listed WAL object is gone (deleted while this read ran?)');
          throw error;
        }
        if (body.length === 0) break;
        yield* decodeObject(key, body);
      }
    }
  }
  return {
    checkpoint: snapshot,
    checkpointKey,
    replay,
    get replayedBytes() {
      return replayedBytes;
    },
    get fencedGenerations() {
      return fencedGenerations;
    },
  };
}

/**
 * Opens `options.chain` in `options.store`: LISTs the chain, claims generation max + 1 (a
 * create-if-absent `claim` object), GETs the newest checkpoint, and returns a writer on the new
 * generation. The WAL objects are read and fenced lazily by `replay()`, generation by
 * generation, from the checkpoint's position on.
 *
 * @throws WalChainClaimedError if another process claimed the same generation (two processes
 *   started on one chain at once).
 * @throws WalCorruptError (naming the key) if the checkpoint or a WAL object does not decode.
 * @throws the object store's error if it cannot be listed or read (the start fails; retry).
 */
export async function openObjectWal(options: OpenObjectWalOptions): Promise<OpenedObjectWal> {
  const { store, chain } = options;
  const logger = options.logger ?? silentWalLogger;
  const listing = await listChain(store, chain);
  const generation = listing.generationMax + 1;
  try {
    await store.put(claimObjectKey(chain, generation), new TextEncoder().encode(`claimed at ${(options.clock ?? systemClock).nowMs()} ms\n`));
  } catch (error) {
    if (error instanceof ObjectAlreadyExistsError) throw new WalChainClaimedError(chain, generation);
    throw error;
  }
  const read = await readChain(store, chain, listing, generation);
  const writer = new ObjectWalWriter({ ...options, generation, walBytesSinceCheckpoint: 0 });
  async function* replay(): AsyncGenerator<unknown> {
    yield* read.replay();
    writer.addReplayedBytes(read.replayedBytes);
    logger.info({ chain, generation, replayedBytes: read.replayedBytes, fencedGenerations: read.fencedGenerations }, 'WAL objects replayed');
  }
  return {
    writer,
    checkpoint: read.checkpoint,
    replay,
    summary: {
      generation,
      checkpointKey: read.checkpointKey,
      get fencedGenerations() {
        return read.fencedGenerations;
      },
    },
  };
}

/**
 * Reads the chain of ANOTHER node (a dead cluster node whose slots this node takes over, docs/
 * cluster.md "Diskless takeover") without claiming a generation: from its newest checkpoint
 * through its last listed generation, fencing each, so that the dead process, were it only
 * paused, acknowledges nothing more.
 * @throws as `openObjectWal`, except `WalChainClaimedError`.
 */
export async function readChainForTakeover(store: ObjectStore, chain: string): Promise<ChainRead> {
  const listing = await listChain(store, chain);
  return readChain(store, chain, listing, listing.generationMax + 1);
}
