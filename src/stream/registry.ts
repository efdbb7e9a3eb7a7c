/**
 * The stream registry: the protocol's write operations (create, append, close, delete; PROTOCOL.md
 * §5.1–§5.3) with their validation, on top of the stream table (src/stream/stream-table.ts, whose
 * `apply` is the one state-transition function used live and at WAL replay). Validation and the
 * state change happen in one synchronous step, so writes to a stream (and per producer) are
 * serialised without locks; acknowledgement waits for the WAL record to be durable. The producer
 * rules are a pure decision (src/protocol/producer-rules.ts); lineage and offsets are in
 * src/stream/lineage.ts; checkpoints in src/stream/registry-checkpoint.ts.
 *
 * Somewhat over 400 lines on purpose: create and append each validate and apply in one
 * synchronous step (that is what serialises writes), so their checks stay together here; the
 * streams loaded from the object store (`install`, load records) share that one step too.
 */
import { LRUCache } from 'lru-cache';
import { SlotNotOwnedError } from '../cluster/errors.ts';
import type { Clock } from '../clock.ts';
import { INCARNATIONS_PER_MS, PRODUCER_SEQUENCE_GAP_WAIT_MS, UNLOADED_PATHS_MAX } from '../config/limits.ts';
import {
  BadRequestError,
  ConflictError,
  GoneError,
  ProducerSequenceGapError,
  ServiceUnavailableError,
  StaleProducerEpochError,
  StreamClosedError,
  StreamNotFoundError,
} from '../protocol/errors.ts';
import { DEFAULT_CONTENT_TYPE, isJsonContentType, sameMediaType } from '../protocol/content-type.ts';
import { encodeJsonMessages } from '../protocol/json-mode.ts';
import type { OffsetToken } from '../protocol/offset.ts';
import { decideProducer, isSameCloser } from '../protocol/producer-rules.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import { WAL_FRAME_PAYLOAD_BYTES_MAX, WalRecordTooLargeError } from '../wal/index.ts';
import * as lineage from './lineage.ts';
import type { SealedUnitReader } from './lineage.ts';
import { sameConfig, type AppendOutcome, type AppendRequest, type CreateOutcome, type CreateRequest } from './write-requests.ts';
import type { AppendRecord, CreateRecord, LoadRecord, StreamRecord } from './records.ts';
import { loadRecordOf } from './load-record.ts';
import { restoreTable, snapshotTable, type RegistrySnapshot } from './registry-checkpoint.ts';
import type { StreamState } from './stream-state.ts';
import { selectStreamPage, type StreamListPage, type StreamListQuery } from './stream-listing.ts';
import { StreamTable, type RegistryListener } from './stream-table.ts';

export type { RegistryListener } from './stream-table.ts';
export type { RegistrySnapshot } from './registry-checkpoint.ts';
export { snapshotWhere } from './registry-checkpoint.ts';
export type { SealedUnitReader } from './lineage.ts';
export type { StreamListPage, StreamListQuery } from './stream-listing.ts';
export type { AppendOutcome, AppendRequest, CreateOutcome, CreateRequest } from './write-requests.ts';

/** Largest data of one create or append: a WAL frame, less room for the record's other fields
 * (path, content type, producer: all from the request line and headers, `--max-header-bytes` ≤ 1 MiB). */
const WAL_RECORD_DATA_BYTES_MAX = WAL_FRAME_PAYLOAD_BYTES_MAX - 2 * 1024 * 1024;

/** Where records go to become durable (the WAL writer, or a test double). */
export interface RecordLog {
  /**
   * Queues `record`. Throws synchronously if it is refused (nothing queued: overload, closed,
   * failed, too large), so the registry applies only records the log holds, in the log's order.
   * The promise resolves once the record is durable and rejects if it cannot be made durable;
   * records become durable in the order they were queued.
   */
  append(record: StreamRecord): Promise<void>;
}

