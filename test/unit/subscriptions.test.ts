/**
 * Subscriptions without HTTP (PROTOCOL.md §6–7): glob rules, normalization and the idempotency
 * hash, the record-apply state machine (cursors only move forward; snapshot/restore and replay give
 * the same state), signing-key rotation on a manual clock, webhook URL rules, retry backoff.
 */
import { verify, createPublicKey } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { manualClock, seededRandom } from '../../src/clock.ts';
import { WEBHOOK_RETRY_DELAY_MS_MAX, WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS } from '../../src/config/limits.ts';
import { formatOffset } from '../../src/protocol/offset.ts';
import type { SubscriptionRecord } from '../../src/subscriptions/records.ts';
import { SigningKeys } from '../../src/subscriptions/signing-keys.ts';
import { compileGlob, configHash, parseSubscriptionConfig } from '../../src/subscriptions/subscription-config.ts';
import { SubscriptionTable } from '../../src/subscriptions/subscription-table.ts';
import { retryDelayMs } from '../../src/subscriptions/wake-delivery.ts';
import { addressRefusal, checkResolvedHost, checkWebhookUrl, guardedLookup } from '../../src/subscriptions/webhook-url.ts';

describe('glob patterns (§6.2: * one segment, ** zero or more)', () => {
  test.each([
    ['events/*', 'events/a', true],
    ['events/*', 'events/a/b', false],
    ['events/*', 'events', false],
    ['events/**', 'events/a/b/c', true],
    ['events/**', 'events', true],
    ['**/log', 'log', true],
    ['**/log', 'a/b/log', true],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['**', 'anything/at/all', true],
    ['ev*/x', 'events/x', true],
    ['ev*/x', 'ev/y/x', false],
    ['a.b/*', 'aXb/c', false],
  ])('%s matches %s: %s', (pattern, path, expected) => {
    expect(compileGlob(pattern)?.test(path)).toBe(expected);
  });
});

describe('configuration', () => {
  const body = (value: unknown) => Buffer.from(JSON.stringify(value));

  test('normalization: streams sorted and de-duplicated, defaults filled; equal configurations hash equal', () => {
    const a = parseSubscriptionConfig(body({ type: 'pull-wake', streams: ['b', 'a', 'a'], wake_stream: 'w' }));
    const b = parseSubscriptionConfig(body({ type: 'pull-wake', streams: ['a', 'b'], wake_stream: 'w', lease_ttl_ms: 30_000 }));
    expect(a.streams).toEqual(['a', 'b']);
    expect(configHash(a)).toBe(configHash(b));
    const c = parseSubscriptionConfig(body({ type: 'pull-wake', streams: ['a', 'b'], wake_stream: 'w', description: 'x' }));
    expect(configHash(c)).not.toBe(configHash(a));
  });

  test.each([
    [{ type: 'webhook', pattern: 'a/*' }, 'webhook.url'],
    [{ type: 'pull-wake', pattern: 'a/*' }, 'wake_stream'],
    [{ type: 'pull-wake', wake_stream: 'w' }, 'pattern or streams'],
    [{ type: 'pull-wake', pattern: 'a/*', wake_stream: 'a/w' }, 'wake stream'],
    [{ type: 'pull-wake', pattern: 'a/*', wake_stream: 'w', lease_ttl_ms: 999 }, 'lease_ttl_ms'],
    [{ type: 'pull-wake', pattern: 'a/*', wake_stream: 'w', lease_ttl_ms: 600_001 }, 'lease_ttl_ms'],
    [{ type: 'pull-wake', streams: ['../x'], wake_stream: 'w' }, '..'],
    [{ type: 'pull-wake', streams: ['__ds/x'], wake_stream: 'w' }, 'reserved'],
    [{ type: 'other', pattern: 'a/*' }, 'type'],
  ])('%j is refused (%s)', (value, words) => {
    expect(() => parseSubscriptionConfig(body(value))).toThrow(words);
  });
});

