/**
 * Issuing and delivering wakes (PROTOCOL.md §7): a webhook wake is a signed POST with a callback
 * token (§7.1), answered by `{ "done": true }` (auto-ack of the offered tails) or by a later
 * callback; a failed attempt is retried with exponential backoff (1 s → 60 s, ±20% jitter from the
 * injected random source) as a new generation. A pull wake is one event appended to the wake
 * stream (§7.2); if that append fails (wake stream missing, WAL busy) it is tried again every
 * tick, and after a restart every unclaimed wake's event is written again (at-least-once).
 */
import type { Clock, RandomSource } from '../clock.ts';
import { WEBHOOK_RETRY_DELAY_MS_MAX, WEBHOOK_RETRY_DELAY_MS_MIN, WEBHOOK_RETRY_JITTER_RATIO } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { LinkView } from './links.ts';
import type { PathOffset, SubscriptionRecord } from './records.ts';
import type { SigningKeys } from './signing-keys.ts';
import type { Subscription } from './subscription-table.ts';
import type { WebhookSender } from './webhook-sender.ts';
import { hashToken, newToken, newWakeId } from './tokens.ts';

/** Counters the metrics exporter reads (prom-client, src/subscriptions/subscription-metrics.ts). */
export interface DeliveryMetrics {
  wakeIssued(type: 'webhook' | 'pull-wake'): void;
  webhookFinished(outcome: 'done' | 'accepted' | 'failed'): void;
}

/** Wake event written to a pull-wake subscription's wake stream (§7.2). */
export interface WakeEvent {
  type: 'wake';
  subscription_id: string;
  stream: string;
  generation: number;
  ts: number;
}

export interface WakeDeliveryOptions {
  registry: StreamRegistry;
  clock: Clock;
  random: RandomSource;
  keys: SigningKeys;
  sender: WebhookSender;
  metrics?: DeliveryMetrics;
  commit(record: SubscriptionRecord): Promise<Subscription | undefined>;
  /** The subscription now held under `id` (undefined once deleted). */
  current(id: string): Subscription | undefined;
  /** Called after a wake ended, so pending work is woken again. */
  afterChange(sub: Subscription): void;
  onBackgroundError(error: unknown): void;
}

/** Backoff before attempt `attempt + 1` (attempt ≥ 1 failures so far), jittered by `random`. */
export function retryDelayMs(attempt: number, random: RandomSource): number {
  const base = Math.min(WEBHOOK_RETRY_DELAY_MS_MAX, WEBHOOK_RETRY_DELAY_MS_MIN * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 + WEBHOOK_RETRY_JITTER_RATIO * (2 * random.next() - 1)));
}

export class WakeDelivery {
  readonly #options: WakeDeliveryOptions;
  /** Pull wakes whose event is not known to be in the wake stream: subscription id → generation. */
  readonly #unwritten = new Map<string, number>();

  constructor(options: WakeDeliveryOptions) {
    this.#options = options;
  }

  get keys(): SigningKeys {
    return this.#options.keys;
  }

  /**
   * Issues the next generation of `sub` offering `offered` and delivers it once durable. The
   * record is applied synchronously (so a second call sees the wake in flight).
   */
  issue(sub: Subscription, offered: LinkView[]): void {
    const { clock } = this.#options;
    const gen = sub.generation + 1;
    const wake = newWakeId();
    const tails = offered.map((view): PathOffset => [view.path, view.tail_offset]);
    if (sub.config.type === 'pull-wake') {
      const committed = this.#options.commit({ t: 'sub.wake', id: sub.id, gen, wake, tokenHash: null, leaseUntilMs: null, offered: tails });
      this.#unwritten.set(sub.id, gen);
      this.#options.metrics?.wakeIssued('pull-wake');
      committed.then(() => this.#writeWakeEvent(sub.id), (error: unknown) => this.#options.onBackgroundError(error));
      return;
    }
    const token = newToken();
    const committed = this.#options.commit({
      t: 'sub.wake',
      id: sub.id,
      gen,
      wake,
      tokenHash: hashToken(token),
      leaseUntilMs: clock.nowMs() + sub.config.leaseTtlMs,
      offered: tails,
    });
    this.#options.metrics?.wakeIssued('webhook');
    committed.then(
      () => this.#sendWebhook(sub, gen, wake, token, offered),
      (error: unknown) => this.#options.onBackgroundError(error),
    );
  }

  async #sendWebhook(sub: Subscription, gen: number, wakeId: string, token: string, offered: LinkView[]): Promise<void> {
    const { clock, keys, sender } = this.#options;
    const url = sub.config.webhookUrl;
    if (url === null) return;
    const body = JSON.stringify({
      subscription_id: sub.id,
      wake_id: wakeId,
      generation: gen,
      streams: offered,
      callback_url: `${sub.origin}/v1/stream/__ds/subscriptions/${encodeURIComponent(sub.id)}/callback`,
      callback_token: token,
    });
    const outcome = await sender.send({ url, body, headers: { 'webhook-signature': keys.signatureHeader(body, Math.floor(clock.nowMs() / 1000)) } });
    const now = this.#options.current(sub.id);
    // Deleted, or the lease ran out and a newer generation was issued: this answer is stale.
    if (now !== sub || sub.wake?.gen !== gen) return;
    try {
      if (outcome.ok && outcome.done) {
        this.#options.metrics?.webhookFinished('done');
        await this.#options.commit({ t: 'sub.ack', id: sub.id, gen, acks: sub.wake.offered, done: true, leaseUntilMs: null });
        this.#options.afterChange(sub);
      } else if (outcome.ok) {
        this.#options.metrics?.webhookFinished('accepted');
      } else {
        this.#options.metrics?.webhookFinished('failed');
        const attempt = sub.attempt + 1;
        await this.#options.commit({ t: 'sub.fail', id: sub.id, gen, attempt, nextAttemptAtMs: clock.nowMs() + retryDelayMs(attempt, this.#options.random) });
      }
    } catch (error) {
      this.#options.onBackgroundError(error);
    }
  }

  /** Marks the pull wake of `id` as needing its event (written) — after a restart, every unclaimed one. */
  wakeEventUnwritten(id: string): void {
    const sub = this.#options.current(id);
    if (sub?.wake != null) this.#unwritten.set(id, sub.wake.gen);
  }

  /** A claim took the wake: its event is no longer needed. */
  wakeEventWritten(id: string): void {
    this.#unwritten.delete(id);
  }

  /** Tries again every pull wake whose event is not written yet (each tick). */
  retryWakeEvents(): void {
    for (const id of [...this.#unwritten.keys()]) this.#writeWakeEvent(id);
  }

  #writeWakeEvent(id: string): void {
    const sub = this.#options.current(id);
    const gen = this.#unwritten.get(id);
    if (sub === undefined || sub.wake === null || sub.wake.gen !== gen || sub.wake.holder !== null || sub.config.wakeStream === null) {
      this.#unwritten.delete(id);
      return;
    }
    const event: WakeEvent = { type: 'wake', subscription_id: id, stream: sub.wake.offered[0]?.[0] ?? '', generation: gen, ts: this.#options.clock.nowMs() };
    this.#unwritten.delete(id);
    this.#options.registry
      .append({ path: sub.config.wakeStream, contentType: 'application/json', body: Buffer.from(JSON.stringify(event)), close: false, producer: undefined, streamSeq: undefined })
      .catch(() => {
        // Wake stream missing or WAL busy: try again next tick, unless a newer wake replaced it.
        if (this.#options.current(id)?.wake?.gen === gen && !this.#unwritten.has(id)) this.#unwritten.set(id, gen);
      });
  }
}
