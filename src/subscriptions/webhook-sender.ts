/**
 * Sends webhook wake notifications (PROTOCOL.md §7.1): one POST per wake, signed, through
 * node:http(s) with the SSRF-guarded name lookup (webhook-url.ts), never following redirects,
 * with a timeout on the injected clock and a bounded response body. At most `inFlightMax`
 * requests run at once across all subscriptions; up to `queueMax` more wait in FIFO order; past
 * that, `send` refuses at once (the caller treats it as a failed attempt and retries later).
 */
import http from 'node:http';
import https from 'node:https';
import type { Clock } from '../clock.ts';
import { guardedLookup } from './webhook-url.ts';

/** What one attempt came to. `done`: the receiver answered `{ "done": true }` (§7.1). */
export type DeliveryOutcome = { ok: true; done: boolean } | { ok: false; reason: string };

export interface WebhookSenderOptions {
  clock: Clock;
  allowLocalhost: boolean;
  inFlightMax: number;
  queueMax: number;
  timeoutMs: number;
  responseBytesMax: number;
}

export interface WebhookRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
}

export class WebhookSender {
  readonly #options: WebhookSenderOptions;
  readonly #lookup: ReturnType<typeof guardedLookup>;
  readonly #queue: (() => void)[] = [];
  #inFlight = 0;

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
    this.#lookup = guardedLookup(options.allowLocalhost);
  }

  /** Requests running now. */
  get inFlightCount(): number {
    return this.#inFlight;
  }

  /** Requests waiting for a slot. */
  get queuedCount(): number {
    return this.#queue.length;
  }

  /** Sends `request` when a slot is free; resolves with the outcome, never rejects. */
  async send(request: WebhookRequest): Promise<DeliveryOutcome> {
    if (this.#inFlight >= this.#options.inFlightMax) {
      if (this.#queue.length >= this.#options.queueMax) return { ok: false, reason: 'webhook delivery queue is full' };
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    }
    this.#inFlight++;
    try {
      return await this.#post(request);
    } finally {
      this.#inFlight--;
      this.#queue.shift()?.();
    }
  }

  #post(request: WebhookRequest): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      const url = new URL(request.url);
      const transport = url.protocol === 'https:' ? https : http;
      let settled = false;
      const finish = (outcome: DeliveryOutcome): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(outcome);
      };
      const req = transport.request(
        url,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(request.body), ...request.headers },
          lookup: this.#lookup as unknown as http.RequestOptions['lookup'],
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 300 && status < 400) {
            res.resume();
            return finish({ ok: false, reason: `webhook answered ${status}; redirects are not followed` });
          }
          if (status < 200 || status >= 300) {
            res.resume();
            return finish({ ok: false, reason: `webhook answered ${status}` });
          }
          const chunks: Buffer[] = [];
          let length = 0;
          res.on('data', (chunk: Buffer) => {
            length += chunk.length;
            if (length > this.#options.responseBytesMax) {
              res.destroy();
              return finish({ ok: true, done: false });
            }
            chunks.push(chunk);
          });
          res.on('end', () => finish({ ok: true, done: isDone(Buffer.concat(chunks)) }));
          res.on('error', (error) => finish({ ok: false, reason: error.message }));
        },
      );
      const timer = this.#options.clock.setTimeout(() => {
        req.destroy(new Error(`no answer in ${this.#options.timeoutMs} ms`));
      }, this.#options.timeoutMs);
      req.on('error', (error) => finish({ ok: false, reason: error.message }));
      req.end(request.body);
    });
  }
}

function isDone(body: Buffer): boolean {
  try {
    return (JSON.parse(body.toString('utf8')) as { done?: unknown } | null)?.done === true;
  } catch {
    return false;
  }
}
