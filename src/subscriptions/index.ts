/**
 * Subscriptions (PROTOCOL.md §6–7) as the server builds them: the signing keys from the data
 * directory, the bounded webhook sender, the metrics, and the subscription state whose records
 * share the stream WAL.
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { Clock, RandomSource } from '../clock.ts';
import { WEBHOOK_DELIVERIES_IN_FLIGHT_MAX, WEBHOOK_DELIVERY_QUEUE_MAX, WEBHOOK_RESPONSE_BYTES_MAX, WEBHOOK_TIMEOUT_MS } from '../config/limits.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { SigningKeys } from './signing-keys.ts';
import { subscriptionMetrics } from './subscription-metrics.ts';
import { Subscriptions, type SubscriptionLog } from './subscriptions.ts';
import { WebhookSender } from './webhook-sender.ts';

export { Subscriptions } from './subscriptions.ts';
export { isSubscriptionRecord, type SubscriptionRecord } from './records.ts';
export type { SubscriptionSnapshot } from './subscription-table.ts';

/** The file holding the webhook signing keys (private; mode 0600). */
export const SIGNING_KEYS_FILE = 'webhook-signing-keys.json';

export interface OpenSubscriptionsOptions {
  dataDir: string;
  log: SubscriptionLog;
  registry: StreamRegistry;
  clock: Clock;
  random: RandomSource;
  allowLocalhostWebhooks: boolean;
  signingKeyRotateMs?: number;
  metricsRegistry?: Registry;
  onBackgroundError?: (error: unknown) => void;
}

/** Builds the subscriptions of a server (call `restore`/`apply` for recovery, then `start`). @throws Error on an unreadable key file */
export async function openSubscriptions(options: OpenSubscriptionsOptions): Promise<Subscriptions> {
  const keys = await SigningKeys.open(path.join(options.dataDir, SIGNING_KEYS_FILE), options.clock);
  const sender = new WebhookSender({
    clock: options.clock,
    allowLocalhost: options.allowLocalhostWebhooks,
    inFlightMax: WEBHOOK_DELIVERIES_IN_FLIGHT_MAX,
    queueMax: WEBHOOK_DELIVERY_QUEUE_MAX,
    timeoutMs: WEBHOOK_TIMEOUT_MS,
    responseBytesMax: WEBHOOK_RESPONSE_BYTES_MAX,
  });
  // The gauges read the count at scrape time, through this holder (the metrics come first).
  const held: { subscriptions?: Subscriptions } = {};
  const metrics =
    options.metricsRegistry === undefined
      ? undefined
      : subscriptionMetrics(options.metricsRegistry, {
          subscriptionCount: () => held.subscriptions?.count ?? 0,
          webhookInFlightCount: () => sender.inFlightCount,
          webhookQueuedCount: () => sender.queuedCount,
        });
  const subscriptions = new Subscriptions({
    log: options.log,
    registry: options.registry,
    clock: options.clock,
    random: options.random,
    keys,
    sender,
    allowLocalhostWebhooks: options.allowLocalhostWebhooks,
    signingKeyRotateMs: options.signingKeyRotateMs,
    metrics,
    onBackgroundError: options.onBackgroundError,
  });
  held.subscriptions = subscriptions;
  return subscriptions;
}
