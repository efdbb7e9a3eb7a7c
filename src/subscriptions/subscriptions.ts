/**
 * Subscriptions (PROTOCOL.md §6–7): the control operations (create or re-confirm, read, delete,
 * explicit membership) and the wake cycle — pending work issues a generation, a webhook is sent
 * or a wake event appended to the wake stream, the worker acks, claims, releases; a lease that
 * runs out is re-offered as a new generation. Every change is a WAL record (records.ts) queued
 * before it is applied and awaited before anything leaves the server, so after `kill -9` no
 * acked cursor moves back and no generation repeats. Delivery is at-least-once: a wake whose
 * notification may have been lost in a crash is offered again once its lease runs out (webhook)
 * or its wake event is written again at start (pull-wake).
 *
 * Fencing (§7.3): callback, ack and release need the current wake's token (32 random bytes,
 * stored only as a SHA-256 hash), its `generation` and `wake_id`, and a lease still running.
 *
 * Given a subscription store, every change is also stored in the object store (store-sync.ts,
 * store-reconcile.ts): a create before it is answered, a delete's tombstone before the delete is
 * logged, cursors within their budget, so a node without this data directory has them too.
 */
import type { Clock, RandomSource, Timer } from '../clock.ts';
import { SUBSCRIPTION_TICK_MS, SUBSCRIPTIONS_MAX, WAKE_STREAMS_MAX } from '../config/limits.ts';
import { BadRequestError, ServiceUnavailableError } from '../protocol/errors.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import { checkAckOffset, fenceWake } from './fencing.ts';
import type { Reconciled, StreamFinding } from './store-reconcile.ts';
import { StoreSync, storedStateOf } from './store-sync.ts';
import type { SubscriptionStore } from './subscription-store.ts';
import { AlreadyClaimedError, FencedError, NoPendingWorkError, SubscriptionConflictError, SubscriptionNotFoundError } from './errors.ts';
import { currentStream, currentTails, linkViews, pendingViews, tailOffset, type LinkView } from './links.ts';
import type { PathOffset, SubscriptionRecord, SubscriptionSnapshot } from './records.ts';
import { checkRelativePath, compileGlob, configHash, type SubscriptionConfig } from './subscription-config.ts';
import { SubscriptionTable, type Subscription, type Wake } from './subscription-table.ts';
import { WakeDelivery, type DeliveryMetrics } from './wake-delivery.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { WebhookSender } from './webhook-sender.ts';
import { hashToken, newToken, newWakeId } from './tokens.ts';
import { checkResolvedHost, checkWebhookUrl } from './webhook-url.ts';

/** Where records become durable (the WAL writer): throws synchronously when refused. */
export interface SubscriptionLog {
  append(record: SubscriptionRecord): Promise<void>;
}

export interface SubscriptionsOptions {
  log: SubscriptionLog;
  registry: StreamRegistry;
  clock: Clock;
  random: RandomSource;
  keys: SigningKeys;
  sender: WebhookSender;
  /** `--allow-localhost-webhooks`: http://localhost and 127.0.0.x webhooks (development). */
  allowLocalhostWebhooks: boolean;
  /** `--webhook-signing-key-rotate-ms`: rotate the signing key once it is this old; undefined: never. */
  signingKeyRotateMs?: number;
  metrics?: DeliveryMetrics;
  onBackgroundError?: (error: unknown) => void;
  /** The object-store copy (docs/storage-layout.md "Subscriptions"); undefined: the WAL only (unit tests). */
  stored?: {
    store: SubscriptionStore;
    /** `--metadata-flush-ms`: definition changes are stored within this long. */
    definitionFlushMs: number;
    /** `--subscription-cursor-flush-ms`: cursor, generation and lease changes within this long. */
    cursorFlushMs: number;
  };
  /** `--public-url`'s origin: base of `callback_url` and `jwks_url` instead of the request's. */
  publicOrigin?: string;
}

/** The body of a callback, ack or release (§7.1, §7.2). */
export interface WakeAck {
  wakeId: string;
  generation: number;
  acks: { stream: string; offset: string }[];
  done: boolean;
}

