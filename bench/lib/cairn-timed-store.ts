/**
 * Launches Cairn for the diskless benchmark exactly as `cairn serve` does (same flags, parsed by
 * the same commander definition, same `startServer`), with its configured object store (fs or
 * S3, `openBaseStore`) wrapped in {@link TimedObjectStore}: every request can be delayed by a
 * fixed `--store-delay-ms` (standing in for a remote store's round trip), and every `put` is
 * timed (delay included), split into diskless WAL objects (`_cairn/wal/…/*.wal`) and the rest.
 *
 *   node bench/lib/cairn-timed-store.ts --stats-port 4438 [--store-delay-ms 0] -- --port 4437 --data-dir DIR [any `cairn serve` flag]
 *
 * `GET http://127.0.0.1:<stats-port>/put-latencies` answers {@link PutLatencies}: the puts finished
 * since the previous such request, each as `[startedAtMs, latencyMs]` (start as Unix time in ms,
 * `performance.timeOrigin + performance.now()`, comparable across processes on one machine), and
 * forgets them. The
 * server's own metrics (requests, WAL objects stored) stay at `/metrics` on its port. Stops cleanly
 * on SIGTERM / SIGINT, like `cairn serve`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { ByteRange, GetResult, ListOptions, ListPage, ObjectInfo, ObjectStore, PutOptions } from '../../src/object-store/object-store.ts';
import { openBaseStore, startServer } from '../../src/server.ts';
import { parseServeFlags, runLauncher, serveSideListener, splitAtSeparator, statsPortFlag } from './cairn-launcher.ts';

/** Put latencies kept between two reads at most (a 5 s cell at 50 flushes/s stores a few hundred). */
const PUT_SAMPLES_MAX = 1_000_000;

/** One finished put: when it started (Unix time, ms, fractional) and how long it took (ms). */
export type PutSample = [startedAtMs: number, latencyMs: number];

export interface PutLatencies {
  /** Diskless WAL object puts (`_cairn/wal/<chain>/<generation>/<seq>.wal`). */
  wal: PutSample[];
  /** Every other put (segments, manifests, checkpoints, claims). */
  other: PutSample[];
}

const WAL_OBJECT_KEY = /^_cairn\/wal\/.+\.wal$/;

/** An `ObjectStore` decorator: waits `delayMs` before every request and times every put. */
export class TimedObjectStore implements ObjectStore {
  readonly description: string;
  readonly #inner: ObjectStore;
  readonly #delayMs: number;
  #latencies: PutLatencies = { wal: [], other: [] };

  constructor(inner: ObjectStore, delayMs: number) {
    this.#inner = inner;
    this.#delayMs = delayMs;
    this.description = delayMs > 0 ? `${inner.description} (+${delayMs} ms per request)` : inner.description;
  }

  /** The put latencies since the previous call. */
  takePutLatencies(): PutLatencies {
    const taken = this.#latencies;
    this.#latencies = { wal: [], other: [] };
    return taken;
  }

  async #delay(): Promise<void> {
    if (this.#delayMs > 0) await sleep(this.#delayMs);
  }

  async #timedPut(key: string, run: () => Promise<void>): Promise<void> {
    const startedMs = performance.now();
    try {
      await this.#delay();
      await run();
    } finally {
      const samples = WAL_OBJECT_KEY.test(key) ? this.#latencies.wal : this.#latencies.other;
      if (samples.length < PUT_SAMPLES_MAX) samples.push([performance.timeOrigin + startedMs, performance.now() - startedMs]);
    }
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#timedPut(key, () => this.#inner.put(key, body, options));
  }

  putParts(key: string, parts: readonly Uint8Array[], options?: PutOptions): Promise<void> {
    const inner = this.#inner;
    return this.#timedPut(key, () => (inner.putParts === undefined ? inner.put(key, Buffer.concat(parts), options) : inner.putParts(key, parts, options)));
  }

  async get(key: string, range?: ByteRange): Promise<GetResult> {
    await this.#delay();
    return this.#inner.get(key, range);
  }

  async head(key: string): Promise<ObjectInfo> {
    await this.#delay();
    return this.#inner.head(key);
  }

  async list(options: ListOptions): Promise<ListPage> {
    await this.#delay();
    return this.#inner.list(options);
  }

  async delete(key: string): Promise<void> {
    await this.#delay();
    return this.#inner.delete(key);
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    await this.#delay();
    return this.#inner.deleteMany(keys);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

async function run(argv: string[]): Promise<void> {
  const { own, serveArgs } = splitAtSeparator(argv);
  const { values } = parseArgs({ args: own, options: { 'stats-port': { type: 'string' }, 'store-delay-ms': { type: 'string', default: '0' } } });
  const statsPort = statsPortFlag(values['stats-port']);
  const delayMs = Number(values['store-delay-ms']);
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error('--store-delay-ms must be a number >= 0');
  const config = await parseServeFlags(serveArgs);

  const store = new TimedObjectStore(await openBaseStore(config), delayMs);
  const server = await startServer(config, { objectStore: store });
  await serveSideListener('cairn-timed-store', server, statsPort, '/put-latencies', (): PutLatencies => store.takePutLatencies());
}

runLauncher('cairn-timed-store', run);
