/**
 * Readiness (`/readyz`, issue 6): ready when WAL recovery has finished, the WAL writer has not
 * failed, the server is not shutting down, in cluster mode the node holds its registration and
 * owns slots (docs/cluster.md), and the object store answers a cheap probe (a HEAD of
 * a key that need not exist: "not found" is an answer). The probe's result is kept for
 * `READINESS_PROBE_CACHE_MS` and concurrent checks share one probe, so frequent scrapers cost
 * the store one request per period.
 */
import type { Clock, Timer } from '../clock.ts';
import { READINESS_PROBE_CACHE_MS, READINESS_PROBE_TIMEOUT_MS } from '../config/limits.ts';
import { ObjectNotFoundError, type ObjectStore } from '../object-store/index.ts';

/** Key the probe HEADs; it is never written. */
export const READINESS_PROBE_KEY = 'cairn-readiness-probe';

export type ReadinessResult = { ready: true } | { ready: false; reason: string };

export interface ReadinessOptions {
  /** The store without retries (a probe should answer quickly, not retry for seconds). */
  store: ObjectStore;
  clock: Clock;
  /** Why the WAL cannot take writes, or undefined when it can. */
  walFailure: () => Error | undefined;
  /** Cluster mode: whether the coordinator is reachable and how many slots this node owns. */
  cluster?: () => { connected: boolean; ownedSlots: number };
}

export class Readiness {
  readonly #o: ReadinessOptions;
  #recovered = false;
  #closing = false;
  #probe: { atMs: number; result: Promise<ReadinessResult> } | undefined;

  constructor(options: ReadinessOptions) {
    this.#o = options;
  }

  /** WAL checkpoint and replay are applied. */
  markRecovered(): void {
    this.#recovered = true;
  }

  /** Graceful shutdown started: not ready from now on. */
  markClosing(): void {
    this.#closing = true;
  }

  /**
   * Whether the process can still do its job without a restart (`/healthz`): not after the WAL
   * writer failed (a write or fsync error, e.g. a full disk), because only recovery at start
   * re-establishes what is durable (src/wal/wal-writer.ts). A supervisor that restarts on a failed
   * liveness check (Kubernetes, ECS, the container HEALTHCHECK with a restart policy) then brings
   * the server back once the disk has room again.
   */
  liveness(): ReadinessResult {
    const walFailure = this.#o.walFailure();
    return walFailure === undefined ? { ready: true } : { ready: false, reason: `WAL failed: ${walFailure.message}; restart to recover` };
  }

  /** Whether the server should receive traffic, and if not, why (never throws). */
  async check(): Promise<ReadinessResult> {
    if (this.#closing) return { ready: false, reason: 'shutting down' };
    if (!this.#recovered) return { ready: false, reason: 'WAL recovery has not finished' };
    const walFailure = this.#o.walFailure();
    if (walFailure !== undefined) return { ready: false, reason: `WAL failed: ${walFailure.message}` };
    const cluster = this.#o.cluster?.();
    if (cluster !== undefined && !cluster.connected) return { ready: false, reason: 'not connected to the cluster coordinator (no slot map, or the lease is not held)' };
    if (cluster !== undefined && cluster.ownedSlots === 0) return { ready: false, reason: 'owns no slots (joining, or every slot is assigned elsewhere)' };
    const nowMs = this.#o.clock.nowMs();
    if (this.#probe === undefined || nowMs - this.#probe.atMs >= READINESS_PROBE_CACHE_MS) {
      this.#probe = { atMs: nowMs, result: this.#probeStore() };
    }
    return this.#probe.result;
  }

  async #probeStore(): Promise<ReadinessResult> {
    let timer: Timer | undefined;
    const timeout = new Promise<ReadinessResult>((resolve) => {
      timer = this.#o.clock.setTimeout(
        () => resolve({ ready: false, reason: `object store did not answer within ${READINESS_PROBE_TIMEOUT_MS} ms` }),
        READINESS_PROBE_TIMEOUT_MS,
      );
    });
    const probe = this.#o.store.head(READINESS_PROBE_KEY).then(
      (): ReadinessResult => ({ ready: true }),
      (error: unknown): ReadinessResult =>
        error instanceof ObjectNotFoundError
          ? { ready: true }
          : { ready: false, reason: `object store unreachable: ${(error as Error).message}` },
    );
    try {
      return await Promise.race([probe, timeout]);
    } finally {
      timer?.cancel();
    }
  }
}
