/**
 * The sealer (DESIGN.md "The shape in one paragraph", issue 3 §2): moves durable hot-tail bytes
 * into immutable segments. One seal of a stream, in this order:
 *
 *   upload segment (create-if-absent) → store manifest version n+1 (create-if-absent)
 *   → commit a seal record (sealed offset advances, reads of those bytes go to the segment,
 *     hot-tail memory is freed) → the next WAL checkpoint no longer carries the bytes.
 *
 * A crash anywhere leaves the WAL holding the bytes; after restart (or a failed attempt, whose
 * put may have landed with its answer lost) the next seal of the stream probes its prefix, adopts a stored manifest the WAL did not learn about, and deletes segment
 * objects no manifest lists (never served: reads route only through the manifest's segments).
 * A create-if-absent put refused with other content means a second writer: the stream is fenced
 * and never sealed again by this process (DESIGN.md invariants). Retention trims run in the same
 * per-stream slot, so manifest versions are written one at a time.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import {
  HOT_TAIL_PRESSURE_FRACTION,
  SEAL_CHECK_INTERVAL_MS,
  SEAL_TASKS_MAX,
  SEAL_RETRY_BACKOFF_BASE_MS,
  SEAL_RETRY_BACKOFF_MS_MAX,
} from '../config/limits.ts';
import { decodeManifest, encodeManifest, sameManifest, type Manifest, type SegmentRef } from '../manifest/manifest.ts';
import { parseStreamObjectKey } from '../manifest/object-keys.ts';
import { listAll, ObjectAlreadyExistsError, type ObjectInfo, type ObjectStore } from '../object-store/index.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import type { ObjectCollector } from './object-collector.ts';
import type { ObjectNaming } from './object-naming.ts';
import { retainedStartAfter, type RetentionLimits } from './retention.ts';
import { chooseCut, pressureVictims, sealReason, type SealPolicy } from './seal-policy.ts';

/** How often (in sealer ticks) retention is evaluated: about once a second. */
const RETENTION_CHECK_EVERY_TICKS = Math.max(1, Math.round(1_000 / SEAL_CHECK_INTERVAL_MS));

export interface SealerOptions {
  registry: StreamRegistry;
  store: ObjectStore;
  naming: ObjectNaming;
  collector: ObjectCollector;
  clock: Clock;
  logger: Logger;
  policy: SealPolicy;
  /** Read-unit size inside segments (`--chunk-bytes-max`). */
  maxChunkBytes: number;
  hotTailBudgetBytes: number;
  /** Server-wide retention; a stream's own `Cairn-Retention-*` values override it. */
  retention: RetentionLimits;
  /** Segment uploads in flight at once. */
  uploadsMax: number;
}

export interface SealerStats {
  /** Segments this process stored and published. */
  segmentsWritten: number;
  sealedBytes: number;
  /** Segments published by an earlier process whose seal records were lost in a crash. */
  segmentsAdopted: number;
  /** Uploaded segment objects no manifest listed, deleted by the restart probe. */
  orphansDeleted: number;
  /** Seal or trim attempts that failed (and will be retried). */
  failures: number;
  trims: number;
}

/** A create-if-absent put was refused and the stored object differs: another writer exists. */
export class SealFencedError extends Error {
  constructor(key: string, reason: string) {
    super(`object ${key} ${reason}: another writer is using this stream's keys; sealing of the stream stops`);
    this.name = 'SealFencedError';
  }
}