/**
 * The registry's collaborators. They are called only after construction (on writes, replay and
 * expiry), so a caller may pass closures over parts it builds after the registry.
 */
export interface RegistryOptions {
  /** Where records become durable. */
  log: RecordLog;
  clock: Clock;
  /** Unsealed bytes across all streams before writes get 503 (DESIGN.md backpressure); default: no limit. */
  hotTailBudgetBytes?: number;
  /** Hears of durable writes, removed incarnations and dropped segments (the sealer, the collector). */
  listener?: RegistryListener;
  /** Needed to fork at an offset inside sealed data; without it such a fork fails. */
  sealedUnitReader?: SealedUnitReader;
  /** Called when a commit fails in the background (expiry deletes); for logging. */
  onBackgroundError?: (error: unknown) => void;
  /**
   * Lowest incarnation a new stream may get, asked at every create (docs/storage-layout.md
   * "Incarnations"); default none (the counter alone, as in unit tests).
   */
  incarnationFloor?: () => number;
  /**
   * Cluster mode: new incarnations are ≡ this (mod INCARNATIONS_PER_MS), this node's index, so
   * that no two nodes create the same one (docs/storage-layout.md "Incarnations"); undefined: any.
   */
  incarnationResidue?: () => number | undefined;
  /** Cluster mode: who may acknowledge writes to a path (the slot owner); absent on a single node. */
  writeFence?: WriteFence;
}

/**
 * The ownership fence of cluster mode (DESIGN.md "Scale-out", docs/cluster.md): asked before a
 * create, append or delete is logged, and again once it is durable, before it is acknowledged,
 * so a node that lost its slot or was paused past its lease acknowledges nothing.
 */
export interface WriteFence {
  /** @returns the slot's epoch. @throws a 503 CairnError when this node may not write `path` now. */
  admit(path: string): number;
  /** @throws a 503 CairnError when the slot changed owner or epoch since `admit`, or the lease is at risk. */
  confirm(path: string, epoch: number): void;
}

/** The path of the root of `stream`'s fork chain (itself when it is not a fork). */
function hostPathOf(stream: StreamState): string {
  return (lineage.lineage(stream).at(-1) ?? stream).path;
}

export class StreamRegistry {
  readonly #log: RecordLog;
  readonly #clock: Clock;
  readonly #hotTailBudgetBytes: number;
  readonly #listener: RegistryListener | undefined;
  readonly #sealedUnitReader: SealedUnitReader | undefined;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #incarnationFloor: () => number;
  readonly #incarnationResidue: () => number | undefined;
  readonly #writeFence: WriteFence | undefined;
  /** Paths unloaded lately (their slot moved): a request for one that finds it gone answers 503. */
  readonly #unloadedPaths = new LRUCache<string, true>({ max: UNLOADED_PATHS_MAX });
  readonly #table: StreamTable;
  #appendedBytes = 0;
  /** The promise of the last record queued (records become durable in queue order). */
  #lastQueued: Promise<void> = Promise.resolve();

  constructor(options: RegistryOptions) {
    this.#log = options.log;
    this.#clock = options.clock;
    this.#hotTailBudgetBytes = options.hotTailBudgetBytes ?? Number.MAX_SAFE_INTEGER;
    this.#listener = options.listener;
    this.#sealedUnitReader = options.sealedUnitReader;
    this.#onBackgroundError = options.onBackgroundError ?? (() => {});
    this.#incarnationFloor = options.incarnationFloor ?? (() => 0);
    this.#incarnationResidue = options.incarnationResidue ?? (() => undefined);
    this.#writeFence = options.writeFence;
    this.#table = new StreamTable(options.clock, options.listener);
  }

  /** Number of live (not soft-deleted) streams. */
  get streamCount(): number {
    return this.#table.pathCount;
  }

  /** Unsealed bytes held by all hot tails. */
  get hotTailBytes(): number {
    return this.#table.hotTailBytes;
  }

