/**
 * The stream registry: every stream incarnation, the one state-transition function used live and
 * at WAL replay, and the protocol's write operations (create, append, close, delete) with their
 * validation (PROTOCOL.md §4–§5). Validation and the state change happen in one synchronous step,
 * so writes to a stream (and per producer) are serialised without locks; acknowledgement waits
 * for the WAL record to be durable.
 */
import type { Clock } from '../clock.ts';
import {
  BadRequestError,
  ConflictError,
  GoneError,
  ProducerSequenceGapError,
  ProtocolError,
  ServiceUnavailableError,
  StaleProducerEpochError,
  StreamClosedError,
  StreamNotFoundError,
} from '../protocol/errors.ts';
import { DEFAULT_CONTENT_TYPE, isJsonContentType, sameMediaType } from '../protocol/content-type.ts';
import { encodeJsonMessages, storedMessagesLength } from '../protocol/json-mode.ts';
import { formatOffset, ZERO_INCARNATION, type OffsetToken } from '../protocol/offset.ts';
import type { ProducerHeaders } from '../protocol/headers.ts';
import type { AppendRecord, CreateRecord, StreamRecord } from './records.ts';
import { StreamState } from './stream-state.ts';

/** Where records go to become durable (the WAL writer, or a test double). */
export interface RecordLog {
  /** Resolves once the record is durable; rejects if it cannot be made durable. */
  append(record: StreamRecord): Promise<void>;
}

export interface CreateRequest {
  path: string;
  contentType: string | undefined;
  ttlSeconds: number | undefined;
  expiresAtMs: number | undefined;
  closed: boolean;
  body: Buffer;
  fork?: { sourcePath: string; offset: OffsetToken | undefined; subOffset: number | undefined };
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
}

export class StreamRegistry {
  readonly #log: RecordLog;
  readonly #clock: Clock;
  readonly #byPath = new Map<string, StreamState>();
  readonly #byIncarnation = new Map<number, StreamState>();
  #nextIncarnation = 1;
  /** Called when a commit fails in the background (expiry deletes); for logging. */
  onBackgroundError: (error: unknown) => void = () => {};

  constructor(log: RecordLog, clock: Clock) {
    this.#log = log;
    this.#clock = clock;
  }

  /** Number of live (not soft-deleted) streams. */
  get streamCount(): number {
    return this.#byPath.size;
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
        if (record.data !== undefined) stream.hotTail.append(record.data);
        stream.closed = record.closed;
        this.#nextIncarnation = Math.max(this.#nextIncarnation, record.inc + 1);
        return stream;
      }
      case 'append': {
        const stream = this.#byIncarnation.get(record.inc);
        if (stream === undefined) throw new Error(`append record names missing incarnation ${record.inc}`);
        if (record.data !== undefined) stream.hotTail.append(record.data);
        if (record.producer !== undefined) {
          const [id, epoch, seq] = record.producer;
          stream.producers.set(id, { epoch, lastSeq: seq });
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
    }
  }

