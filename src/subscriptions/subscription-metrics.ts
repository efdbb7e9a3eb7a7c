/**
 * Prometheus metrics of subscriptions, registered on the server's prom-client registry:
 * subscriptions held, wakes issued, webhook outcomes, webhook requests in flight and queued.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DeliveryMetrics } from './wake-delivery.ts';

export interface SubscriptionGauges {
  subscriptionCount(): number;
  webhookInFlightCount(): number;
  webhookQueuedCount(): number;
}

export function subscriptionMetrics(registry: Registry, gauges: SubscriptionGauges): DeliveryMetrics {
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge('cairn_subscriptions', 'Subscriptions held', gauges.subscriptionCount);
  gauge('cairn_webhook_requests_in_flight', 'Webhook wake requests running', gauges.webhookInFlightCount);
  gauge('cairn_webhook_requests_queued', 'Webhook wake requests waiting for a delivery slot', gauges.webhookQueuedCount);
  const wakes = new Counter({ name: 'cairn_subscription_wakes_total', help: 'Wakes issued, by delivery type', labelNames: ['type'], registers: [registry] });
  const webhooks = new Counter({
    name: 'cairn_webhook_deliveries_total',
    help: 'Webhook attempts by outcome: done (answered done, auto-acked), accepted (2xx, callback expected), failed (retried with backoff)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  return {
    wakeIssued: (type) => wakes.inc({ type }),
    webhookFinished: (outcome) => webhooks.inc({ outcome }),
  };
}