  /**
   * Data bytes of creates and appends this process made durable (acknowledged), replay excluded;
   * read by the metrics exporter at scrape time so the append path only adds a number.
   */
  get appendedBytes(): number {
    return this.#appendedBytes;
  }

  /** Every stream incarnation still held, soft-deleted ones included (the sealer walks them). */
  allStreams(): IterableIterator<StreamState> {
    return this.#table.allStreams();
  }

  // ---------------------------------------------------------------------------------------------
  // Recovery: checkpoint, replay

  /** Applies one replayed WAL record (StreamTable.apply). Returns the stream it touched. */
  apply(record: StreamRecord): StreamState | undefined {
    return this.#table.apply(record);
  }

  /**
   * Resolves when every record applied so far is durable (replayed ones are); rejects when the
   * log could not make the last of them durable (a failed WAL: they may be lost). A record is
   * queued before it is applied, so a listener call made while applying it (a removal, dropped
   * segments) can use this to wait for that record: the object collector deletes nothing before
   * the record that let it go is durable (a crash that loses the record must find the objects).
   */
  recordsDurable(): Promise<void> {
    return this.#lastQueued;
  }

  /** Marks everything applied so far as durable (after WAL replay). */
  markAllDurable(): void {
    this.#table.markAllDurable();
  }

