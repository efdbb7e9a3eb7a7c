/**
 * The stream registry: every stream incarnation, the one state-transition function used live and
 * at WAL replay, and the protocol's write operations (create, append, close, delete) with their
 * validation (PROTOCOL.md §4–§5). Validation and the state change happen in one synchronous step,
 * so writes to a stream (and per producer) are serialised without locks; acknowledgement waits
 * for the WAL record to be durable.
 */
import type { Clock } from '../clock.ts';
import { PRODUCER_SEQUENCE_GAP_WAIT_MS } from '../config/limits.ts';
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
import { encodeJsonMessages, storedMessagesLength } from '../protocol/json-mode.ts';
import { formatOffset, ZERO_INCARNATION, type OffsetToken } from '../protocol/offset.ts';
import type { ProducerHeaders } from '../protocol/headers.ts';
import type { SegmentRef } from '../manifest/manifest.ts';
import { WAL_FRAME_PAYLOAD_BYTES_MAX, WalRecordTooLargeError } from '../wal/index.ts';
import type { AppendRecord, CreateRecord, StreamRecord } from './records.ts';
import { StreamState } from './stream-state.ts';

/** Largest data of one create or append: a WAL frame, less room for the record's other fields
 * (path, content type, producer: all from the request line and headers, `--max-header-bytes` ≤ 1 MiB). */
const WAL_RECORD_DATA_BYTES_MAX = WAL_FRAME_PAYLOAD_BYTES_MAX - 2 * 1024 * 1024;

/** Where records go to become durable (the WAL writer, or a test double). */
export interface RecordLog {
  /** Resolves once the record is durable; rejects if it cannot be made durable. */
  append(record: StreamRecord): Promise<void>;
}

/** What other layers hear about from the registry (the sealer, the object collector). */
export interface RegistryListener {
  /** New bytes or closure of `stream` are durable (live writes only, not replay). */
  durable(stream: StreamState): void;
  /** An incarnation is gone for good (deleted, expired, last fork gone): its objects may go. */
  removed(stream: StreamState): void;
  /** Retention dropped these segments of `stream`: their objects may go. */
  segmentsDropped(stream: StreamState, segments: readonly SegmentRef[]): void;
}

/** Reads the rest of the sealed read unit holding `position` of `stream` (fork points in cold data). */
export type SealedUnitReader = (stream: StreamState, position: number) => Promise<Buffer>;

export interface RegistryOptions {
  /** Unsealed bytes across all streams before writes get 503 (DESIGN.md backpressure). */
  hotTailBudgetBytes: number;
}

export interface CreateRequest {
  path: string;
  contentType: string | undefined;
  ttlSeconds: number | undefined;
  expiresAtMs: number | undefined;
  closed: boolean;
  body: Buffer;
  fork?: { sourcePath: string; offset: OffsetToken | undefined; subOffset: number | undefined };
  /** Cairn extension headers `Cairn-Retention-Ms` / `Cairn-Retention-Bytes`. */
  retentionMs?: number;
  retentionBytes?: number;
}

export interface CreateOutcome {
  created: boolean;
  stream: StreamState;
}

export interface AppendRequest {
  path: string;
  contentType: string | undefined;
  body: Buffer;
  close: boolean;
  producer: ProducerHeaders | undefined;
  streamSeq: string | undefined;
}

export interface AppendOutcome {
  stream: StreamState;
  /** `appended`: new data or closure; `duplicate`: an idempotent retry of an accepted request. */
  kind: 'appended' | 'duplicate';
  /** Tail position after the request, for Stream-Next-Offset. */
  position: number;
  /** Producer epoch and highest accepted seq, for the response headers. */
  producer?: { epoch: number; seq: number };
}

/** Serialised registry state for WAL checkpoints. */
export interface RegistrySnapshot {
  nextIncarnation: number;
  streams: SnapshotStream[];
}