  /** Creates the state of a new incarnation (from a create record or a checkpoint) and indexes it. */
  #register(meta: Pick<CreateRecord, 'path' | 'inc' | 'contentType' | 'ttlSeconds' | 'expiresAtMs' | 'fork'>): StreamState {
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
    }
  }

  #remove(stream: StreamState): void {
    if (this.#byPath.get(stream.path) === stream) this.#byPath.delete(stream.path);
    this.#byIncarnation.delete(stream.incarnation);
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
    const stream = this.apply(record);
    // apply() is synchronous, so the tail and closure right now are exactly this record's effect.
    const end = stream?.tailOffset ?? 0;
    const closed = stream?.closed ?? false;
    const durable = this.#log.append(record).then(
      () => {
        if (stream === undefined) return;
        if (record.t !== 'delete') {
          stream.createDurable = true;
          stream.durableOffset = Math.max(stream.durableOffset, end);
          stream.durableClosed ||= closed;
        }
        stream.notify();
      },
      (error: unknown) => {
        throw error instanceof ProtocolError
          ? error
          : new ServiceUnavailableError(`write-ahead log unavailable: ${(error as Error).message}`);
      },
    );
    if (stream !== undefined && record.t !== 'delete') stream.lastCommit = durable;
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
    if (token.incarnation === ZERO_INCARNATION && token.position === 0) return 0;
    let limit = stream.durableOffset;
    for (const at of this.lineage(stream)) {
      if (token.incarnation === at.incarnation) {
        if (token.position > limit) throw new BadRequestError('offset is beyond the tail of the stream');
        return token.position;
      }
      if (at.fork !== undefined) limit = Math.min(limit, at.fork.position);
    }
    if (token.incarnation < stream.incarnation) {
      throw new GoneError('offset belongs to an earlier incarnation of this stream');
    }
    throw new BadRequestError('offset does not belong to this stream');
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
      if (!this.#sameConfig(existing, request)) {
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
      const position = this.#forkPosition(source, request.fork.offset, request.fork.subOffset ?? 0);
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
    await this.#commit(record);
    const stream = this.#byIncarnation.get(record.inc);
    if (stream === undefined) throw new StreamNotFoundError(request.path);
    return { created: true, stream };
  }

  #sameConfig(stream: StreamState, request: CreateRequest): boolean {
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
          position = this.#forkPosition(stream.fork.source, request.fork.offset, request.fork.subOffset ?? 0);
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
  #forkPosition(source: StreamState, offset: OffsetToken | undefined, subOffset: number): number {
    const anchor = offset === undefined ? source.durableOffset : this.resolvePosition(source, offset);
    if (subOffset === 0) return anchor;
    // The sub-offset may not run past the next data boundary: the end of the append entry at the anchor.
    const entry = this.#entryRest(source, anchor);
    const length = source.isJson ? storedMessagesLength(entry, subOffset) : subOffset <= entry.length ? subOffset : undefined;
    if (length === undefined) throw new BadRequestError('Stream-Fork-Sub-Offset is past the next data boundary');
    return anchor + length;
  }

  /**
   * Appends to a stream, optionally closing it (PROTOCOL.md §5.2, §5.2.1, §5.3).
   * @throws StreamNotFoundError, GoneError, BadRequestError, StreamClosedError, ConflictError,
   *   StaleProducerEpochError, ProducerSequenceGapError, ServiceUnavailableError.
   */
  async append(request: AppendRequest): Promise<AppendOutcome> {
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
      const state = stream.producers.get(producerId);
      if (state !== undefined && epoch < state.epoch) throw new StaleProducerEpochError(state.epoch);
      if (state === undefined || epoch > state.epoch) {
        if (seq !== 0) {
          if (state === undefined) throw new ProducerSequenceGapError(0, seq);
          throw new BadRequestError('a new producer epoch must start at Producer-Seq 0');
        }
      } else if (seq <= state.lastSeq) {
        await stream.lastCommit;
        return { stream, kind: 'duplicate', position: stream.tailOffset, producer: { epoch, seq: state.lastSeq } };
      } else if (seq !== state.lastSeq + 1) {
        throw new ProducerSequenceGapError(state.lastSeq + 1, seq);
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
   * Deletes a stream; soft-deletes it while forks reference it (PROTOCOL.md §5.4).
   * @throws StreamNotFoundError, GoneError, ServiceUnavailableError.
   */
  async delete(path: string): Promise<void> {
    const stream = this.get(path, { touch: false });
    await this.#commit({ t: 'delete', inc: stream.incarnation });
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /**
   * Reads durable bytes of `stream` from `from`, at most `maxBytes` (whole append entries in JSON
   * mode, at least one), stitching fork sources (§4.2).
   * @returns the parts (views into the hot tails) and the position after them.
   */
  read(stream: StreamState, from: number, maxBytes: number): { parts: Buffer[]; end: number } {
    return this.#readParts(stream, from, stream.durableOffset, maxBytes, stream.isJson);
  }

  #readParts(stream: StreamState, from: number, to: number, maxBytes: number, wholeEntries: boolean): { parts: Buffer[]; end: number } {
    const base = stream.basePosition;
    if (stream.fork === undefined || from >= base) return stream.hotTail.read(from, to, maxBytes, wholeEntries);
    const inherited = this.#readParts(stream.fork.source, from, Math.min(to, base), maxBytes, wholeEntries);
    const budget = maxBytes - (inherited.end - from);
    if (inherited.end < base || budget <= 0 || to <= base) return inherited;
    const own = stream.hotTail.read(base, to, budget, wholeEntries);
    return { parts: [...inherited.parts, ...own.parts], end: own.end };
  }

  /** The rest of the append entry holding `position` in the stream's lineage (a data boundary, §4.2). */
  #entryRest(stream: StreamState, position: number): Buffer {
    let owner = stream;
    while (owner.fork !== undefined && position < owner.basePosition) owner = owner.fork.source;
    const { parts } = owner.hotTail.read(position, owner.tailOffset, 1, true);
    return parts[0] ?? Buffer.alloc(0);
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
        producers: [...stream.producers].map(([id, state]) => [id, state.epoch, state.lastSeq]),
        entries: stream.hotTail.entries().map((e) => e.data),
      };
      if (stream.ttlSeconds !== undefined) entry.ttlSeconds = stream.ttlSeconds;
      if (stream.expiresAtMs !== undefined) entry.expiresAtMs = stream.expiresAtMs;
      if (stream.fork !== undefined) entry.fork = { inc: stream.fork.source.incarnation, position: stream.fork.position };
      if (stream.closedBy !== undefined) entry.closedBy = stream.closedBy;
      if (stream.lastStreamSeq !== undefined) entry.lastStreamSeq = stream.lastStreamSeq;
      streams.push(entry);
    }
    return { nextIncarnation: this.#nextIncarnation, streams };
  }

  /** Loads a checkpoint snapshot into an empty registry (before WAL replay). */
  restore(snapshot: RegistrySnapshot): void {
    this.#nextIncarnation = snapshot.nextIncarnation;
    for (const s of snapshot.streams) {
      const stream = this.#register(s);
      for (const data of s.entries) stream.hotTail.append(data);
      stream.closed = s.closed;
      stream.closedBy = s.closedBy;
      stream.lastStreamSeq = s.lastStreamSeq;
      stream.softDeleted = s.softDeleted;
      for (const [id, epoch, lastSeq] of s.producers) stream.producers.set(id, { epoch, lastSeq });
    }
  }
}