/** Path of the control API under a stream root; JWKS and callbacks are built from it. */
export const CONTROL_PREFIX = '/v1/stream/__ds';

export class Subscriptions {
  readonly #table = new SubscriptionTable();
  readonly #log: SubscriptionLog;
  readonly #registry: StreamRegistry;
  readonly #clock: Clock;
  readonly #allowLocalhost: boolean;
  readonly #delivery: WakeDelivery;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #signingKeyRotateMs: number | undefined;
  #rotating = false;
  #ticker: Timer | undefined;
  #closed = false;
  #started = false;
  readonly #sync: StoreSync | undefined;
  /** `--public-url`'s origin, if set. */
  readonly publicOrigin: string | undefined;

  constructor(options: SubscriptionsOptions) {
    this.#log = options.log;
    this.#registry = options.registry;
    this.#clock = options.clock;
    this.#allowLocalhost = options.allowLocalhostWebhooks;
    this.#onBackgroundError = options.onBackgroundError ?? (() => {});
    this.#signingKeyRotateMs = options.signingKeyRotateMs;
    this.#delivery = new WakeDelivery({
      registry: options.registry,
      clock: options.clock,
      random: options.random,
      keys: options.keys,
      sender: options.sender,
      metrics: options.metrics,
      commit: (record) => this.#commit(record),
      current: (id) => this.#table.get(id),
      afterChange: (sub) => this.#maybeWake(sub),
      onBackgroundError: this.#onBackgroundError,
    });
    this.publicOrigin = options.publicOrigin;
    this.#sync =
      options.stored === undefined
        ? undefined
        : new StoreSync({
            store: options.stored.store,
            clock: options.clock,
            definitionFlushMs: options.stored.definitionFlushMs,
            cursorFlushMs: options.stored.cursorFlushMs,
            stateOf: (id) => this.storedState(id),
            onBackgroundError: this.#onBackgroundError,
          });
  }

  get count(): number {
    return this.#table.size;
  }

  /** The webhook signing keys (JWKS route, rotation). */
  get keys(): SigningKeys {
    return this.#delivery.keys;
  }

  // Recovery: checkpoint, replay (the same apply as live changes).

  apply(record: SubscriptionRecord): void {
    this.#table.apply(record);
  }

  snapshot(): SubscriptionSnapshot[] {
    return this.#table.snapshot();
  }

  restore(snapshot: readonly SubscriptionSnapshot[]): void {
    this.#table.restore(snapshot);
  }

  /**
   * After WAL recovery, before `start`: reconciles with the object store (store-reconcile.ts) —
   * loads the subscriptions this node does not hold, finishes deletes, marks what is behind.
   * Resolves with what it did (nothing without a store).
   * @throws StoredSubscriptionCorruptError; store errors.
   */
  async loadStored(finder: StreamFinding): Promise<Reconciled> {
    if (this.#sync === undefined) return { loaded: [], deleted: [], purged: [], behind: [], pruned: [] };
    const table = this.#table;
    const reconciled = await this.#sync.reconcile({ registry: this.#registry, finder, table, commit: (record) => this.#commit(record) });
    if (table.size > 0) await this.keys.ensureStored();
    return reconciled;
  }

  /** What the object store should hold for `id` now (store-sync.ts `storedStateOf`); undefined once deleted. */
  storedState(id: string): SubscriptionSnapshot | undefined {
    const sub = this.#table.get(id);
    return sub === undefined ? undefined : storedStateOf(this.#registry, sub);
  }

  /** Stores every subscription with unstored changes (graceful shutdown, checkpoints). */
  async drainStored(): Promise<void> {
    await this.#sync?.drain();
  }

  /** After recovery: re-offers what a crash may have lost, then checks leases and retries every tick. */
  start(): void {
    this.#started = true;
    for (const sub of this.#table.all()) {
      if (sub.config.type === 'pull-wake' && sub.wake !== null && sub.wake.holder === null) this.#delivery.wakeEventUnwritten(sub.id);
      this.#maybeWake(sub);
    }
    this.#ticker = this.#clock.setInterval(() => this.#tick(), SUBSCRIPTION_TICK_MS).unref();
  }

  /** Stops issuing wakes; deliveries in flight end on their own (their records are then refused). */
  close(): void {
    this.#closed = true;
    this.#ticker?.cancel();
  }

  /** Queues, applies, and resolves once durable (the registry's order: queued first, then applied). */
  async #commit(record: SubscriptionRecord): Promise<Subscription | undefined> {
    const queued = this.#log.append(record);
    const sub = this.#table.apply(record);
    if (record.t === 'sub.del') this.#sync?.deleting(record.id);
    else {
      if (record.t === 'sub.put' || record.t === 'sub.load') this.#sync?.created(record.id);
      this.#sync?.changed(record.id, record.t === 'sub.put' || record.t === 'sub.add' || record.t === 'sub.rm' ? 'definition' : 'cursor');
    }
    await queued;
    return sub;
  }

  // ---------------------------------------------------------------------------------------------
  // Control (§6)

  /**
   * Creates or re-confirms subscription `id` (§6.2). `origin` (`https://host`) is where callbacks
   * and the JWKS are served.
   * @throws WebhookUrlRejectedError, SubscriptionConflictError, ServiceUnavailableError (limit, WAL).
   */
  async put(id: string, config: SubscriptionConfig, origin: string): Promise<{ created: boolean; sub: Subscription }> {
    const hash = configHash(config);
    // The URL rules first: a refused URL is 400 whatever the id holds.
    const url = config.webhookUrl === null ? undefined : checkWebhookUrl(config.webhookUrl, this.#allowLocalhost);
    const existing = this.#table.get(id);
    if (existing !== undefined) {
      if (existing.hash !== hash) throw new SubscriptionConflictError(id);
      return { created: false, sub: existing };
    }
    if (url !== undefined) await checkResolvedHost(url.hostname, this.#allowLocalhost);
    if (this.#table.size >= SUBSCRIPTIONS_MAX) throw new ServiceUnavailableError(`${SUBSCRIPTIONS_MAX} subscriptions are held; delete some first`);
    // The keys that sign its webhooks are in the store before the subscription is.
    if (this.#sync !== undefined) await this.keys.ensureStored();
    // Re-checked after the await: a concurrent create of the same id may have won.
    const raced = this.#table.get(id);
    if (raced !== undefined) {
      if (raced.hash !== hash) throw new SubscriptionConflictError(id);
      return { created: false, sub: raced };
    }
    const acked = currentTails(this.#registry, { glob: compileGlob(config.pattern) }, config.streams);
    const sub = await this.#commit({ t: 'sub.put', id, config, hash, createdAtMs: this.#clock.nowMs(), origin: this.publicOrigin ?? origin, acked });
    if (sub === undefined) throw new Error('sub.put applied to nothing');
    // Stored before it is answered: a node without this data directory has every created subscription.
    await this.#sync?.storeNow(id);
    return { created: true, sub };
  }

  /** @throws SubscriptionNotFoundError */
  get(id: string): Subscription {
    const sub = this.#table.get(id);
    if (sub === undefined) throw new SubscriptionNotFoundError(id);
    return sub;
  }

  /** The subscription's links (§6.3). */
  links(sub: Subscription): LinkView[] {
    return linkViews(this.#registry, sub);
  }

  /** Webhook delivery is retrying after a failure (§6.3 `status: failed`). */
  failing(sub: Subscription): boolean {
    return sub.nextAttemptAtMs !== null;
  }

  /**
   * Deletes (idempotently) and fences every in-flight wake (§6.3). With a store, the tombstone is
   * stored first, so no crash leaves a stored live version of a deleted subscription.
   * @throws SubscriptionStoreFencedError, store errors (nothing deleted); ServiceUnavailableError (WAL)
   */
  async delete(id: string): Promise<void> {
    const sub = this.#table.get(id);
    if (sub === undefined) return;
    await this.#sync?.storeTombstone(sub, () => this.#table.get(id) === sub);
    if (this.#table.get(id) !== sub) return;
    await this.#commit({ t: 'sub.del', id });
    this.#sync?.store.purge(id).catch((error: unknown) => this.#onBackgroundError(error));
  }

  /** Adds explicit links at the streams' current tails (§6.4). @throws SubscriptionNotFoundError, BadRequestError */
  async addStreams(id: string, paths: readonly string[]): Promise<void> {
    const sub = this.get(id);
    const fresh = [...new Set(paths.map(checkRelativePath))].filter((path) => sub.links.get(path)?.explicit !== true);
    if (fresh.length === 0) return;
    if (sub.config.wakeStream !== null && fresh.includes(sub.config.wakeStream)) throw new BadRequestError('the wake stream cannot be a linked stream');
    const links: [string, string | null][] = fresh.map((path) => {
      const stream = currentStream(this.#registry, path);
      const known = sub.links.get(path)?.acked ?? null;
      // A glob link keeps its cursor; a new link starts at the tail.
      return [path, known ?? (stream === undefined ? null : tailOffset(this.#registry, stream))];
    });
    await this.#commit({ t: 'sub.add', id, links });
    this.#maybeWake(sub);
  }

  /** Removes an explicit link, idempotently (§6.4). @throws SubscriptionNotFoundError */
  async removeStream(id: string, path: string): Promise<void> {
    const sub = this.get(id);
    if (sub.links.get(path)?.explicit !== true) return;
    await this.#commit({ t: 'sub.rm', id, path });
  }

  // ---------------------------------------------------------------------------------------------
  // Delivery (§7)

  /** Called when bytes of `stream` became durable: wakes idle subscriptions that follow it. */
  streamDurable(stream: StreamState): void {
    if (this.#table.size === 0) return;
    for (const sub of this.#table.all()) {
      // O(1) per subscription: explicit links are in the links map (a regular expression test for the glob).
      if (sub.links.get(stream.path)?.explicit === true || sub.glob?.test(stream.path) === true) this.#maybeWake(sub);
    }
  }

  /**
   * A stream incarnation was removed (deleted, expired): glob-link cursors of its path are dropped
   * once no stream is held there, so the link table does not grow with deleted streams.
   */
  streamRemoved(stream: StreamState): void {
    if (!this.#started || this.#closed || this.#table.size === 0) return;
    for (const sub of this.#table.all()) this.#prune(sub, [stream.path]);
  }

  /** Commits a `sub.prune` of those of `paths` that are glob-only links of `sub` to paths no stream holds. */
  #prune(sub: Subscription, paths: readonly string[]): void {
    const gone = paths.filter((path) => sub.links.get(path)?.explicit === false && !this.#registry.holdsPath(path));
    if (gone.length === 0) return;
    this.#commit({ t: 'sub.prune', id: sub.id, paths: gone }).catch((error: unknown) => this.#onBackgroundError(error));
  }

  #tick(): void {
    this.#sync?.tick();
    const now = this.#clock.nowMs();
    for (const sub of this.#table.all()) {
      const leaseOver = sub.wake !== null && sub.wake.leaseUntilMs !== null && now >= sub.wake.leaseUntilMs;
      const retryDue = sub.wake === null && sub.nextAttemptAtMs !== null && now >= sub.nextAttemptAtMs;
      if (leaseOver || retryDue) this.#maybeWake(sub);
    }
    this.#delivery.retryWakeEvents();
    if (this.#signingKeyRotateMs !== undefined && !this.#rotating) {
      this.#rotating = true;
      this.keys
        .rotateIfOlderThan(this.#signingKeyRotateMs)
        .catch((error: unknown) => this.#onBackgroundError(error))
        .finally(() => {
          this.#rotating = false;
        });
    }
  }

  /** Issues a wake when `sub` is idle and has pending work (§7). Safe to call any time. */
  #maybeWake(sub: Subscription): void {
    if (this.#closed || this.#table.get(sub.id) !== sub) return;
    const now = this.#clock.nowMs();
    if (sub.wake !== null && (sub.wake.leaseUntilMs === null || now < sub.wake.leaseUntilMs)) return;
    if (sub.wake === null && sub.nextAttemptAtMs !== null && now < sub.nextAttemptAtMs) return;
    const offered = pendingViews(this.#registry, sub, WAKE_STREAMS_MAX);
    if (offered.length === 0) return;
    try {
      this.#delivery.issue(sub, offered);
    } catch (error) {
      // The WAL refused the record (overload, closing): nothing was issued; the next append or tick retries.
      this.#onBackgroundError(error);
    }
  }

  /**
   * A pull-wake worker claims the subscription (§7.2): takes the wake in flight, or issues one if
   * work is pending and none is.
   * @throws SubscriptionNotFoundError, BadRequestError (webhook subscription), AlreadyClaimedError, NoPendingWorkError
   */
  async claim(id: string, worker: string): Promise<{ wake: Wake; token: string; streams: LinkView[]; leaseTtlMs: number }> {
    const sub = this.get(id);
    if (sub.config.type !== 'pull-wake') throw new BadRequestError('only pull-wake subscriptions are claimed; webhooks call back');
    const now = this.#clock.nowMs();
    const wake = sub.wake;
    if (wake !== null && wake.holder !== null && wake.leaseUntilMs !== null && now < wake.leaseUntilMs) {
      throw new AlreadyClaimedError(wake.holder, wake.gen);
    }
    const streams = pendingViews(this.#registry, sub, WAKE_STREAMS_MAX);
    const unclaimed = wake !== null && wake.holder === null;
    if (!unclaimed && streams.length === 0) throw new NoPendingWorkError(id);
    const gen = unclaimed ? wake.gen : sub.generation + 1;
    const wakeId = unclaimed ? wake.wakeId : newWakeId();
    const token = newToken();
    await this.#commit({
      t: 'sub.claim',
      id,
      gen,
      wake: wakeId,
      holder: worker,
      tokenHash: hashToken(token),
      leaseUntilMs: now + sub.config.leaseTtlMs,
      offered: streams.map((view): PathOffset => [view.path, view.tail_offset]),
    });
    this.#delivery.wakeEventWritten(id);
    const claimed = this.get(id).wake;
    if (claimed === null) throw new FencedError('the subscription changed while claiming');
    return { wake: claimed, token, streams, leaseTtlMs: sub.config.leaseTtlMs };
  }

  /**
   * A webhook callback (§7.1) or pull-wake ack (§7.2): applies acks; `done` ends the wake,
   * otherwise the lease is extended (heartbeat). Returns whether another wake follows.
   * @throws SubscriptionNotFoundError, TokenInvalidError, FencedError, BadRequestError (ack offsets)
   */
  async ack(id: string, token: string | undefined, request: WakeAck): Promise<{ nextWake: boolean }> {
    const sub = this.get(id);
    const wake = fenceWake(sub, token, request.wakeId, request.generation, this.#clock.nowMs());
    const acks = request.acks.map(({ stream, offset }): PathOffset => [stream, checkAckOffset(this.#registry, sub, stream, offset)]);
    const now = this.#clock.nowMs();
    await this.#commit({ t: 'sub.ack', id, gen: wake.gen, acks, done: request.done, leaseUntilMs: request.done ? null : now + sub.config.leaseTtlMs });
    if (!request.done) return { nextWake: false };
    const nextWake = pendingViews(this.#registry, sub, 1).length > 0;
    this.#maybeWake(sub);
    return { nextWake };
  }

  /** Ends the wake without acking (§7.2); pending work is woken again. @throws as `ack` */
  async release(id: string, token: string | undefined, wakeId: string, generation: number): Promise<void> {
    const sub = this.get(id);
    const wake = fenceWake(sub, token, wakeId, generation, this.#clock.nowMs());
    await this.#commit({ t: 'sub.release', id, gen: wake.gen });
    this.#maybeWake(sub);
  }
}