interface SnapshotStream {
  path: string;
  inc: number;
  contentType: string;
  ttlSeconds?: number;
  expiresAtMs?: number;
  fork?: { inc: number; position: number };
  closed: boolean;
  closedBy?: [string, number, number];
  lastStreamSeq?: string;
  softDeleted: boolean;
  producers: [string, number, number][];
  entries: Buffer[];
  retentionMs?: number;
  retentionBytes?: number;
  segments?: SegmentRef[];
  /** End of the sealed bytes (retention may have dropped every segment below it). */
  sealedOffset?: number;
  manifestVersion?: number;
  retainedStart?: number;
}

export class StreamRegistry {
  readonly #log: RecordLog;
  readonly #clock: Clock;
  readonly #hotTailBudgetBytes: number;
  readonly #byPath = new Map<string, StreamState>();
  readonly #byIncarnation = new Map<number, StreamState>();
  #nextIncarnation = 1;
  #hotTailBytes = 0;
  #appendedBytes = 0;
  /** Called when a commit fails in the background (expiry deletes); for logging. */
  onBackgroundError: (error: unknown) => void = () => {};
  listener: RegistryListener | undefined;
  /** Set by the read path; needed to fork at an offset inside sealed data. */
  sealedUnitReader: SealedUnitReader | undefined;

  constructor(log: RecordLog, clock: Clock, options: RegistryOptions = { hotTailBudgetBytes: Number.MAX_SAFE_INTEGER }) {
    this.#log = log;
    this.#clock = clock;
    this.#hotTailBudgetBytes = options.hotTailBudgetBytes;
  }

  /** Number of live (not soft-deleted) streams. */
  get streamCount(): number {
    return this.#byPath.size;
  }

  /** Unsealed bytes held by all hot tails. */
  get hotTailBytes(): number {
    return this.#hotTailBytes;
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
    return this.#byIncarnation.values();
  }

  // ---------------------------------------------------------------------------------------------
  // State transitions (live and replay)