const config = parseSubscriptionConfig(Buffer.from(JSON.stringify({ type: 'pull-wake', pattern: 'e/*', streams: ['x/1'], wake_stream: 'w' })));
const put: SubscriptionRecord = { t: 'sub.put', id: 's', config, hash: configHash(config), createdAtMs: 1, origin: 'http://h', acked: [['e/a', formatOffset(1, 10)]] };

describe('the subscription table', () => {
  test('acked cursors never move back, whatever order acks are applied in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 30 }), (positions) => {
        const table = new SubscriptionTable();
        table.apply(put);
        let highest = 10;
        for (const position of positions) {
          table.apply({ t: 'sub.ack', id: 's', gen: 0, acks: [['e/a', formatOffset(1, position)]], done: false, leaseUntilMs: null });
          highest = Math.max(highest, position);
          expect(table.get('s')?.links.get('e/a')?.acked).toBe(formatOffset(1, highest));
        }
      }),
    );
  });

  test('a replayed history and a restored snapshot of it give the same state; a stale generation changes no wake', () => {
    const history: SubscriptionRecord[] = [
      put,
      { t: 'sub.wake', id: 's', gen: 1, wake: 'w1', tokenHash: null, leaseUntilMs: null, offered: [['e/a', formatOffset(1, 20)]] },
      { t: 'sub.claim', id: 's', gen: 1, wake: 'w1', holder: 'worker', tokenHash: 'h', leaseUntilMs: 5000, offered: [['e/a', formatOffset(1, 20)]] },
      { t: 'sub.ack', id: 's', gen: 1, acks: [['e/a', formatOffset(1, 20)]], done: false, leaseUntilMs: 9000 },
      { t: 'sub.release', id: 's', gen: 0 },
      { t: 'sub.add', id: 's', links: [['x/2', null]] },
      { t: 'sub.rm', id: 's', path: 'x/1' },
    ];
    const replayed = new SubscriptionTable();
    for (const record of history) replayed.apply(record);
    const restored = new SubscriptionTable();
    restored.restore(structuredClone(replayed.snapshot()));
    expect(restored.snapshot()).toEqual(replayed.snapshot());
    const sub = replayed.get('s');
    expect(sub?.wake).toMatchObject({ gen: 1, holder: 'worker', leaseUntilMs: 9000 });
    expect(sub?.generation).toBe(1);
    expect([...(sub?.links.keys() ?? [])].sort()).toEqual(['e/a', 'x/2']);
    replayed.apply({ t: 'sub.ack', id: 's', gen: 1, acks: [], done: true, leaseUntilMs: null });
    expect(replayed.get('s')?.wake).toBeNull();
    replayed.apply({ t: 'sub.del', id: 's' });
    expect(replayed.get('s')).toBeUndefined();
  });

  test('removing an explicit link keeps the cursor while the glob still matches (§6.4)', () => {
    const table = new SubscriptionTable();
    table.apply(put);
    table.apply({ t: 'sub.add', id: 's', links: [['e/a', null]] });
    table.apply({ t: 'sub.rm', id: 's', path: 'e/a' });
    expect(table.get('s')?.links.get('e/a')).toEqual({ explicit: false, acked: formatOffset(1, 10) });
  });
});

describe('signing keys (§6.5)', () => {
  test('a rotated-out key stays published for the keep window, then signatures made with it no longer verify', async () => {
    const clock = manualClock(1_000_000);
    const keys = await SigningKeys.open(undefined, clock);
    const oldKid = keys.activeKid;
    expect(oldKid).toMatch(/^ds_[A-Za-z0-9_-]{43}$/);
    const body = '{"subscription_id":"s"}';
    const header = keys.signatureHeader(body, 1000);
    const verifies = (jwks: ReturnType<SigningKeys['jwks']>) => {
      const [, t, kid, sig] = /^t=(\d+),kid=([^,]+),ed25519=(.+)$/.exec(header) ?? [];
      const key = jwks.keys.find((candidate) => candidate.kid === kid);
      return key !== undefined && verify(null, Buffer.from(`${t}.${body}`), createPublicKey({ key: { ...key }, format: 'jwk' }), Buffer.from(sig ?? '', 'base64url'));
    };
    expect(verifies(keys.jwks())).toBe(true);
    const newKid = await keys.rotate();
    expect(newKid).not.toBe(oldKid);
    expect(keys.jwks().keys.map((key) => key.kid)).toEqual([newKid, oldKid]);
    expect(verifies(keys.jwks())).toBe(true);
    clock.advance(WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS);
    expect(keys.jwks().keys.map((key) => key.kid)).toEqual([newKid]);
    expect(verifies(keys.jwks())).toBe(false);
  });
});