export class Sealer {
  readonly #o: SealerOptions;
  readonly #running = new Map<StreamState, Promise<void>>();
  /** Seals and trims due but waiting for one of `SEAL_TASKS_MAX` task slots, in arrival order. */
  readonly #ready = new Map<StreamState, () => Promise<void>>();
  readonly #retry = new Map<StreamState, { atMs: number; delayMs: number }>();
  readonly #fenced = new Set<StreamState>();
  /** Streams that may hold sealable bytes. */
  readonly #candidates = new Set<StreamState>();
  /**
   * Candidates by last append, oldest first (re-inserted on every append), and by when their hot
   * tail started, oldest first: a check walks each from the front and stops at the first stream
   * not yet due, so its cost does not grow with the number of quiet streams.
   */
  readonly #byLastAppend = new Set<StreamState>();
  readonly #byUnsealedSince = new Set<StreamState>();
  readonly #slotWaiters: (() => void)[] = [];
  #uploads = 0;
  #ticks = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly stats: SealerStats = { segmentsWritten: 0, sealedBytes: 0, segmentsAdopted: 0, orphansDeleted: 0, failures: 0, trims: 0 };

  constructor(options: SealerOptions) {
    this.#o = options;
  }

  /** Starts the periodic checks (after recovery: every stream with a hot tail is a candidate). */
  start(): void {
    for (const stream of this.#o.registry.allStreams()) if (stream.hotTail.sizeBytes > 0) this.#track(stream);
    this.#timer = setInterval(() => this.#tick(), SEAL_CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  /** New durable bytes or closure of `stream` (registry listener): seal at once if the policy says so. */
  durable(stream: StreamState): void {
    this.#byLastAppend.delete(stream); // re-inserted at the end: the newest append
    this.#track(stream);
    this.#consider(stream, this.#o.clock.nowMs());
  }

  /** `stream` is gone (registry listener): forget it (a running seal finds it gone and cleans up). */
  removed(stream: StreamState): void {
    this.#untrack(stream);
    this.#ready.delete(stream);
    this.#retry.delete(stream);
    this.#fenced.delete(stream);
  }

  /** Resolves when no seal or trim of `incarnation` is running. */
  async idle(incarnation: number): Promise<void> {
    for (const [stream, running] of this.#running) if (stream.incarnation === incarnation) await running;
  }

  /** Stops starting work and waits for running seals (queued ones are dropped: the WAL keeps their bytes). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#ready.clear();
    await Promise.allSettled(this.#running.values());
  }

  #track(stream: StreamState): void {
    this.#candidates.add(stream);
    this.#byLastAppend.add(stream);
    this.#byUnsealedSince.add(stream);
  }

  #untrack(stream: StreamState): void {
    this.#candidates.delete(stream);
    this.#byLastAppend.delete(stream);
    this.#byUnsealedSince.delete(stream);
  }

  #tick(): void {
    const now = this.#o.clock.nowMs();
    const { sealIdleMs, sealMaxAgeMs } = this.#o.policy;
    for (const stream of this.#byLastAppend) {
      if (now - stream.lastAppendMs < sealIdleMs) break;
      this.#byLastAppend.delete(stream); // back with its next append, or when its seal ends
      this.#consider(stream, now);
    }
    for (const stream of this.#byUnsealedSince) {
      if (now - stream.unsealedSinceMs < sealMaxAgeMs) break;
      this.#byUnsealedSince.delete(stream);
      this.#consider(stream, now);
    }
    for (const [stream, retry] of this.#retry) if (now >= retry.atMs) this.#consider(stream, now);
    this.#relievePressure(now);
    if (++this.#ticks % RETENTION_CHECK_EVERY_TICKS === 0) this.#applyRetention(now);
  }

  /** Above 3/4 of the hot-tail budget, seal the largest hot tails first (DESIGN.md backpressure). */
  #relievePressure(now: number): void {
    const targetBytes = this.#o.hotTailBudgetBytes * HOT_TAIL_PRESSURE_FRACTION;
    let totalBytes = this.#o.registry.hotTailBytes;
    if (totalBytes <= targetBytes) return;
    const idle: [StreamState, number][] = [];
    for (const stream of this.#candidates) {
      const sealable = stream.durableOffset - stream.sealedOffset;
      if (this.#running.has(stream) || this.#ready.has(stream)) totalBytes -= sealable;
      else if (this.#mayStart(stream, now)) idle.push([stream, sealable]);
    }
    for (const stream of pressureVictims(idle, totalBytes, targetBytes)) this.#launch(stream, () => this.#seal(stream));
  }

  #applyRetention(now: number): void {
    const defaults = this.#o.retention;
    for (const stream of this.#o.registry.allStreams()) {
      if (stream.segments.length === 0) continue;
      const limits: RetentionLimits = {
        retentionMs: stream.retentionMs ?? defaults.retentionMs,
        retentionBytes: stream.retentionBytes ?? defaults.retentionBytes,
      };
      if (limits.retentionMs === undefined && limits.retentionBytes === undefined) continue;
      const retainedStart = retainedStartAfter(stream.segments, stream.retainedStart, stream.durableOffset, limits, now);
      if (retainedStart > stream.retainedStart && this.#mayStart(stream, now)) {
        this.#launch(stream, () => this.#trim(stream, retainedStart));
      }
    }
  }

  #mayStart(stream: StreamState, now: number): boolean {
    if (this.#closed || this.#running.has(stream) || this.#ready.has(stream) || this.#fenced.has(stream)) return false;
    const retry = this.#retry.get(stream);
    return retry === undefined || now >= retry.atMs;
  }

  #consider(stream: StreamState, now: number): void {
    if (!this.#mayStart(stream, now)) return;
    const reason = sealReason(
      {
        sealableBytes: stream.durableOffset - stream.sealedOffset,
        idleMs: now - stream.lastAppendMs,
        unsealedAgeMs: now - stream.unsealedSinceMs,
        closed: stream.durableClosed,
      },
      this.#o.policy,
    );
    if (reason !== undefined) this.#launch(stream, () => this.#seal(stream));
  }

  /** Queues a seal or trim of `stream`; at most SEAL_TASKS_MAX run at once, the rest wait in order. */
  #launch(stream: StreamState, work: () => Promise<void>): void {
    this.#ready.set(stream, work);
    this.#startReady();
  }

  #startReady(): void {
    for (const [stream, work] of this.#ready) {
      if (this.#closed || this.#running.size >= SEAL_TASKS_MAX) return;
      this.#ready.delete(stream);
      this.#run(stream, work);
    }
  }

  #run(stream: StreamState, work: () => Promise<void>): void {
    const run = (async () => {
      try {
        await work();
        this.#retry.delete(stream);
      } catch (error) {
        this.stats.failures++;
        if (error instanceof SealFencedError) {
          this.#fenced.add(stream);
          this.#o.logger.error({ err: error, stream: stream.path }, 'stream fenced: sealing stopped');
          return;
        }
        // A put may have landed although its answer was lost: look before writing again.
        stream.needsProbe = true;
        const delayMs = Math.min(SEAL_RETRY_BACKOFF_MS_MAX, (this.#retry.get(stream)?.delayMs ?? SEAL_RETRY_BACKOFF_BASE_MS / 2) * 2);
        this.#retry.set(stream, { atMs: this.#o.clock.nowMs() + delayMs, delayMs });
        this.#o.logger.warn({ err: error, stream: stream.path, retryInMs: delayMs }, 'seal failed; will retry');
      }
    })().finally(() => {
      this.#running.delete(stream);
      if (!this.#o.registry.holds(stream) || stream.hotTail.sizeBytes === 0) {
        this.#untrack(stream);
      } else {
        // More may have become sealable meanwhile (a fast writer, a second segment's worth).
        this.#track(stream);
        this.#consider(stream, this.#o.clock.nowMs());
      }
      this.#startReady();
    });
    this.#running.set(stream, run);
  }

  /** One seal of `stream` (see the module doc). */
  async #seal(stream: StreamState): Promise<void> {
    const { registry, naming, store, policy } = this.#o;
    if (stream.needsProbe) await this.#probe(stream);
    // A backlog of whole segments (a fast writer, or a store that was away) goes up in parallel
    // under one manifest version, so sealing keeps pace with ingest even at S3 latencies.
    const segments: SegmentRef[] = [];
    const sealedAtMs = this.#o.clock.nowMs();
    for (let at = stream.sealedOffset; segments.length < this.#o.uploadsMax; ) {
      if (segments.length > 0 && stream.durableOffset - at < policy.segmentSizeBytes) break;
      const cut = chooseCut(stream.hotTail.entries(), at, stream.durableOffset, policy.segmentSizeBytes, this.#o.maxChunkBytes, stream.isJson);
      if (cut === undefined) break;
      segments.push({ start: at, end: cut.end, unitEnds: cut.unitEnds, sealedAtMs });
      at = cut.end;
    }
    if (segments.length === 0) return;
    const segmentKeys = segments.map((segment) => naming.segment(stream, segment));
    await Promise.all(
      segments.map((segment, i) => {
        const { parts } = stream.hotTail.read(segment.start, segment.end, Number.MAX_SAFE_INTEGER, false);
        return this.#withUploadSlot(() => this.#putOnce(segmentKeys[i], parts.length === 1 ? parts[0] : Buffer.concat(parts)));
      }),
    );

    const { version, manifestKey } = await this.#storeNextManifest(stream, [...stream.segments, ...segments], stream.retainedStart);
    if (!registry.holds(stream)) {
      // Deleted while uploading: nothing will reference these objects.
      await store.deleteMany([...segmentKeys, manifestKey]);
      return;
    }
    // Applied in call order at once (counted now, as readers already see them); resolved when
    // the records are in the WAL.
    const committed = Promise.all(segments.map((segment) => registry.commitSeal(stream, segment, version)));
    this.stats.segmentsWritten += segments.length;
    for (const segment of segments) this.stats.sealedBytes += segment.end - segment.start;
    await committed;
    if (version > 1) this.#o.collector.deleteKeys([naming.manifest(stream, version - 1)]);
  }

  /** A retention trim: manifest n+1 without the dropped head segments, then the trim record. */
  async #trim(stream: StreamState, retainedStart: number): Promise<void> {
    const { registry, naming } = this.#o;
    if (stream.needsProbe) await this.#probe(stream);
    if (retainedStart <= stream.retainedStart) return;
    const { version } = await this.#storeNextManifest(stream, stream.segments.filter((s) => s.end > retainedStart), retainedStart);
    if (!registry.holds(stream)) return;
    await registry.commitTrim(stream, retainedStart, version); // its segments go to the collector
    this.#o.collector.deleteKeys([naming.manifest(stream, version - 1)]);
    this.stats.trims++;
  }

  /** Stores manifest version n+1 of `stream` listing `segments` (create-if-absent, see `#putOnce`). */
  async #storeNextManifest(stream: StreamState, segments: SegmentRef[], retainedStart: number): Promise<{ version: number; manifestKey: string }> {
    const version = stream.manifestVersion + 1;
    const manifestKey = this.#o.naming.manifest(stream, version);
    const manifest: Manifest = {
      format: 1,
      path: stream.path,
      incarnation: stream.incarnation,
      nodeId: this.#o.naming.nodeId,
      contentType: stream.contentType,
      version,
      retainedStart,
      segments,
    };
    if (stream.fork !== undefined) manifest.fork = { incarnation: stream.fork.source.incarnation, position: stream.fork.position };
    await this.#putOnce(manifestKey, encodeManifest(manifest), (stored) => sameManifest(decodeManifest(manifestKey, stored), manifest));
    return { version, manifestKey };
  }

  /**
   * Create-if-absent put. A refusal is accepted only when the stored object is exactly what we
   * meant to write (our own earlier attempt whose answer was lost); otherwise the stream is fenced.
   */
  async #putOnce(key: string, body: Uint8Array, same: (stored: Uint8Array) => boolean = (stored) => Buffer.from(stored).equals(body)): Promise<void> {
    try {
      await this.#o.store.put(key, body);
    } catch (error) {
      if (!(error instanceof ObjectAlreadyExistsError)) throw error;
      const stored = await this.#o.store.get(key);
      if (!same(stored.body)) throw new SealFencedError(key, 'already exists with other content');
    }
  }

