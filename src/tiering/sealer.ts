/**
 * The sealer (DESIGN.md "The shape in one paragraph", issue 3 §2): moves durable hot-tail bytes
 * into immutable segments. One seal of a stream, in this order:
 *
 *   upload segment (create-if-absent) → store manifest version n+1 (create-if-absent)
 *   → commit a seal record (sealed offset advances, reads of those bytes go to the segment,
 *     hot-tail memory is freed) → the next WAL checkpoint no longer carries the bytes.
 *
 * A crash anywhere leaves the WAL holding the bytes; after restart (or a failed attempt, whose
 * put may have landed with its answer lost) the next seal of the stream first reconciles its
 * objects (the manifest store adopts a stored manifest the WAL did not learn about and deletes
 * segment objects no manifest lists). The writes themselves, the fence and the adoption live in
 * the manifest store (src/manifest/manifest-store.ts); this module decides which stream to seal
 * or trim when. A `StreamFencedError` means a second writer: the stream is never sealed again by
 * this process (DESIGN.md invariants). Retention trims run in the same per-stream slot, so
 * manifest versions are written one at a time.
 *
 * (Just over 400 lines: scheduling, seal, trim and the restart probe share the per-stream
 * retry and upload-slot state; the fence and adoption themselves live in src/manifest.)
 */
import type { Logger } from 'pino';
import type { Clock, Timer } from '../clock.ts';
import {
  HOT_TAIL_PRESSURE_FRACTION,
  SEAL_CHECK_INTERVAL_MS,
  SEAL_TASKS_MAX,
  SEAL_RETRY_BACKOFF_BASE_MS,
  SEAL_RETRY_BACKOFF_MS_MAX,
} from '../config/limits.ts';
import type { SegmentRef, StoredStreamMeta } from '../manifest/manifest.ts';
import { lineage } from '../stream/lineage.ts';
import { pendingUpdatesUpTo, storedMetaOf, unitChecksums } from './stored-meta.ts';
import { StreamFencedError, type ManifestStore } from '../manifest/manifest-store.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import type { ObjectCollector } from './object-collector.ts';
import { retainedStartAfter, type RetentionLimits } from './retention.ts';
import type { SealActivity } from './seal-activity.ts';
import { chooseCut, forkSourceStored, pressureVictims, sealReason, type SealPolicy } from './seal-policy.ts';

/** How often (in sealer ticks) retention is evaluated: about once a second. */
const RETENTION_CHECK_EVERY_TICKS = Math.max(1, Math.round(1_000 / SEAL_CHECK_INTERVAL_MS));

export interface SealerOptions {
  registry: StreamRegistry;
  /** Where segments and manifest versions are stored (the fence, restart adoption). */
  manifests: ManifestStore;
  collector: ObjectCollector;
  /** Where running seals are recorded for the object collector. */
  seals: SealActivity;
  clock: Clock;
  logger: Logger;
  policy: SealPolicy;
  /** Read-unit size inside segments (`--chunk-bytes-max`). */
  chunkBytesMax: number;
  hotTailBudgetBytes: number;
  /** Server-wide retention; a stream's own `Cairn-Retention-*` values override it. */
  retention: RetentionLimits;
  /** Segment uploads in flight at once. */
  uploadsMax: number;
  /**
   * A stream whose stored metadata is behind gets a manifest version within this long
   * (`--metadata-flush-ms`); absent: metadata travels only with seals and trims.
   */
  metadataFlushMs?: number;
  /**
   * Cluster mode: asked before segments and manifest versions of `stream` are stored; returns the
   * slot epoch they carry, throws when this node may not write them now (it lost the slot, or its
   * lease is at risk), so a paused node's late seal stores nothing (docs/cluster.md).
   */
  storeFence?: (stream: StreamState) => number;
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
  /** Manifest versions written for metadata alone (create, close at a sealed tail, soft delete). */
  metadataWrites: number;
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
  #timer: Timer | undefined;
  #closed = false;
  readonly stats: SealerStats = { segmentsWritten: 0, sealedBytes: 0, segmentsAdopted: 0, orphansDeleted: 0, failures: 0, trims: 0, metadataWrites: 0 };

  constructor(options: SealerOptions) {
    this.#o = options;
  }

