/**
 * A bound on the memory of streams loaded by lazy lookup (docs/storage-layout.md "Lazy lookup"):
 * each holds its whole segment list. The stream finder reports every stream it installs and every
 * request that names a path; a sweep (every `sweepIntervalMs`) evicts, least recently used first,
 * the evictable ones idle for `idleMs`, and more while over `streamsMax` streams or `segmentsMax`
 * segments — but none named by a request in the last LOADED_STREAM_IN_USE_MS (its handler, or a
 * fork create's lookup of its source, may still run).
 *
 * Evictable (StreamRegistry.evictLoaded): not written since it was loaded (no WAL record names
 * it), no fork of it held, nothing unsealed, no live reader or producer waiting; here also no
 * sliding TTL (its clock lives only in memory) and no seal, trim or metadata write running. An
 * evicted stream's objects stay; the next request for it looks it up again and serves the same
 * bytes and headers.
 */
import type { Clock, Timer } from '../clock.ts';
import { LOADED_SEGMENTS_MAX, LOADED_STREAM_IDLE_MS, LOADED_STREAM_IN_USE_MS, LOADED_STREAM_SWEEP_INTERVAL_MS, LOADED_STREAMS_MAX } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';

export interface LoadedStreamLimits {
  /** A loaded stream no request named for this long (ms) is evicted; default LOADED_STREAM_IDLE_MS. */
  idleMs?: number;
  /** Loaded streams kept at most (evictable ones beyond it go, least recently used first). */
  streamsMax?: number;
  /** Segments among the loaded streams kept at most. */
  segmentsMax?: number;
  /** How often the sweep runs (ms); default LOADED_STREAM_SWEEP_INTERVAL_MS. */
  sweepIntervalMs?: number;
}

export interface LoadedStreamEvictionOptions extends LoadedStreamLimits {
  registry: StreamRegistry;
  clock: Clock;
  /** True while a seal, trim or metadata write of the incarnation runs (it may still change the stream). */
  isSealing: (incarnation: number) => boolean;
}

export class LoadedStreamEviction {
  readonly #registry: StreamRegistry;
  readonly #clock: Clock;
  readonly #isSealing: (incarnation: number) => boolean;
  readonly #idleMs: number;
  readonly #streamsMax: number;
  readonly #segmentsMax: number;
  readonly #sweepIntervalMs: number;
  /** Loaded streams, least recently used first: when a request last named them (monotonic ms), segments held. */
  readonly #entries = new Map<StreamState, { usedAtMs: number; segmentCount: number }>();
  readonly #byPath = new Map<string, StreamState>();
  #segmentCount = 0;
  #timer: Timer | undefined;
  /** Streams evicted so far. */
  evicted = 0;

  constructor(options: LoadedStreamEvictionOptions) {
    this.#registry = options.registry;
    this.#clock = options.clock;
    this.#isSealing = options.isSealing;
    this.#idleMs = options.idleMs ?? LOADED_STREAM_IDLE_MS;
    this.#streamsMax = options.streamsMax ?? LOADED_STREAMS_MAX;
    this.#segmentsMax = options.segmentsMax ?? LOADED_SEGMENTS_MAX;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? LOADED_STREAM_SWEEP_INTERVAL_MS;
  }

  /** Loaded streams tracked (removed and written ones are dropped at the next sweep). */
  get streamCount(): number {
    return this.#entries.size;
  }

  /** Segments held by the tracked streams. */
  get segmentCount(): number {
    return this.#segmentCount;
  }

  /** Starts the periodic sweep (unref'd: it never keeps the process alive). */
  start(): void {
    this.#timer ??= this.#clock.setInterval(() => this.sweep(), this.#sweepIntervalMs).unref();
  }

  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }

  /** `streams` were just installed from the object store (a stream and its fork sources). */
  loaded(streams: readonly StreamState[]): void {
    const usedAtMs = this.#clock.monotonicMs();
    for (const stream of streams) {
      if (this.#entries.has(stream)) continue;
      this.#entries.set(stream, { usedAtMs, segmentCount: stream.segments.length });
      this.#byPath.set(stream.path, stream);
      this.#segmentCount += stream.segments.length;
    }
  }

  /** A request named `path`: a loaded stream there becomes the most recently used. */
  used(path: string): void {
    const stream = this.#byPath.get(path);
    const entry = stream === undefined ? undefined : this.#entries.get(stream);
    if (stream === undefined || entry === undefined) return;
    this.#entries.delete(stream);
    entry.usedAtMs = this.#clock.monotonicMs();
    this.#entries.set(stream, entry);
  }

  /** Evicts what is idle or over the limits (see the file comment); returns how many streams went. */
  sweep(): number {
    const nowMs = this.#clock.monotonicMs();
    const idleBeforeMs = nowMs - this.#idleMs;
    const inUseBeforeMs = nowMs - Math.min(this.#idleMs, LOADED_STREAM_IN_USE_MS);
    let count = 0;
    for (const [stream, { usedAtMs }] of [...this.#entries]) {
      // Removed, replaced or written since it was loaded: no longer this module's to evict.
      if (!this.#registry.holds(stream) || !stream.unlogged) {
        this.#forget(stream);
        continue;
      }
      const over = this.#entries.size > this.#streamsMax || this.#segmentCount > this.#segmentsMax;
      // Over a limit, streams still go least recently used first, but never one a request may still be using.
      if (usedAtMs > (over ? inUseBeforeMs : idleBeforeMs)) break;
      if (stream.ttlSeconds !== undefined || this.#isSealing(stream.incarnation) || !this.#registry.evictLoaded(stream)) continue;
      this.#forget(stream);
      count++;
    }
    this.evicted += count;
    return count;
  }

  #forget(stream: StreamState): void {
    const entry = this.#entries.get(stream);
    if (entry === undefined) return;
    this.#entries.delete(stream);
    if (this.#byPath.get(stream.path) === stream) this.#byPath.delete(stream.path);
    this.#segmentCount -= entry.segmentCount;
  }
}