  /** A consistent copy of every stream for a WAL checkpoint (taken synchronously). */
  snapshot(): RegistrySnapshot {
    return snapshotTable(this.#table);
  }

  /** Loads a checkpoint snapshot into an empty registry (before WAL replay). */
  restore(snapshot: RegistrySnapshot): void {
    restoreTable(this.#table, snapshot);
  }

  /**
   * Takes over the streams of `snapshot`, the state another node had acknowledged (a diskless
   * takeover, docs/cluster.md): they are installed as durable, as if replayed. Streams whose path
   * is held here already are left out. The caller must make them durable in this node's own log
   * (a checkpoint) before it accepts writes to them: its log has no record of them.
   * @returns the streams adopted.
   */
  adopt(snapshot: RegistrySnapshot): StreamState[] {
    const streams = snapshot.streams.filter((s) => this.#table.atPath(s.path) === undefined && this.#table.byIncarnation(s.inc) === undefined);
    restoreTable(this.#table, { nextIncarnation: snapshot.nextIncarnation, streams });
    const adopted: StreamState[] = [];
    for (const s of streams) {
      const stream = this.#table.byIncarnation(s.inc);
      if (stream === undefined) continue;
      StreamTable.markDurable(stream);
      this.#unloadedPaths.delete(stream.path);
      this.#listener?.durable(stream);
      adopted.push(stream);
    }
    return adopted;
  }

  /** Refuses a write whose bytes would take the hot tails past their budget (503, DESIGN.md). */
  #admitHotBytes(length: number): void {
    if (length > 0 && this.#table.hotTailBytes + length > this.#hotTailBudgetBytes) {
      throw new ServiceUnavailableError(
        `hot-tail budget of ${this.#hotTailBudgetBytes} bytes is full: the object store is not keeping up with sealing; retry later`,
      );
    }
  }

  /**
   * Applies a record now and resolves when it is durable; readers see it from then on.
   * @returns the stream's tail position right after this record (what becomes durable with it).
   */
  async #commit(record: StreamRecord): Promise<number> {
    // Refused before apply(), so an append the WAL cannot hold leaves nothing behind (413).
    const recordData = record.t === 'create' || record.t === 'append' ? record.data : undefined;
    if (recordData !== undefined && recordData.length > WAL_RECORD_DATA_BYTES_MAX) throw new WalRecordTooLargeError(recordData.length, WAL_RECORD_DATA_BYTES_MAX);
    const fenced = this.#writeFence === undefined ? undefined : this.#fencedPath(record);
    const epoch = fenced === undefined ? 0 : this.#writeFence?.admit(fenced);
    this.#logLoads(record);
    // Queued first: a record the log refuses (it throws) leaves the state untouched, so its bytes
    // can never become visible through a later append's durable offset.
    const queued = this.#log.append(record);
    this.#lastQueued = queued;
    const stream = this.#table.apply(record);
    // apply() is synchronous, so the tail and closure right now are exactly this record's effect.
    const end = stream?.tailOffset ?? 0;
    const closed = stream?.closed ?? false;
    const writes = record.t === 'create' || record.t === 'append';
    const dataBytes = writes ? (record.data?.length ?? 0) : 0;
    const durable = queued.then(
      () => {
        if (stream === undefined || record.t === 'seal' || record.t === 'trim') return;
        if (writes) {
          stream.createDurable = true;
          stream.durableOffset = Math.max(stream.durableOffset, end);
          stream.durableClosed ||= closed;
          this.#appendedBytes += dataBytes;
          this.#listener?.durable(stream);
        }
        stream.notifySoon();
      },
    );
    if (stream !== undefined && writes) stream.lastCommit = durable;
    await durable;
    if (fenced !== undefined) this.#writeFence?.confirm(fenced, epoch ?? 0);
    return end;
  }

  /**
   * The path whose slot owner must acknowledge `record` (creates, appends, deletes): the stream's
   * host path (a fork lives in its chain root's slot, docs/cluster.md "Forks"), or undefined.
   */
  #fencedPath(record: StreamRecord): string | undefined {
    if (record.t === 'create') {
      const source = record.fork === undefined ? undefined : this.#table.byIncarnation(record.fork.inc);
      return source === undefined ? record.path : hostPathOf(source);
    }
    if (record.t === 'append' || record.t === 'delete') {
      const stream = this.#table.byIncarnation(record.inc);
      return stream === undefined ? undefined : hostPathOf(stream);
    }
    return undefined;
  }

  /**
   * The host path of the stream held at `path`: its own path, or for a fork the path of its
   * chain's root (cluster mode keeps a fork in that path's slot). Undefined when not held.
   */
  hostPathOf(path: string): string | undefined {
    const stream = this.#table.atPath(path);
    return stream === undefined ? undefined : hostPathOf(stream);
  }

  /** The host path of `stream` (see `hostPathOf`). */
  hostPath(stream: StreamState): string {
    return hostPathOf(stream);
  }

  /**
   * Before the first record that touches a stream loaded from the object store (or a fork of
   * one), logs load records for it and its unlogged sources, sources first, so replay knows them.
   */
  #logLoads(record: StreamRecord): void {
    const inc = record.t === 'create' ? record.fork?.inc : record.inc;
    const target = inc === undefined ? undefined : this.#table.byIncarnation(inc);
    if (target === undefined) return;
    const unlogged = lineage.lineage(target).filter((stream) => stream.unlogged).reverse();
    for (const stream of unlogged) {
      void this.#log.append(loadRecordOf(stream)).catch(() => {}); // the record after it reports a failure
      stream.unlogged = false;
    }
  }

  /**
   * Installs streams loaded from the object store (sources before forks), as sealed-only state;
   * incarnations already held are left as they are. Nothing is logged until a write touches them.
   * @returns the last one's state. @throws Error when a fork names a source not held or given.
   */
  install(records: readonly LoadRecord[]): StreamState | undefined {
    let last: StreamState | undefined;
    for (const record of records) {
      const held = this.#table.byIncarnation(record.inc);
      last = held ?? this.#table.load(record);
      if (held === undefined) last.unlogged = true;
    }
    return last;
  }

  /**
   * Logs the load records of `stream` and its unlogged fork sources now (`cairn recover`), so the
   * next start replays them instead of looking them up. Resolves when they are durable.
   */
  async persistLoaded(stream: StreamState): Promise<void> {
    const unlogged = lineage.lineage(stream).filter((at) => at.unlogged).reverse();
    const written = unlogged.map((at) => {
      const durable = this.#log.append(loadRecordOf(at));
      at.unlogged = false;
      return durable;
    });
    await Promise.all(written);
  }