  /** Starts the periodic checks (after recovery: every stream with a hot tail is a candidate). */
  start(): void {
    for (const stream of this.#o.registry.allStreams()) if (stream.hotTail.sizeBytes > 0) this.#track(stream);
    this.#timer = this.#o.clock.setInterval(() => this.#tick(), SEAL_CHECK_INTERVAL_MS).unref();
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

  /**
   * Cluster mode, a slot handing over (docs/cluster.md "Moves"): seals every durable byte of each
   * stream and stores its metadata now, sources before forks. Writes to them are already refused.
   * @throws the first seal or manifest write that fails (the hand-over is retried later).
   */
  async sealNow(streams: readonly StreamState[]): Promise<void> {
    const depth = (stream: StreamState) => lineage(stream).length;
    for (const stream of [...streams].sort((a, b) => depth(a) - depth(b))) {
      for (;;) {
        const running = this.#running.get(stream);
        if (running !== undefined) {
          await running;
          continue;
        }
        if (!this.#o.registry.holds(stream)) break;
        this.#ready.delete(stream);
        const before = { sealed: stream.sealedOffset, version: stream.manifestVersion };
        if (stream.durableOffset > stream.sealedOffset) await this.#exclusive(stream, () => this.#seal(stream));
        else if (stream.metaDirty) await this.#exclusive(stream, () => this.#writeMetadata(stream));
        else break;
        if (stream.sealedOffset === before.sealed && stream.manifestVersion === before.version && this.#o.registry.holds(stream)) {
          throw new Error(`stream ${stream.path}: sealing made no progress (its fork source is not stored?)`);
        }
      }
    }
  }

  /** Runs `work` on `stream` as the only seal work on it, visible to `close()`; rejects with its error. */
  async #exclusive(stream: StreamState, work: () => Promise<void>): Promise<void> {
    const run = work();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#running.set(stream, settled);
    this.#o.seals.track(stream.incarnation, settled);
    try {
      await run;
    } finally {
      this.#running.delete(stream);
    }
  }

  /** Stops starting work and waits for running seals (queued ones are dropped: the WAL keeps their bytes). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#ready.clear();
    await Promise.allSettled(this.#running.values());
  }

  /**
   * Seal lag: milliseconds since the oldest unsealed byte of any stream became durable (0 when
   * every hot tail is empty). What a lost disk would lose in time (README "Losing the disk").
   * Walks the streams holding unsealed bytes: one pass per metrics scrape.
   */
  sealLagMs(): number {
    const now = this.#o.clock.nowMs();
    let oldestMs = now;
    for (const stream of this.#candidates) {
      if (stream.hotTail.sizeBytes > 0 && stream.unsealedSinceMs < oldestMs) oldestMs = stream.unsealedSinceMs;
    }
    return Math.max(0, now - oldestMs);
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
    const { sealIdleMs, unsealedAgeMsMax } = this.#o.policy;
    for (const stream of this.#byLastAppend) {
      if (now - stream.lastAppendMs < sealIdleMs) break;
      this.#byLastAppend.delete(stream); // back with its next append, or when its seal ends
      this.#consider(stream, now);
    }
    for (const stream of this.#byUnsealedSince) {
      if (now - stream.unsealedSinceMs < unsealedAgeMsMax) break;
      this.#byUnsealedSince.delete(stream);
      this.#consider(stream, now);
    }
    for (const [stream, retry] of this.#retry) if (now >= retry.atMs) this.#consider(stream, now);
    this.#flushMetadata(now);
    this.#relievePressure(now);
    if (++this.#ticks % RETENTION_CHECK_EVERY_TICKS === 0) this.#applyRetention(now);
  }

  /**
   * Streams whose stored metadata is behind for `metadataFlushMs` get a manifest version of their
   * own, unless a seal (which carries the metadata too) is running or due.
   */
  #flushMetadata(now: number): void {
    const flushMs = this.#o.metadataFlushMs;
    if (flushMs === undefined) return;
    for (const stream of this.#o.registry.metaDirtyStreams()) {
      if (now - stream.metaDirtySinceMs < flushMs) break;
      if (!stream.createDurable || !this.#mayStart(stream, now) || !forkSourceStored(stream)) continue;
      this.#launch(stream, () => this.#writeMetadata(stream));
    }
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
    if (reason === undefined) return;
    if (!forkSourceStored(stream)) {
      // Looked at again once the source's seals have caught up (the retry pass of each tick).
      this.#retry.set(stream, { atMs: now + SEAL_CHECK_INTERVAL_MS, delayMs: SEAL_RETRY_BACKOFF_BASE_MS / 2 });
      return;
    }
    this.#launch(stream, () => this.#seal(stream));
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
        if (error instanceof StreamFencedError) {
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
    this.#o.seals.track(stream.incarnation, run);
  }

  /** One seal of `stream` (see the module doc). */
  async #seal(stream: StreamState): Promise<void> {
    const { registry, manifests, policy } = this.#o;
    // Unloaded (its slot moved) while queued: what it holds is stale, and must not reach the store.
    if (!registry.holds(stream)) return;
    if (!forkSourceStored(stream)) return; // a pressure seal of a fork whose source is behind: later
    if (stream.needsProbe) await this.#probe(stream);
    // A backlog of whole segments (a fast writer, or a store that was away) goes up in parallel
    // under one manifest version, so sealing keeps pace with ingest even at S3 latencies.
    const segments: SegmentRef[] = [];
    const sealedAtMs = this.#o.clock.nowMs();
    for (let at = stream.sealedOffset; segments.length < this.#o.uploadsMax; ) {
      if (segments.length > 0 && stream.durableOffset - at < policy.segmentSizeBytes) break;
      const cut = chooseCut(stream.hotTail.entries(), at, stream.durableOffset, policy.segmentSizeBytes, this.#o.chunkBytesMax, stream.isJson);
      if (cut === undefined) break;
      segments.push({ start: at, end: cut.end, unitEnds: cut.unitEnds, sealedAtMs, unitSha256: unitChecksums(stream, at, cut.unitEnds) });
      at = cut.end;
    }
    if (segments.length === 0) return;
    this.#o.storeFence?.(stream); // a node that lost the slot uploads nothing
    const segmentKeys = await Promise.all(
      segments.map((segment) => this.#withUploadSlot(() => manifests.putSegment(stream, segment, hotBytes(stream, segment.start, segment.end)))),
    );

    const newSealedOffset = segments[segments.length - 1].end;
    let updatesStored = 0;
    const { version, key: manifestKey } = await this.#storeWithMeta(stream, () => {
      updatesStored = pendingUpdatesUpTo(stream, newSealedOffset);
      return manifests.storeNext(stream, segments, stream.retainedStart, this.#meta(stream, newSealedOffset));
    });
    if (!registry.holds(stream)) {
      // Unloaded while uploading (its slot moved): stored under the fence, the new owner may
      // already read this version; keep it.
      if (stream.movedAway) return;
      // Deleted while uploading: nothing will reference these objects. The manifest goes first,
      // so a crash in between never leaves it listing a deleted segment.
      await manifests.deleteObjects([manifestKey]);
      await manifests.deleteObjects(segmentKeys);
      return;
    }
    // Applied in call order at once (counted now, as readers already see them); resolved when
    // the records are in the WAL.
    const updatesNow = pendingUpdatesUpTo(stream, newSealedOffset);
    const committed = Promise.all(segments.map((segment) => registry.commitSeal(stream, segment, version)));
    // A closure, producer or Stream-Seq change up to the new sealed offset that came after the
    // manifest's metadata was taken (a close at the tail while the manifest was being stored) is
    // now part of the sealed view but not of the stored manifest: store it with the next flush.
    if (updatesNow > updatesStored) registry.markMetaDirty(stream);
    this.stats.segmentsWritten += segments.length;
    for (const segment of segments) this.stats.sealedBytes += segment.end - segment.start;
    await committed;
    if (version > 1) this.#o.collector.deleteKeys([manifests.naming.manifest(stream, version - 1)]);
  }

  /**
   * The metadata a manifest version stores, with the slot epoch in cluster mode.
   * @throws the store fence's error when this node may not write the stream's objects now.
   */
  #meta(stream: StreamState, sealedOffset: number): StoredStreamMeta {
    const meta = storedMetaOf(stream, sealedOffset);
    const epoch = this.#o.storeFence?.(stream);
    if (epoch !== undefined) meta.ownerEpoch = epoch;
    return meta;
  }

  /** A retention trim: manifest n+1 without the dropped head segments, then the trim record. */
  async #trim(stream: StreamState, retainedStart: number): Promise<void> {
    const { registry, manifests } = this.#o;
    if (!registry.holds(stream)) return;
    if (stream.needsProbe) await this.#probe(stream);
    if (retainedStart <= stream.retainedStart || !registry.holds(stream)) return;
    const { version, droppedPageKeys } = await this.#storeWithMeta(stream, () =>
      manifests.storeNext(stream, [], retainedStart, this.#meta(stream, stream.sealedOffset)),
    );
    if (!registry.holds(stream)) return;
    await registry.commitTrim(stream, retainedStart, version); // its segments go to the collector
    this.#o.collector.deleteKeys([...(droppedPageKeys ?? []), manifests.naming.manifest(stream, version - 1)]);
    this.stats.trims++;
  }

  /** A manifest version holding only a metadata change (the same segments). */
  async #writeMetadata(stream: StreamState): Promise<void> {
    const { registry, manifests } = this.#o;
    if (!registry.holds(stream)) return;
    if (stream.needsProbe) await this.#probe(stream);
    if (!stream.metaDirty || !registry.holds(stream)) return; // a seal carried it meanwhile, or the stream is gone
    const { version } = await this.#storeWithMeta(stream, () =>
      manifests.storeNext(stream, [], stream.retainedStart, this.#meta(stream, stream.sealedOffset)),
    );
    if (!registry.holds(stream)) return;
    await registry.commitTrim(stream, stream.retainedStart, version); // records the version
    if (version > 1) this.#o.collector.deleteKeys([manifests.naming.manifest(stream, version - 1)]);
    this.stats.metadataWrites++;
  }

  /**
   * Runs a manifest write that stores the stream's current metadata: the stream is clean from the
   * moment the metadata is taken (a change during the write marks it again), dirty again if it fails.
   */
  async #storeWithMeta<T>(stream: StreamState, write: () => Promise<T>): Promise<T> {
    const wasDirty = stream.metaDirty;
    const sinceMs = stream.metaDirtySinceMs;
    this.#o.registry.clearMetaDirty(stream);
    try {
      return await write();
    } catch (error) {
      if (wasDirty && this.#o.registry.holds(stream)) {
        this.#o.registry.markMetaDirty(stream);
        stream.metaDirtySinceMs = Math.min(stream.metaDirtySinceMs, sinceMs);
      }
      throw error;
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
   * First seal after a restart (or after a failed attempt): the manifest store reconciles the
   * stream's objects with what the WAL knows; a newer stored manifest is published here (its seal
   * records were lost in a crash), superseded versions go to the collector.
   */
  async #probe(stream: StreamState): Promise<void> {
    const { manifests, registry, logger } = this.#o;
    // Reconciling deletes objects it takes for orphans: a node that lost the slot (a restarted or
    // resumed old owner, with stale state) would delete what the new owner stored. The same for a
    // stream unloaded meanwhile, even if its slot came back: the registry holds a fresh copy then.
    this.#o.storeFence?.(stream);
    if (!registry.holds(stream)) return;
    const found = await manifests.reconcile(stream, (start, end) => hotBytes(stream, start, end));
    if (found.adopt !== undefined) {
      const { segments, version, retainedStart } = found.adopt;
      for (const segment of segments) await registry.commitSeal(stream, segment, version);
      await registry.commitTrim(stream, retainedStart, version);
      this.stats.segmentsAdopted += segments.length;
      if (segments.length > 0) logger.info({ stream: stream.path, segments: segments.length }, 'adopted segments sealed before a crash');
    }
    if (found.discardedKeys.length > 0) {
      // The store held bytes the WAL never made durable (only possible with --durability memory).
      logger.warn({ stream: stream.path, manifest: found.discardedKeys.at(-1) }, 'stored manifest is ahead of the WAL; discarding it');
    }
    this.#o.collector.deleteKeys(found.supersededKeys);
    if (found.orphanKeys.length > 0) {
      this.stats.orphansDeleted += found.orphanKeys.length;
      logger.info({ stream: stream.path, objects: found.orphanKeys.length }, 'deleted segment objects of an interrupted seal');
    }
    stream.needsProbe = false;
  }
}

/**
 * The hot-tail bytes `[start, end)` of `stream` as its slices (views, not copies): a segment's
 * body, which the filesystem store writes as it is and other stores join (object-store.ts `putBody`).
 */
function hotBytes(stream: StreamState, start: number, end: number): Buffer[] {
  return stream.hotTail.read(start, end, Number.MAX_SAFE_INTEGER, false).parts;
}