describe('signing keys on disk', () => {
  test('a reopened key file keeps the keys and the rotation schedule (ages come from the file)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-keys-'));
    try {
      const file = path.join(dir, 'keys.json');
      const clock = manualClock(5_000_000);
      const first = await SigningKeys.open(file, clock);
      const kid = first.activeKid;
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      clock.advance(50_000);
      const reopened = await SigningKeys.open(file, clock);
      expect(reopened.activeKid).toBe(kid);
      expect(await reopened.rotateIfOlderThan(60_000)).toBe(false);
      clock.advance(10_000);
      expect(await reopened.rotateIfOlderThan(60_000)).toBe(true);
      const again = await SigningKeys.open(file, clock);
      expect(again.activeKid).not.toBe(kid);
      expect(again.jwks().keys.map((key) => key.kid)).toContain(kid);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('webhook URL rules (§6.2, §12.8)', () => {
  test.each(['10.0.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '127.0.0.1', '100.64.1.1', '::1', 'fd12::1', 'fe80::1', '::ffff:192.168.0.1', '64:ff9b::10.0.0.1', '224.0.0.1'])(
    '%s is refused',
    (address) => {
      expect(addressRefusal(address, false)).toBeDefined();
    },
  );
  test.each(['93.184.216.34', '2606:2800:220:1:248:1893:25c8:1946', '8.8.8.8'])('%s is allowed', (address) => {
    expect(addressRefusal(address, false)).toBeUndefined();
  });

  test('the development exception admits http://localhost and http://127.0.0.x only', () => {
    expect(checkWebhookUrl('http://localhost:8080/h', true).hostname).toBe('localhost');
    expect(checkWebhookUrl('http://127.0.0.9/h', true).hostname).toBe('127.0.0.9');
    for (const url of ['http://127.0.1.1/h', 'http://[::1]/h', 'http://10.0.0.1/h', 'http://example.com/h']) expect(() => checkWebhookUrl(url, true), url).toThrow();
    for (const url of ['http://localhost/h', 'https://localhost/h', 'https://127.0.0.1/h']) expect(() => checkWebhookUrl(url, false), url).toThrow();
    expect(checkWebhookUrl('https://example.com/h', false).protocol).toBe('https:');
  });

  test('names are checked after resolution, at create time and at connect time', async () => {
    await expect(checkResolvedHost('localhost', false)).rejects.toThrow('refused address');
    await expect(checkResolvedHost('localhost', true)).resolves.toBeUndefined();
    const lookup = guardedLookup(false);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => lookup('localhost', {}, (failure) => resolve(failure)));
    expect(error?.code).toBe('EWEBHOOKREFUSED');
    const allowed = await new Promise<NodeJS.ErrnoException | null>((resolve) => guardedLookup(true)('localhost', {}, (failure) => resolve(failure)));
    expect(allowed).toBeNull();
  });
});

describe('webhook retry backoff (§7.1)', () => {
  test('doubles from 1 s to at most 60 s, within ±20% jitter', () => {
    const random = seededRandom(7);
    for (let attempt = 1; attempt <= 12; attempt++) {
      const base = Math.min(WEBHOOK_RETRY_DELAY_MS_MAX, 1000 * 2 ** (attempt - 1));
      const delay = retryDelayMs(attempt, random);
      expect(delay).toBeGreaterThanOrEqual(base * 0.8);
      expect(delay).toBeLessThanOrEqual(base * 1.2);
    }
  });
});