  /**
   * Forgets a stream loaded from the object store that nothing local depends on: no WAL record
   * names it (`unlogged`), no fork of it is held, nothing unsealed, no live reader or producer
   * waiting. Its objects stay; the next lazy lookup loads it again (src/tiering/idle-eviction.ts
   * decides when). @returns false, forgetting nothing, for any other stream.
   */
  evictLoaded(stream: StreamState): boolean {
    if (!stream.unlogged || stream.forkCount > 0 || stream.hasWaiters || stream.tailOffset !== stream.sealedOffset || stream.metaDirty || !this.holds(stream)) return false;
    this.#table.evict(stream);
    return true;
  }

  /** Raises the next incarnation past one seen in the object store. */
  raiseNextIncarnation(incarnation: number): void {
    this.#table.raiseNextIncarnation(incarnation);
  }

  /** True when some incarnation (live, soft-deleted, expired or not yet durable) holds `path`. */
  holdsPath(path: string): boolean {
    return this.#table.atPath(path) !== undefined;
  }

  /** The held incarnation numbered `incarnation`, if any. */
  byIncarnation(incarnation: number): StreamState | undefined {
    return this.#table.byIncarnation(incarnation);
  }

  /** Streams whose stored metadata is behind, oldest first (the sealer's metadata flush). */
  metaDirtyStreams(): IterableIterator<StreamState> {
    return this.#table.metaDirtyStreams();
  }

  markMetaDirty(stream: StreamState): void {
    this.#table.markMetaDirty(stream);
  }