  async #withUploadSlot<T>(work: () => Promise<T>): Promise<T> {
    while (this.#uploads >= this.#o.uploadsMax) await new Promise<void>((resolve) => this.#slotWaiters.push(resolve));
    this.#uploads++;
    try {
      return await work();
    } finally {
      this.#uploads--;
      this.#slotWaiters.shift()?.();
    }
  }

  /**
   * First seal after a restart: reconcile the stream's objects with what the WAL knows. A newer
   * stored manifest is adopted (its seal records were lost in a crash); segment objects above the
   * sealed offset that no manifest lists are orphans of an interrupted seal and are deleted before
   * anything is uploaded again.
   */
  async #probe(stream: StreamState): Promise<void> {
    const { store, naming, registry, logger } = this.#o;
    const prefix = naming.prefix(stream);
    const objects: ObjectInfo[] = [];
    for await (const object of listAll(store, prefix)) objects.push(object);
    const manifests: { key: string; version: number }[] = [];
    for (const object of objects) {
      const parsed = parseStreamObjectKey(prefix, object.key);
      if (parsed?.kind === 'manifest') manifests.push({ key: object.key, version: parsed.version });
    }
    const newer = manifests.filter((m) => m.version > stream.manifestVersion);
    const newest = newer.reduce<(typeof newer)[number] | undefined>((a, b) => (a === undefined || b.version > a.version ? b : a), undefined);
    if (newest !== undefined) {
      const manifest = decodeManifest(newest.key, (await store.get(newest.key)).body);
      if (manifest.incarnation !== stream.incarnation || manifest.nodeId !== naming.nodeId) {
        throw new SealFencedError(newest.key, 'belongs to another incarnation or node');
      }
      const adoptable = manifest.segments.filter((segment) => segment.start >= stream.sealedOffset);
      const fits =
        adoptable.length === 0 ||
        (adoptable[0].start === stream.sealedOffset && adoptable[adoptable.length - 1].end <= stream.durableOffset);
      if (fits) {
        for (const segment of adoptable) await registry.commitSeal(stream, segment, manifest.version);
        await registry.commitTrim(stream, manifest.retainedStart, manifest.version);
        this.stats.segmentsAdopted += adoptable.length;
        if (adoptable.length > 0) logger.info({ stream: stream.path, segments: adoptable.length }, 'adopted segments sealed before a crash');
      } else {
        // The store holds bytes the WAL never made durable (only possible with --durability memory).
        logger.warn({ stream: stream.path, manifest: newest.key }, 'stored manifest is ahead of the WAL; discarding it');
        await store.deleteMany(newer.map((m) => m.key));
      }
    }
    // Every other version is superseded: its deletion may have been queued only in memory when a
    // crash came (the collector's queue is kept in checkpoints, not per seal).
    this.#o.collector.deleteKeys(manifests.filter((m) => m.version < stream.manifestVersion).map((m) => m.key));
    const orphans = objects
      .map((object) => ({ key: object.key, parsed: parseStreamObjectKey(prefix, object.key) }))
      .filter(({ parsed }) => parsed?.kind === 'segment' && parsed.end > stream.sealedOffset)
      .map(({ key }) => key);
    if (orphans.length > 0) {
      await store.deleteMany(orphans);
      this.stats.orphansDeleted += orphans.length;
      logger.info({ stream: stream.path, objects: orphans.length }, 'deleted segment objects of an interrupted seal');
    }
    stream.needsProbe = false;
  }
}
