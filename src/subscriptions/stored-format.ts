/**
 * The stored form of a subscription (docs/storage-layout.md "Subscriptions"): one JSON object per
 * version, `_cairn/subscriptions/sub-<id>/<version:020>.json`, written create-if-absent, version
 * n+1 only after n is stored. A version holds the whole durable state (configuration, links with
 * their acked cursors, generation, the wake in flight, the retry schedule) or, as a tombstone, the
 * life it ends (`createdAtMs` and configuration hash). Zero-padded versions make a LIST of the
 * prefix return every subscription's versions in order.
 */
import { z } from 'zod';
import { StoredDataCorruptError } from '../manifest/unit-checksum.ts';
import type { SubscriptionSnapshot } from './records.ts';

/** Prefix of every stored subscription version (the store adds `--s3-prefix`). */
export const SUBSCRIPTIONS_KEY_PREFIX = '_cairn/subscriptions/';

/** Format of the objects this code writes; a reader refuses a newer one. */
export const STORED_SUBSCRIPTION_FORMAT = 1;

/** One stored version. */
export interface StoredSubscription {
  format: typeof STORED_SUBSCRIPTION_FORMAT;
  id: string;
  version: number;
  /** Node id of the writer (its data directory, `<data-dir>/node-id`). */
  nodeId: string;
  /** Wall-clock time of the write, ms since the epoch (for operators; not used to order). */
  storedAtMs: number;
  /** The live state, or null for a tombstone. */
  state: SubscriptionSnapshot | null;
  /** A tombstone's: the life it ends (a re-created subscription of the same id has another). */
  ended: SubscriptionLife | null;
}

/** What tells one life of a subscription id from another. */
export interface SubscriptionLife {
  createdAtMs: number;
  hash: string;
}

/** The object could not be read as a stored subscription (or is of a newer format). */
export class StoredSubscriptionCorruptError extends StoredDataCorruptError {
  constructor(key: string, reason: string) {
    super(key, `stored subscription ${key} is unreadable: ${reason}`);
  }
}

/** Key prefix of subscription `id`'s versions, ending in '/'. The `sub-` keeps ids `.` and `..` valid keys. */
export function subscriptionPrefix(id: string): string {
  return `${SUBSCRIPTIONS_KEY_PREFIX}sub-${id}/`;
}

/** Key of version `version` (≥ 1) of subscription `id`. */
export function subscriptionKey(id: string, version: number): string {
  return `${subscriptionPrefix(id)}${String(version).padStart(20, '0')}.json`;
}

const KEY_RE = /^_cairn\/subscriptions\/sub-([A-Za-z0-9._~-]{1,200})\/(\d{20})\.json$/;

/** The id and version a key names, or undefined for a key of another shape. */
export function parseSubscriptionKey(key: string): { id: string; version: number } | undefined {
  const match = KEY_RE.exec(key);
  if (match === null) return undefined;
  return { id: match[1] as string, version: Number(match[2]) };
}

const pathOffset = z.tuple([z.string(), z.string()]);
const snapshotSchema = z.object({
  id: z.string(),
  config: z.object({
    type: z.enum(['webhook', 'pull-wake']),
    pattern: z.string().nullable(),
    streams: z.array(z.string()),
    webhookUrl: z.string().nullable(),
    wakeStream: z.string().nullable(),
    leaseTtlMs: z.number(),
    description: z.string().nullable(),
  }),
  hash: z.string(),
  createdAtMs: z.number(),
  origin: z.string(),
  links: z.array(z.tuple([z.string(), z.object({ explicit: z.boolean(), acked: z.string().nullable() })])),
  generation: z.number().int().min(0),
  wake: z
    .object({
      gen: z.number().int(),
      wakeId: z.string(),
      tokenHash: z.string().nullable(),
      holder: z.string().nullable(),
      leaseUntilMs: z.number().nullable(),
      offered: z.array(pathOffset),
    })
    .nullable(),
  attempt: z.number().int().min(0),
  nextAttemptAtMs: z.number().nullable(),
});
const storedSchema = z.object({
  format: z.literal(STORED_SUBSCRIPTION_FORMAT),
  id: z.string(),
  version: z.number().int().min(1),
  nodeId: z.string(),
  storedAtMs: z.number(),
  state: snapshotSchema.nullable(),
  ended: z.object({ createdAtMs: z.number(), hash: z.string() }).nullable(),
});

/** The object's bytes: JSON, fields in a fixed order (equal states encode to equal bytes). */
export function encodeStoredSubscription(stored: StoredSubscription): Uint8Array {
  return Buffer.from(JSON.stringify(stored));
}

/**
 * Reads a stored version and checks it names the id and version of its key.
 * @throws StoredSubscriptionCorruptError
 */
export function decodeStoredSubscription(key: string, body: Uint8Array): StoredSubscription {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch {
    throw new StoredSubscriptionCorruptError(key, 'not JSON');
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (typeof format === 'number' && format > STORED_SUBSCRIPTION_FORMAT) {
    throw new StoredSubscriptionCorruptError(key, `format ${format} is newer than this server reads (${STORED_SUBSCRIPTION_FORMAT})`);
  }
  const parsed = storedSchema.safeParse(json);
  if (!parsed.success) throw new StoredSubscriptionCorruptError(key, parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
  const stored = parsed.data as StoredSubscription;
  const named = parseSubscriptionKey(key);
  if (named === undefined || named.id !== stored.id || named.version !== stored.version || (stored.state !== null && stored.state.id !== stored.id)) {
    throw new StoredSubscriptionCorruptError(key, 'id or version differs from its key');
  }
  if ((stored.state === null) === (stored.ended === null)) throw new StoredSubscriptionCorruptError(key, 'exactly one of state and ended must be set');
  return stored;
}