  /**
   * Applies one record to the in-memory state. Used for live writes (before the record is durable)
   * and for WAL replay; it must stay deterministic. Returns the stream it touched.
   */
  apply(record: StreamRecord): StreamState | undefined {
    switch (record.t) {
      case 'create': {
        const stream = this.#register(record);
        if (record.data !== undefined) this.#addHot(stream, record.data);
        stream.closed = record.closed;
        this.#nextIncarnation = Math.max(this.#nextIncarnation, record.inc + 1);
        return stream;
      }
      case 'append': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) throw new Error(`append record names missing incarnation ${record.inc}`);
        if (record.data !== undefined) this.#addHot(stream, record.data);
        if (record.producer !== undefined) {
          const [id, epoch, seq] = record.producer;
          stream.setProducer(id, { epoch, lastSeq: seq });
          stream.notifyProducerWaiters();
        }
        if (record.streamSeq !== undefined) stream.lastStreamSeq = record.streamSeq;
        if (record.close === true) {
          stream.closed = true;
          stream.closedBy = record.producer;
        }
        return stream;
      }
      case 'delete': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) return undefined;
        if (stream.forkCount > 0) stream.softDeleted = true;
        else this.#remove(stream);
        stream.notify();
        return stream;
      }
      case 'seal': {
        // A seal of a removed stream (deleted while its upload ran) changes nothing.
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined || record.segment.end <= stream.sealedOffset) return stream;
        if (record.segment.start !== stream.sealedOffset || record.segment.end > stream.tailOffset) {
          throw new Error(
            `seal [${record.segment.start}, ${record.segment.end}) of ${stream.path} does not continue [.., ${stream.sealedOffset}) within tail ${stream.tailOffset}`,
          );
        }
        stream.segments.push(record.segment);
        stream.manifestVersion = record.version;
        this.#hotTailBytes -= record.segment.end - record.segment.start;
        stream.hotTail.dropBefore(record.segment.end);
        stream.unsealedSinceMs = this.#clock.nowMs();
        return stream;
      }
      case 'trim': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) return stream;
        stream.manifestVersion = Math.max(stream.manifestVersion, record.version);
        if (record.retainedStart <= stream.retainedStart) return stream;
        const keep = stream.segments.findIndex((segment) => segment.end > record.retainedStart);
        const dropped = keep === -1 ? stream.segments : stream.segments.slice(0, keep);
        stream.segments = keep === -1 ? [] : stream.segments.slice(keep);
        stream.retainedStart = record.retainedStart;
        if (dropped.length > 0) this.listener?.segmentsDropped(stream, dropped);
        return stream;
      }
    }
  }

  #addHot(stream: StreamState, data: Buffer): void {
    if (data.length === 0) return;
    if (stream.hotTail.sizeBytes === 0) stream.unsealedSinceMs = this.#clock.nowMs();
    stream.hotTail.append(data);
    stream.lastAppendMs = this.#clock.nowMs();
    this.#hotTailBytes += data.length;
  }

  /** Refuses a write whose bytes would take the hot tails past their budget (503, DESIGN.md). */
  #admitHotBytes(length: number): void {
    if (length > 0 && this.#hotTailBytes + length > this.#hotTailBudgetBytes) {
      throw new ServiceUnavailableError(
        `hot-tail budget of ${this.#hotTailBudgetBytes} bytes is full: the object store is not keeping up with sealing; retry later`,
      );
    }
  }

  /** Creates the state of a new incarnation (from a create record or a checkpoint) and indexes it. */
  #register(
    meta: Pick<CreateRecord, 'path' | 'inc' | 'contentType' | 'ttlSeconds' | 'expiresAtMs' | 'fork' | 'retentionMs' | 'retentionBytes'>,
  ): StreamState {
    const source = meta.fork === undefined ? undefined : this.#byIncarnation.get(meta.fork.inc);
    if (meta.fork !== undefined && source === undefined) {
      throw new Error(`stream ${meta.path} names missing fork source incarnation ${meta.fork.inc}`);
    }
    const stream = new StreamState({
      path: meta.path,
      incarnation: meta.inc,
      contentType: meta.contentType,
      ttlSeconds: meta.ttlSeconds,
      expiresAtMs: meta.expiresAtMs,
      fork: source === undefined || meta.fork === undefined ? undefined : { source, position: meta.fork.position },
      retentionMs: meta.retentionMs,
      retentionBytes: meta.retentionBytes,
      nowMs: this.#clock.nowMs(),
    });
    if (source !== undefined) source.forkCount++;
    this.#byPath.set(meta.path, stream);
    this.#byIncarnation.set(meta.inc, stream);
    return stream;
  }

  /** Marks everything applied so far as durable (after WAL replay). */
  markAllDurable(): void {
    for (const stream of this.#byIncarnation.values()) {
      stream.durableOffset = stream.tailOffset;
      stream.durableClosed = stream.closed;
      stream.createDurable = true;
      stream.needsProbe = true;
    }
  }

  #remove(stream: StreamState): void {
    if (this.#byPath.get(stream.path) === stream) this.#byPath.delete(stream.path);
    this.#byIncarnation.delete(stream.incarnation);
    this.#hotTailBytes -= stream.hotTail.sizeBytes;
    this.listener?.removed(stream);
    const source = stream.fork?.source;
    if (source !== undefined) {
      source.forkCount--;
      if (source.softDeleted && source.forkCount === 0) this.#remove(source);
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
    const stream = this.apply(record);
    // apply() is synchronous, so the tail and closure right now are exactly this record's effect.
    const end = stream?.tailOffset ?? 0;
    const closed = stream?.closed ?? false;
    const writes = record.t === 'create' || record.t === 'append';
    const dataBytes = writes ? (record.data?.length ?? 0) : 0;
    const durable = this.#log.append(record).then(
      () => {
        if (stream === undefined || record.t === 'seal' || record.t === 'trim') return;
        if (writes) {
          stream.createDurable = true;
          stream.durableOffset = Math.max(stream.durableOffset, end);
          stream.durableClosed ||= closed;
          this.#appendedBytes += dataBytes;
          this.listener?.durable(stream);
        }
        stream.notifySoon();
      },
    );
    if (stream !== undefined && writes) stream.lastCommit = durable;
    await durable;
    return end;
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups

  /**
   * The live stream at `path` for a client operation.
   * @throws StreamNotFoundError (absent or expired), GoneError (soft-deleted, §4.2).
   */
  get(path: string, options: { touch: boolean }): StreamState {
    const stream = this.#byPath.get(path);
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
    this.#commit({ t: 'delete', inc: stream.incarnation }).catch((error) => this.onBackgroundError(error));
    return true;
  }

  /** Deletes every stream whose TTL or expiry time has passed; returns how many. */
  reapExpired(): number {
    let count = 0;
    for (const stream of [...this.#byPath.values()]) if (this.#expireIfDue(stream)) count++;
    return count;
  }

  /** True while `stream` is the incarnation at its path (not replaced, not removed). */
  isCurrent(stream: StreamState): boolean {
    return this.#byPath.get(stream.path) === stream;
  }

  /** The stream and its fork sources, nearest first. */
  lineage(stream: StreamState): StreamState[] {
    const chain = [stream];
    for (let at = stream.fork?.source; at !== undefined; at = at.fork?.source) chain.push(at);
    return chain;
  }

  /** Formats an offset token for a position of this stream. */
  offsetOf(stream: StreamState, position: number): string {
    return formatOffset(stream.incarnation, position);
  }

  /**
   * The logical position an offset token names on `stream` (§8: forks share their source's offsets).
   * @throws BadRequestError when the token is past the readable tail or does not belong to the
   *   stream; GoneError when it belongs to an earlier incarnation of the path.
   */
  resolvePosition(stream: StreamState, token: OffsetToken): number {
    if (token.incarnation === ZERO_INCARNATION && token.position === 0) return this.earliestPosition(stream);
    let limit = stream.durableOffset;
    for (const at of this.lineage(stream)) {
      if (token.incarnation === at.incarnation) {
        if (token.position > limit) throw new BadRequestError('offset is beyond the tail of the stream');
        if (token.position < this.earliestPosition(stream)) {
          throw new GoneError('offset is before the earliest retained position of the stream (retention)');
        }
        return token.position;
      }
      if (at.fork !== undefined) limit = Math.min(limit, at.fork.position);
    }
    if (token.incarnation < stream.incarnation) {
      throw new GoneError('offset belongs to an earlier incarnation of this stream');
    }
    throw new BadRequestError('offset does not belong to this stream');
  }

  /**
   * First readable position of `stream` (what offset `-1` means): its own retained start, or, while
   * it has dropped none of its own bytes, the earliest position its fork source still retains.
   */
  earliestPosition(stream: StreamState): number {
    if (stream.fork === undefined || stream.retainedStart > stream.basePosition) return stream.retainedStart;
    return Math.min(this.earliestPosition(stream.fork.source), stream.basePosition);
  }

  /** The stream in `stream`'s lineage whose own bytes hold `position` (forks read their sources below the fork point). */
  ownerOf(stream: StreamState, position: number): StreamState {
    let owner = stream;
    while (owner.fork !== undefined && position < owner.basePosition) owner = owner.fork.source;
    return owner;
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
    const existing = this.#byPath.get(request.path);
    if (existing !== undefined && !this.#expireIfDue(existing)) {
      if (existing.softDeleted) throw new ConflictError('a deleted stream still referenced by forks holds this path');
      await existing.lastCommit.catch(() => {});
      if (!(await this.#sameConfig(existing, request))) {
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
      const source = this.#byPath.get(request.fork.sourcePath);
      if (source === undefined || !source.createDurable || this.#expireIfDue(source)) {
        throw new StreamNotFoundError(request.fork.sourcePath);
      }
      if (source.softDeleted) throw new ConflictError('fork source stream was deleted');
      if (request.contentType !== undefined && !sameMediaType(request.contentType, source.contentType)) {
        throw new ConflictError('fork Content-Type differs from the source stream');
      }
      contentType = source.contentType;
      const position = await this.#forkPosition(source, request.fork.offset, request.fork.subOffset ?? 0);
      // The fork point may have needed a read from the object store: look at the world again.
      if (this.#byPath.has(request.path) || !this.isCurrent(source) || source.softDeleted) return this.create(request);
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
      inc: this.#nextIncarnation,
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
    const stream = this.#byIncarnation.get(record.inc);
    if (stream === undefined) throw new StreamNotFoundError(request.path);
    return { created: true, stream };
  }

  async #sameConfig(stream: StreamState, request: CreateRequest): Promise<boolean> {
    if (request.retentionMs !== undefined && request.retentionMs !== stream.retentionMs) return false;
    if (request.retentionBytes !== undefined && request.retentionBytes !== stream.retentionBytes) return false;
    if (request.contentType !== undefined && !sameMediaType(request.contentType, stream.contentType)) return false;
    if (request.contentType === undefined && request.fork === undefined && !sameMediaType(DEFAULT_CONTENT_TYPE, stream.contentType)) {
      return false;
    }
    if (request.closed !== stream.closed) return false;
    if (request.fork !== undefined || stream.fork !== undefined) {
      if (request.fork === undefined || stream.fork === undefined) return false;
      if (stream.fork.source.path !== request.fork.sourcePath) return false;
      if (request.fork.offset !== undefined) {
        let position: number;
        try {
          position = await this.#forkPosition(stream.fork.source, request.fork.offset, request.fork.subOffset ?? 0);
        } catch {
          return false;
        }
        if (position !== stream.fork.position) return false;
      }
      if (request.ttlSeconds === undefined && request.expiresAtMs === undefined) return true;
    }
    return request.ttlSeconds === stream.ttlSeconds && request.expiresAtMs === stream.expiresAtMs;
  }

  /** Resolves a fork point: the offset (default: the source's tail) plus the sub-offset. */
  async #forkPosition(source: StreamState, offset: OffsetToken | undefined, subOffset: number): Promise<number> {
    const anchor = offset === undefined ? source.durableOffset : this.resolvePosition(source, offset);
    if (subOffset === 0) return anchor;
    // The sub-offset may not run past the next data boundary: the end of the append entry at the
    // anchor, or of the read unit when the anchor lies in sealed data.
    const entry = await this.#entryRest(source, anchor);
    const length = source.isJson ? storedMessagesLength(entry, subOffset) : subOffset <= entry.length ? subOffset : undefined;
    if (length === undefined) throw new BadRequestError('Stream-Fork-Sub-Offset is past the next data boundary');
    return anchor + length;
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
      const by = stream.closedBy;
      const p = request.producer;
      const sameCloser = p !== undefined && by !== undefined && by[0] === p.producerId && by[1] === p.epoch && by[2] === p.seq;
      if (sameCloser || (!hasBody && request.close)) {
        await stream.lastCommit;
        return { stream, kind: 'duplicate', position: stream.tailOffset, producer: p && { epoch: p.epoch, seq: p.seq } };
      }
      throw new StreamClosedError(this.offsetOf(stream, stream.tailOffset));
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
      const state = stream.producer(producerId);
      if (state !== undefined && epoch < state.epoch) throw new StaleProducerEpochError(state.epoch);
      // A request ahead of its predecessor (pipelined batches overtaking each other, §5.2.1
      // concurrency) first waits a moment for it; only a gap that remains is a 409.
      const gap = (expected: number) =>
        gapWaited
          ? Promise.reject(new ProducerSequenceGapError(expected, seq))
          : this.#awaitProducerSeq(stream, producerId, epoch, seq - 1).then(() => this.append(request, true));
      if (state === undefined || epoch > state.epoch) {
        if (seq !== 0) {
          if (state === undefined) return gap(0);
          throw new BadRequestError('a new producer epoch must start at Producer-Seq 0');
        }
      } else if (seq <= state.lastSeq) {
        await stream.lastCommit;
        return { stream, kind: 'duplicate', position: stream.tailOffset, producer: { epoch, seq: state.lastSeq } };
      } else if (seq !== state.lastSeq + 1) {
        return gap(state.lastSeq + 1);
      }
      producerAccepted = true;
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
        clearTimeout(timer);
        waiters.delete(check);
        if (waiters.size === 0 && stream.producerWaiters === waiters) stream.producerWaiters = undefined;
        resolve();
      };
      const check = () => {
        const state = stream.producer(producerId);
        if (state !== undefined && (state.epoch !== epoch || state.lastSeq >= seq)) finish();
      };
      const timer = setTimeout(finish, PRODUCER_SEQUENCE_GAP_WAIT_MS);
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

  /** The rest of the data boundary holding `position` in the stream's lineage (§4.2 sub-offsets). */
  async #entryRest(stream: StreamState, position: number): Promise<Buffer> {
    const owner = this.ownerOf(stream, position);
    if (position < owner.sealedOffset) {
      if (this.sealedUnitReader === undefined) throw new Error('no sealed-unit reader: cannot fork inside sealed data');
      return this.sealedUnitReader(owner, position);
    }
    const { parts } = owner.hotTail.read(position, owner.tailOffset, 1, true);
    return parts[0] ?? Buffer.alloc(0);
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

  /** True while the incarnation is held (live or soft-deleted): its objects must stay. */
  holds(stream: StreamState): boolean {
    return this.#byIncarnation.get(stream.incarnation) === stream;
  }

  // ---------------------------------------------------------------------------------------------
  // Checkpoints

  /** A consistent copy of every stream for a WAL checkpoint (taken synchronously). */
  snapshot(): RegistrySnapshot {
    const streams: SnapshotStream[] = [];
    for (const stream of [...this.#byIncarnation.values()].sort((a, b) => a.incarnation - b.incarnation)) {
      const entry: SnapshotStream = {
        path: stream.path,
        inc: stream.incarnation,
        contentType: stream.contentType,
        closed: stream.closed,
        softDeleted: stream.softDeleted,
        producers: [...stream.producerStates()].map(([id, state]) => [id, state.epoch, state.lastSeq]),
        entries: stream.hotTail.entries().map((e) => e.data),
      };
      if (stream.ttlSeconds !== undefined) entry.ttlSeconds = stream.ttlSeconds;
      if (stream.expiresAtMs !== undefined) entry.expiresAtMs = stream.expiresAtMs;
      if (stream.fork !== undefined) entry.fork = { inc: stream.fork.source.incarnation, position: stream.fork.position };
      if (stream.closedBy !== undefined) entry.closedBy = stream.closedBy;
      if (stream.lastStreamSeq !== undefined) entry.lastStreamSeq = stream.lastStreamSeq;
      if (stream.retentionMs !== undefined) entry.retentionMs = stream.retentionMs;
      if (stream.retentionBytes !== undefined) entry.retentionBytes = stream.retentionBytes;
      if (stream.segments.length > 0) entry.segments = stream.segments;
      if (stream.sealedOffset > stream.basePosition) entry.sealedOffset = stream.sealedOffset;
      if (stream.manifestVersion > 0) entry.manifestVersion = stream.manifestVersion;
      if (stream.retainedStart > stream.basePosition) entry.retainedStart = stream.retainedStart;
      streams.push(entry);
    }
    return { nextIncarnation: this.#nextIncarnation, streams };
  }

  /** Loads a checkpoint snapshot into an empty registry (before WAL replay). */
  restore(snapshot: RegistrySnapshot): void {
    this.#nextIncarnation = snapshot.nextIncarnation;
    for (const s of snapshot.streams) {
      const stream = this.#register(s);
      stream.segments = s.segments ?? [];
      stream.manifestVersion = s.manifestVersion ?? 0;
      stream.retainedStart = s.retainedStart ?? stream.basePosition;
      stream.hotTail.dropBefore(s.sealedOffset ?? stream.basePosition);
      for (const data of s.entries) this.#addHot(stream, data);
      stream.closed = s.closed;
      stream.closedBy = s.closedBy;
      stream.lastStreamSeq = s.lastStreamSeq;
      stream.softDeleted = s.softDeleted;
      for (const [id, epoch, lastSeq] of s.producers) stream.setProducer(id, { epoch, lastSeq });
    }
  }
}
