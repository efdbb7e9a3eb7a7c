/**
 * A subscription's configuration (PROTOCOL.md §6.2): parsing and validation of the `PUT` body,
 * normalization, and the hash that makes create idempotent (same hash → 200, other → 409).
 * The glob rules of `pattern`: `*` matches one path segment, `**` zero or more segments.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { LEASE_TTL_MS_DEFAULT, LEASE_TTL_MS_MAX, LEASE_TTL_MS_MIN, SUBSCRIPTION_EXPLICIT_STREAMS_MAX } from '../config/limits.ts';
import { BadRequestError } from '../protocol/errors.ts';

/** The normalized configuration: what is hashed, stored in the WAL and served back. */
export interface SubscriptionConfig {
  type: 'webhook' | 'pull-wake';
  pattern: string | null;
  /** Explicit stream-root-relative paths, sorted and without duplicates. */
  streams: string[];
  webhookUrl: string | null;
  wakeStream: string | null;
  leaseTtlMs: number;
  description: string | null;
}

const path = z.string().min(1).max(4096);
const bodySchema = z
  .object({
    type: z.enum(['webhook', 'pull-wake']),
    pattern: path.optional(),
    streams: z.array(path).max(SUBSCRIPTION_EXPLICIT_STREAMS_MAX).optional(),
    webhook: z.object({ url: z.string().min(1).max(2048) }).optional(),
    wake_stream: path.optional(),
    lease_ttl_ms: z.number().int().min(LEASE_TTL_MS_MIN).max(LEASE_TTL_MS_MAX).optional(),
    description: z.string().max(1024).optional(),
  })
  .loose();

/** Subscription ids: client-chosen, URL-safe, short (§6.1). */
const ID_PATTERN = /^[A-Za-z0-9._~-]{1,200}$/;

/** @throws BadRequestError for an id outside `[A-Za-z0-9._~-]{1,200}`. */
export function checkSubscriptionId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new BadRequestError('subscription id must be 1-200 characters of A-Z a-z 0-9 . _ ~ -');
  return id;
}

/** @throws BadRequestError for an empty path, `.`/`..` segments, a leading `/` or control characters. */
export function checkRelativePath(value: string): string {
  if (value.length === 0 || value.startsWith('/') || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new BadRequestError(`not a stream-root-relative path: ${JSON.stringify(value)}`);
  }
  if (value.split('/').some((segment) => segment === '.' || segment === '..' || segment === '')) {
    throw new BadRequestError(`stream path must not contain empty, . or .. segments: ${JSON.stringify(value)}`);
  }
  if (value === '__ds' || value.startsWith('__ds/')) throw new BadRequestError('paths under __ds are reserved');
  return value;
}

/**
 * Parses and normalizes a `PUT` body.
 * @throws BadRequestError for malformed JSON, a missing `pattern`/`streams`, a webhook without
 *   `webhook.url`, a pull-wake without `wake_stream`, a wake stream the subscription itself covers.
 */
export function parseSubscriptionConfig(body: Buffer): SubscriptionConfig {
  const parsed = bodySchema.safeParse(parseJsonBody(body));
  if (!parsed.success) throw new BadRequestError(`invalid subscription: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  const input = parsed.data;
  if (input.pattern === undefined && (input.streams === undefined || input.streams.length === 0)) {
    throw new BadRequestError('a subscription needs a pattern or streams');
  }
  if (input.pattern !== undefined) checkRelativePath(input.pattern.replace(/\*+/g, 'x'));
  const streams = [...new Set((input.streams ?? []).map(checkRelativePath))].sort();
  if (input.type === 'webhook' && input.webhook === undefined) throw new BadRequestError('a webhook subscription needs webhook.url');
  if (input.type === 'pull-wake' && input.wake_stream === undefined) throw new BadRequestError('a pull-wake subscription needs wake_stream');
  const config: SubscriptionConfig = {
    type: input.type,
    pattern: input.pattern ?? null,
    streams,
    webhookUrl: input.type === 'webhook' ? (input.webhook?.url ?? null) : null,
    wakeStream: input.type === 'pull-wake' ? checkRelativePath(input.wake_stream ?? '') : null,
    leaseTtlMs: input.lease_ttl_ms ?? LEASE_TTL_MS_DEFAULT,
    description: input.description ?? null,
  };
  if (config.wakeStream !== null && covers(config, compileGlob(config.pattern), config.wakeStream)) {
    throw new BadRequestError('the wake stream must not be one of the streams the subscription follows (every wake would wake it again)');
  }
  return config;
}

/** Parses a JSON request body. @throws BadRequestError */
export function parseJsonBody(body: Buffer | undefined): unknown {
  try {
    return JSON.parse((body ?? Buffer.alloc(0)).toString('utf8'));
  } catch {
    throw new BadRequestError('request body is not valid JSON');
  }
}

/** SHA-256 (hex) of the normalized configuration, in a fixed field order (§6.2). */
export function configHash(config: SubscriptionConfig): string {
  const ordered = [config.type, config.pattern, config.streams, config.webhookUrl, config.wakeStream, config.leaseTtlMs, config.description];
  return createHash('sha256').update(JSON.stringify(ordered)).digest('hex');
}

/** The anchored expression of a glob (`*` one segment, `**` zero or more segments); null for none. */
export function compileGlob(pattern: string | null): RegExp | null {
  if (pattern === null) return null;
  const segments = pattern.split('/');
  if (segments.length === 1 && segments[0] === '**') return /^.*$/s;
  let source = '';
  segments.forEach((segment, index) => {
    if (segment === '**') {
      // Zero or more whole segments: a leading one carries its separator after, others before.
      source += index === 0 ? '(?:[^/]+/)*' : '(?:/[^/]+)*';
      return;
    }
    const leadingGlobstar = index === 1 && segments[0] === '**';
    if (index > 0 && !leadingGlobstar) source += '/';
    source += segment
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('[^/]*');
  });
  return new RegExp(`^${source}$`, 's');
}

/** True when the subscription follows `streamPath` (by its glob or explicitly); O(explicit streams). */
export function covers(config: SubscriptionConfig, glob: RegExp | null, streamPath: string): boolean {
  return (glob !== null && glob.test(streamPath)) || config.streams.includes(streamPath);
}
