/**
 * Subscriptions (PROTOCOL.md §6–7) as the server builds them: the signing keys (object store and
 * data directory), the bounded webhook sender, the metrics, and the subscription state whose
 * records share the stream WAL and whose copy lives in the object store
 * (docs/storage-layout.md "Subscriptions").
 */
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { Clock, RandomSource } from '../clock.ts';
import { WEBHOOK_DELIVERIES_IN_FLIGHT_MAX, WEBHOOK_DELIVERY_QUEUE_MAX, WEBHOOK_RESPONSE_BYTES_MAX, WEBHOOK_TIMEOUT_MS } from '../config/limits.ts';
import type { ObjectStore } from '../object-store/index.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { SigningKeyVault } from './signing-key-vault.ts';
import { SigningKeys } from './signing-keys.ts';
import { SubscriptionStore } from './subscription-store.ts';
import { subscriptionMetrics } from './subscription-metrics.ts';
import { Subscriptions, type SubscriptionLog } from './subscriptions.ts';
import { WebhookSender } from './webhook-sender.ts';

export { Subscriptions } from './subscriptions.ts';
export { isSubscriptionRecord, type SubscriptionRecord } from './records.ts';
export type { SubscriptionSnapshot } from './subscription-table.ts';
export type { Reconciled, StreamFinding } from './store-reconcile.ts';

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
  /** Where subscriptions and signing keys are stored besides the WAL; undefined: the WAL and the key file only. */
  stored?: {
    store: ObjectStore;
    /** This node's id (written into stored versions). */
    nodeId: string;
    /** `--metadata-flush-ms`. */
    definitionFlushMs: number;
    /** `--subscription-cursor-flush-ms`. */
    cursorFlushMs: number;
    /** `--webhook-signing-keys-secret`; undefined: the keys are stored unencrypted. */
    signingKeysSecret?: string;
  };
  /** `--public-url`: its origin is the base of `callback_url` and `jwks_url`. */
  publicUrl?: string;
}

/**
 * Builds the subscriptions of a server (call `restore`/`apply` for recovery, then `loadStored`,
 * then `start`).
 * @throws Error on an unreadable key file; SigningKeysUnreadableError (stored keys: corrupt, or
 *   another secret); store errors.
 */
export async function openSubscriptions(options: OpenSubscriptionsOptions): Promise<Subscriptions> {
  const { stored } = options;
  const vault =
    stored === undefined
      ? undefined
      : new SigningKeyVault({ store: stored.store, nodeId: stored.nodeId, clock: options.clock, secret: stored.signingKeysSecret });
  const keys = await SigningKeys.open(path.join(options.dataDir, SIGNING_KEYS_FILE), options.clock, vault);
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
    stored:
      stored === undefined
        ? undefined
        : {
            store: new SubscriptionStore({ store: stored.store, nodeId: stored.nodeId, clock: options.clock }),
            definitionFlushMs: stored.definitionFlushMs,
            cursorFlushMs: stored.cursorFlushMs,
          },
    publicOrigin: options.publicUrl?.replace(/\/+$/, ''),
  });
  held.subscriptions = subscriptions;
  return subscriptions;
}