  clearMetaDirty(stream: StreamState): void {
    this.#table.clearMetaDirty(stream);
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups

  /**
   * The live stream at `path` for a client operation.
   * @throws StreamNotFoundError (absent or expired), GoneError (soft-deleted, §4.2).
   */
  get(path: string, options: { touch: boolean }): StreamState {
    const stream = this.#table.atPath(path);
    // Cluster mode: unloaded while this request was on its way (its slot moved): 503, so the
    // forwarding node or the client asks the new owner, not 404.
    if (stream === undefined && this.#unloadedPaths.has(path)) throw new SlotNotOwnedError(undefined, undefined, `stream ${path} moved to another node`);
    if (stream === undefined || !stream.createDurable || this.#expireIfDue(stream)) {
      throw new StreamNotFoundError(path);
    }
    if (stream.softDeleted) throw new GoneError(`stream was deleted: ${path}`);
    if (options.touch) stream.lastAccessMs = this.#clock.nowMs();
    return stream;
  }

  /** Deletes an expired stream (in the background) and reports whether it was expired. */
  #expireIfDue(stream: StreamState): boolean {
    if (stream.softDeleted) return false;
    const expiry = stream.expiryMs();
    if (expiry === undefined || this.#clock.nowMs() < expiry) return false;
    this.#commit({ t: 'delete', inc: stream.incarnation }).catch((error) => this.#onBackgroundError(error));
    return true;
  }

  /** Deletes every stream whose TTL or expiry time has passed; returns how many. */
  reapExpired(): number {
    let count = 0;
    for (const stream of [...this.#table.pathStreams()]) if (this.#expireIfDue(stream)) count++;
    return count;
  }

  /**
   * One page of the live streams this node holds, ascending by path (`GET /v1/streams`):
   * durable, not soft-deleted, not expired (an expired one is not deleted here; reads do that).
   */
  list(query: StreamListQuery): StreamListPage {
    const nowMs = this.#clock.nowMs();
    const live = function* (streams: Iterable<StreamState>) {
      for (const stream of streams) {
        const expiry = stream.expiryMs();
        if (stream.createDurable && !stream.softDeleted && (expiry === undefined || nowMs < expiry)) yield stream;
      }
    };
    return selectStreamPage(live(this.#table.pathStreams()), query);
  }

  /** True while `stream` is the incarnation at its path (not replaced, not removed). */
  isCurrent(stream: StreamState): boolean {
    return this.#table.atPath(stream.path) === stream;
  }

  // Lineage lookups for the routes and the read path: src/stream/lineage.ts has their shapes and errors.

  offsetOf(stream: StreamState, position: number): string {
    return lineage.offsetOf(stream, position);
  }

  /** @throws BadRequestError, GoneError (lineage.resolvePosition). */
  resolvePosition(stream: StreamState, token: OffsetToken): number {
    return lineage.resolvePosition(stream, token);
  }

  earliestPosition(stream: StreamState): number {
    return lineage.earliestPosition(stream);
  }

  ownerOf(stream: StreamState, position: number): StreamState {
    return lineage.ownerOf(stream, position);
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  /**
   * Creates a stream, or confirms an identical existing one (PROTOCOL.md §5.1, forks §4.2).
   * @throws BadRequestError, ConflictError (config mismatch, soft-deleted path or source),
   *   StreamNotFoundError (fork source), ServiceUnavailableError (WAL).
   */
  async create(request: CreateRequest): Promise<CreateOutcome> {
    if (request.ttlSeconds !== undefined && request.expiresAtMs !== undefined) {
      throw new BadRequestError('send either Stream-TTL or Stream-Expires-At, not both');
    }
    const existing = this.#table.atPath(request.path);
    if (existing !== undefined && !this.#expireIfDue(existing)) {
      if (existing.softDeleted) throw new ConflictError('a deleted stream still referenced by forks holds this path');
      await existing.lastCommit.catch(() => {});
      if (!(await sameConfig(existing, request, this.#sealedUnitReader))) {
        throw new ConflictError('stream already exists with a different configuration');
      }
      existing.lastAccessMs = this.#clock.nowMs();
      return { created: false, stream: existing };
    }

    let contentType = request.contentType ?? DEFAULT_CONTENT_TYPE;
    let ttlSeconds = request.ttlSeconds;
    let expiresAtMs = request.expiresAtMs;
    let fork: CreateRecord['fork'];
    if (request.fork !== undefined) {
      const source = this.#table.atPath(request.fork.sourcePath);
      if (source === undefined || !source.createDurable || this.#expireIfDue(source)) {
        throw new StreamNotFoundError(request.fork.sourcePath);
      }
      if (source.softDeleted) throw new ConflictError('fork source stream was deleted');
      if (request.contentType !== undefined && !sameMediaType(request.contentType, source.contentType)) {
        throw new ConflictError('fork Content-Type differs from the source stream');
      }
      contentType = source.contentType;
      const position = await lineage.forkPosition(source, request.fork.offset, request.fork.subOffset ?? 0, this.#sealedUnitReader);
      // The fork point may have needed a read from the object store: look at the world again.
      if (this.#table.atPath(request.path) !== undefined || !this.isCurrent(source) || source.softDeleted) return this.create(request);
      fork = { inc: source.incarnation, position };
      if (ttlSeconds === undefined && expiresAtMs === undefined) {
        ttlSeconds = source.ttlSeconds;
        expiresAtMs = source.expiresAtMs;
      }
      source.lastAccessMs = this.#clock.nowMs();
    }

    let data: Buffer | undefined;
    if (request.body.length > 0) {
      data = isJsonContentType(contentType) ? encodeJsonMessages(request.body).bytes : request.body;
      if (data.length === 0) data = undefined;
    }
    this.#admitHotBytes(data?.length ?? 0);
    const record: CreateRecord = {
      t: 'create',
      inc: withResidue(Math.max(this.#table.nextIncarnation, this.#incarnationFloor()), this.#incarnationResidue()),
      path: request.path,
      contentType,
      closed: request.closed,
      createdAtMs: this.#clock.nowMs(),
    };
    if (ttlSeconds !== undefined) record.ttlSeconds = ttlSeconds;
    if (expiresAtMs !== undefined) record.expiresAtMs = expiresAtMs;
    if (fork !== undefined) record.fork = fork;
    if (data !== undefined) record.data = data;
    if (request.retentionMs !== undefined) record.retentionMs = request.retentionMs;
    if (request.retentionBytes !== undefined) record.retentionBytes = request.retentionBytes;
    await this.#commit(record);
    const stream = this.#table.byIncarnation(record.inc);
    if (stream === undefined) throw new StreamNotFoundError(request.path);
    return { created: true, stream };
  }

  /**
   * Appends to a stream, optionally closing it (PROTOCOL.md §5.2, §5.2.1, §5.3).
   * @throws StreamNotFoundError, GoneError, BadRequestError, StreamClosedError, ConflictError,
   *   StaleProducerEpochError, ProducerSequenceGapError, ServiceUnavailableError.
   */
  async append(request: AppendRequest, gapWaited = false): Promise<AppendOutcome> {
    const stream = this.get(request.path, { touch: true });
    const hasBody = request.body.length > 0;
    if (!hasBody && !request.close) throw new BadRequestError('append body is empty');

    if (stream.closed) {
      const p = request.producer;
      if (isSameCloser(stream.closedBy, p) || (!hasBody && request.close)) {
        await stream.lastCommit;
        return { stream, kind: 'duplicate', position: stream.tailOffset, producer: p && { epoch: p.epoch, seq: p.seq } };
      }
      throw new StreamClosedError(lineage.offsetOf(stream, stream.tailOffset));
    }
    if (hasBody) {
      if (request.contentType === undefined) throw new BadRequestError('Content-Type is required for an append with a body');
      if (!sameMediaType(request.contentType, stream.contentType)) {
        throw new ConflictError('Content-Type does not match the stream');
      }
    }

    let producerAccepted = false;
    if (request.producer !== undefined) {
      const { producerId, epoch, seq } = request.producer;
      const decision = decideProducer(stream.producer(producerId), { epoch, seq });
      switch (decision.kind) {
        case 'stale-epoch':
          throw new StaleProducerEpochError(decision.currentEpoch);
        case 'new-epoch-not-at-zero':
          throw new BadRequestError('a new producer epoch must start at Producer-Seq 0');
        case 'duplicate':
          await stream.lastCommit;
          return { stream, kind: 'duplicate', position: stream.tailOffset, producer: { epoch, seq: decision.lastSeq } };
        case 'sequence-gap':
          // A request ahead of its predecessor (pipelined batches overtaking each other, §5.2.1
          // concurrency) first waits a moment for it; only a gap that remains is a 409.
          if (gapWaited) throw new ProducerSequenceGapError(decision.expectedSeq, decision.receivedSeq);
          await this.#awaitProducerSeq(stream, producerId, epoch, seq - 1);
          return this.append(request, true);
        case 'accept':
          producerAccepted = true;
      }
    }
    if (request.streamSeq !== undefined && stream.lastStreamSeq !== undefined && request.streamSeq <= stream.lastStreamSeq) {
      throw new ConflictError('Stream-Seq must be greater than the last one appended');
    }

    let data: Buffer | undefined;
    if (hasBody) {
      if (stream.isJson) {
        const messages = encodeJsonMessages(request.body);
        if (messages.messageCount === 0) throw new BadRequestError('an append must not be an empty JSON array');
        data = messages.bytes;
      } else {
        data = request.body;
      }
    }
    this.#admitHotBytes(data?.length ?? 0);
    const record: AppendRecord = { t: 'append', inc: stream.incarnation };
    if (data !== undefined) record.data = data;
    if (producerAccepted && request.producer !== undefined) {
      record.producer = [request.producer.producerId, request.producer.epoch, request.producer.seq];
    }
    if (request.streamSeq !== undefined) record.streamSeq = request.streamSeq;
    if (request.close) record.close = true;
    const position = await this.#commit(record);
    return {
      stream,
      kind: 'appended',
      position,
      producer: request.producer && { epoch: request.producer.epoch, seq: request.producer.seq },
    };
  }

  /**
   * Resolves when producer `producerId` of `stream` has accepted `seq` in `epoch` (or moved to another
   * epoch), or after PRODUCER_SEQUENCE_GAP_WAIT_MS; the caller validates again either way.
   */
  #awaitProducerSeq(stream: StreamState, producerId: string, epoch: number, seq: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = (stream.producerWaiters ??= new Set());
      const finish = () => {
        timer.cancel();
        waiters.delete(check);
        if (waiters.size === 0 && stream.producerWaiters === waiters) stream.producerWaiters = undefined;
        resolve();
      };
      const check = () => {
        const state = stream.producer(producerId);
        if (state !== undefined && (state.epoch !== epoch || state.lastSeq >= seq)) finish();
      };
      const timer = this.#clock.setTimeout(finish, PRODUCER_SEQUENCE_GAP_WAIT_MS);
      waiters.add(check);
    });
  }

  /**
   * Deletes a stream; soft-deletes it while forks reference it (PROTOCOL.md §5.4).
   * @throws StreamNotFoundError, GoneError, ServiceUnavailableError.
   */
  async delete(path: string): Promise<void> {
    const stream = this.get(path, { touch: false });
    await this.#commit({ t: 'delete', inc: stream.incarnation });
  }

  // ---------------------------------------------------------------------------------------------
  // Tiering

  /**
   * Publishes a seal: the segment and the manifest listing it as `version` are stored. Applied at
   * once (reads below the segment's end go to the object store from now on); resolves when the
   * record is in the WAL.
   */
  async commitSeal(stream: StreamState, segment: SegmentRef, version: number): Promise<void> {
    await this.#commit({ t: 'seal', inc: stream.incarnation, segment, version });
  }

  /** Publishes a retention trim: manifest `version` no longer lists segments below `retainedStart`. */
  async commitTrim(stream: StreamState, retainedStart: number, version: number): Promise<void> {
    await this.#commit({ t: 'trim', inc: stream.incarnation, retainedStart, version });
  }

  /**
   * Cluster mode: forgets `streams` after their slot's hand-over stored every byte and their
   * metadata (docs/cluster.md "Moves"), forks before their sources; their objects stay for the
   * new owner. Live readers wake and see `movedAway`. They are gone from the registry when this
   * returns its promise; it resolves once the unload records are durable.
   */
  async unload(streams: readonly StreamState[]): Promise<void> {
    const depth = (stream: StreamState) => lineage.lineage(stream).length;
    // Each commit applies its record before it returns: all are forgotten now, durable later.
    const durable: Array<Promise<number>> = [];
    for (const stream of [...streams].sort((a, b) => depth(b) - depth(a))) {
      if (!this.holds(stream)) continue;
      this.#unloadedPaths.set(stream.path, true);
      durable.push(this.#commit({ t: 'unload', inc: stream.incarnation }));
    }
    await Promise.all(durable);
  }

  /** True while the incarnation is held (live or soft-deleted): its objects must stay. */
  holds(stream: StreamState): boolean {
    return this.#table.byIncarnation(stream.incarnation) === stream;
  }
}

/** The least incarnation ≥ `inc` that is ≡ `residue` (mod INCARNATIONS_PER_MS); `inc` when no residue is set. */
export function withResidue(inc: number, residue: number | undefined): number {
  if (residue === undefined) return inc;
  return inc + ((((residue - inc) % INCARNATIONS_PER_MS) + INCARNATIONS_PER_MS) % INCARNATIONS_PER_MS);
}
