/**
 * A node's lease and the time until which it is certainly held (docs/cluster.md "The fence").
 *
 * etcd expires a lease TTL after the leader last renewed it, and the leader renews it only after
 * this node sent the keep-alive; so the lease is held at least until (send time of the last
 * answered keep-alive) + TTL on the leader's clock. The fence takes a margin off that (clock-rate
 * drift, a pause between the check and the acknowledgement) and counts on the injected monotonic
 * clock. The keep-alives are our own (one unary round trip each, on a clock interval, several may
 * be in flight) rather than etcd3's automatic stream, because the fence needs to know which send
 * each answer belongs to.
 *
 * The fence is only armed once the owner has re-read the slot map under the lease (see
 * EtcdCoordinator): a node whose lease expired may have lost slots meanwhile.
 */
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3';
import type { Clock, Timer } from '../clock.ts';

/**
 * Keep-alives sent per tick. The client opens each on a member picked at random; a member that
 * accepts connections and never answers (paused, partitioned from its peers) holds a call until
 * its deadline. Two per tick make all of a window's keep-alives landing there (1/9 per tick with
 * three members) vanishingly rare, for a few extra bytes a second.
 */
const KEEPALIVES_PER_TICK = 2;

/** Keep-alives in flight at once; more are skipped (etcd is not answering anyway). */
const KEEPALIVES_IN_FLIGHT_MAX = 8;

/** Immediate retries of a failed keep-alive (each on a member picked anew). */
const KEEPALIVE_RETRIES_MAX = 2;

export interface LeaseKeeperOptions {
  client: Etcd3;
  clock: Clock;
  /** Lease TTL in ms; etcd's TTL is this rounded up to whole seconds (so at least this long). */
  ttlMs: number;
  /** Subtracted from the TTL for the fence, in ms (0 < marginMs < ttlMs). */
  marginMs: number;
  /** Period of keep-alives in ms. */
  intervalMs: number;
  /** The lease expired on etcd (a keep-alive answered TTL 0, or a put under it was refused). Called once per lease. */
  onLost: (error: Error) => void;
  /** A keep-alive failed for another reason (etcd unreachable, no quorum); the next tick retries. */
  onKeepAliveError: (error: Error) => void;
  /** A keep-alive was answered. */
  onKeepAliveOk: () => void;
}

export class LeaseKeeper {
  readonly #options: LeaseKeeperOptions;
  #lease: Lease | undefined;
  #confirmedSentMs = -Infinity;
  #armed = false;
  #inFlight = 0;
  #timer: Timer | undefined;
  #closed = false;

  constructor(options: LeaseKeeperOptions) {
    if (!(options.marginMs > 0 && options.marginMs < options.ttlMs)) throw new RangeError(`lease margin ${options.marginMs} ms must be in (0, ${options.ttlMs}) ms`);
    this.#options = options;
  }

  /** The current lease (undefined before `grant`). */
  get lease(): Lease | undefined {
    return this.#lease;
  }

  /** Lease TTL in whole seconds, as granted by etcd. */
  get ttlSeconds(): number {
    return Math.max(1, Math.ceil(this.#options.ttlMs / 1000));
  }

  /**
   * Grants a new lease (the previous one, if any, is released) and starts keeping it alive. The
   * fence stays disarmed until `arm`.
   * @throws the client's error when etcd does not grant it; Error after `close`.
   */
  async grant(): Promise<Lease> {
    if (this.#closed) throw new Error('lease keeper closed');
    this.release();
    const sentMs = this.#options.clock.monotonicMs();
    const lease = this.#options.client.lease(this.ttlSeconds, { autoKeepAlive: false });
    // A loss before the grant resolves is the grant's failure: `grant()` rejects with it.
    lease.on('lost', (error: Error) => this.#lost(lease, error));
    await lease.grant();
    if (this.#closed) {
      await lease.revoke().catch(() => undefined);
      throw new Error('lease keeper closed');
    }
    this.#lease = lease;
    this.#confirmedSentMs = sentMs;
    this.#timer ??= this.#options.clock
      .setInterval(() => {
        for (let i = 0; i < KEEPALIVES_PER_TICK; i++) this.#keepAlive();
      }, this.#options.intervalMs)
      .unref();
    return lease;
  }

  /** Opens the fence for the current lease. */
  arm(): void {
    this.#armed = true;
  }

  /** Closes the fence (until the next `arm`). */
  disarm(): void {
    this.#armed = false;
  }

  /** Monotonic ms until which the lease is certainly held; -Infinity while disarmed. */
  safeUntilMs(): number {
    return this.#armed ? this.#confirmedSentMs + this.#options.ttlMs - this.#options.marginMs : -Infinity;
  }

  /** Stops keeping the current lease alive (it expires on its own) and shuts the fence. */
  release(): void {
    this.disarm();
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#lease?.release();
    this.#lease = undefined;
  }

  /** Revokes the current lease and grants no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.revoke();
  }

  /** Releases the current lease and revokes it on etcd (its keys go at once). */
  async revoke(): Promise<void> {
    const lease = this.#lease;
    this.release();
    await lease?.revoke();
  }

  /**
   * One keep-alive, retried at once (up to KEEPALIVE_RETRIES_MAX times) when it fails: the client
   * opens each keep-alive stream on a member picked at random, and a dead member fails it at once,
   * so retrying reaches a live one long before the fence's window closes.
   */
  #keepAlive(retry = 0): void {
    const lease = this.#lease;
    if (lease === undefined || lease.revoked() || this.#inFlight >= KEEPALIVES_IN_FLIGHT_MAX) return;
    const { clock, ttlMs, marginMs, intervalMs } = this.#options;
    const sentMs = clock.monotonicMs();
    this.#inFlight++;
    // A member that accepts the connection and never answers (paused, partitioned) holds a call
    // until its deadline: two periods, so later ticks (on other members) are not starved; and an
    // answer after TTL − margin could not extend the fence anyway.
    const deadlineMs = Math.min(ttlMs - marginMs, 2 * intervalMs);
    lease
      .keepaliveOnce({ deadline: clock.nowMs() + deadlineMs })
      .then(
        () => {
          if (lease !== this.#lease) return;
          this.#confirmedSentMs = Math.max(this.#confirmedSentMs, sentMs);
          this.#options.onKeepAliveOk();
        },
        (error: unknown) => {
          if (lease !== this.#lease) return;
          if (error instanceof EtcdLeaseInvalidError) {
            this.#lost(lease, error);
            return;
          }
          this.#options.onKeepAliveError(error as Error);
          // After this call has left the in-flight count.
          if (retry < KEEPALIVE_RETRIES_MAX) clock.setTimeout(() => this.#keepAlive(retry + 1), 0).unref();
        },
      )
      .finally(() => this.#inFlight--);
  }

  #lost(lease: Lease, error: Error): void {
    if (lease !== this.#lease) return;
    this.release();
    this.#options.onLost(error);
  }
}
