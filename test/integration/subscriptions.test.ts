/**
 * Subscriptions over real HTTP (PROTOCOL.md §6–7, README "Subscriptions"), beyond the upstream
 * suite: signatures verify with the discovered key; SSRF targets are refused with 400; redirects
 * are not followed; a webhook worker that stops answering loses its lease and the work is offered
 * again under a new generation while its old token is fenced; pull-wake leases expire and fence;
 * explicit links survive; state survives a restart from the WAL and from a checkpoint; the
 * `subscribe` grant is required and covers only what the token can read.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { sha256Hex } from '../../src/auth/tokens-file.ts';
import { systemClock } from '../../src/clock.ts';
import { WebhookSender } from '../../src/subscriptions/webhook-sender.ts';
import { startServer } from '../../src/server.ts';
import { startTestServer, testConfig, type TestServer } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';
import { startWebhookReceiver, verifySignature, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { pino } from 'pino';

let server: TestServer;
const receivers: WebhookReceiver[] = [];
beforeAll(async () => {
  server = await startTestServer({ allowLocalhostWebhooks: true });
});
afterAll(async () => {
  for (const receiver of receivers) await receiver.close();
  await server?.stop();
});

async function receiver(respond?: Parameters<typeof startWebhookReceiver>[0]): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver(respond);
  receivers.push(started);
  return started;
}

const json = { 'content-type': 'application/json' };
const subUrl = (base: string, id: string) => `${base}/v1/stream/__ds/subscriptions/${id}`;
const put = (base: string, id: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(subUrl(base, id), { method: 'PUT', headers: { ...json, ...headers }, body: JSON.stringify(body) });
const post = (url: string, body: unknown, token?: string) =>
  fetch(url, { method: 'POST', headers: { ...json, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) });
const createStream = (base: string, name: string, body = '{"n":0}') => fetch(`${base}/v1/stream/${name}`, { method: 'PUT', headers: json, body });
const append = (base: string, name: string, body: string) => fetch(`${base}/v1/stream/${name}`, { method: 'POST', headers: json, body });

describe('webhook signing', () => {
  test('a wake verifies with the key the JWKS serves, and not once that key is gone', async () => {
    const hook = await receiver();
    const created = await put(server.url, 'sign-1', { type: 'webhook', pattern: 'sign/*', webhook: { url: hook.url } });
    expect(created.status).toBe(201);
    const { webhook } = (await created.json()) as { webhook: { signing: { kid: string; jwks_url: string } } };
    await createStream(server.url, 'sign/a');
    const wake = await hook.nth(1);
    const jwksResponse = await fetch(webhook.signing.jwks_url);
    expect(jwksResponse.headers.get('content-type')).toContain('application/jwk-set+json');
    const jwks = (await jwksResponse.json()) as { keys: { kid: string }[] };
    expect(wake.signature).toContain(`kid=${webhook.signing.kid}`);
    expect(verifySignature(wake.rawBody, wake.signature, jwks)).toBe(true);
    // A body changed by one byte does not verify; neither does the right body under a key set without the signing key.
    expect(verifySignature(wake.rawBody.replace('sign-1', 'sign-2'), wake.signature, jwks)).toBe(false);
    expect(verifySignature(wake.rawBody, wake.signature, { keys: jwks.keys.filter((key) => key.kid !== webhook.signing.kid) })).toBe(false);
    await fetch(subUrl(server.url, 'sign-1'), { method: 'DELETE' });
  });
});

describe('SSRF rules (§6.2, §12.8)', () => {
  test.each([
    'http://10.0.0.1/hook',
    'https://10.1.2.3/hook',
    'https://172.16.0.1/hook',
    'https://192.168.1.1/hook',
    'https://169.254.169.254/latest/meta-data',
    'https://100.64.0.1/hook',
    'https://0.0.0.0/hook',
    'https://[::1]/hook',
    'https://[fd00::1]/hook',
    'https://[fe80::1]/hook',
    'https://[::ffff:10.0.0.1]/hook',
    'http://example.com/hook',
    'ftp://example.com/hook',
    'http://127.0.1.1/hook',
    'http://user:pass@127.0.0.1/hook',
  ])('%s is refused with 400 WEBHOOK_URL_REJECTED', async (url) => {
    const response = await put(server.url, `ssrf-${receivers.length}-${url.length}`, { type: 'webhook', pattern: 'ssrf/*', webhook: { url } });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('WEBHOOK_URL_REJECTED');
  });

  test('without the development setting, localhost and 127.0.0.1 are refused too, also by name after DNS resolution', async () => {
    const strict = await startTestServer();
    try {
      for (const url of ['http://127.0.0.1:9/hook', 'https://127.0.0.1:9/hook', 'https://localhost:9/hook', 'http://localhost:9/hook']) {
        const response = await put(strict.url, 'strict', { type: 'webhook', pattern: 'x/*', webhook: { url } });
        expect(response.status, url).toBe(400);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe('WEBHOOK_URL_REJECTED');
      }
    } finally {
      await strict.stop();
    }
  });

  test('a redirect is not followed (it could point anywhere): the delivery fails and is retried later', async () => {
    const target = await receiver();
    const redirecting = await receiver(() => ({ status: 302, headers: { location: target.url } }));
    expect((await put(server.url, 'redirect-1', { type: 'webhook', pattern: 'redirect/*', webhook: { url: redirecting.url } })).status).toBe(201);
    await createStream(server.url, 'redirect/a');
    await redirecting.nth(1);
    await waitFor(async () => ((await (await fetch(subUrl(server.url, 'redirect-1'))).json()) as { status: string }).status === 'failed');
    expect(target.received).toHaveLength(0);
    await fetch(subUrl(server.url, 'redirect-1'), { method: 'DELETE' });
  });
});

describe('leases and fencing (§7.3)', () => {
  test('a webhook worker that stops answering loses its lease; the work is re-offered and its old token is fenced', async () => {
    const hook = await receiver(); // answers 200 {} and never calls back
    expect((await put(server.url, 'lease-1', { type: 'webhook', pattern: 'lease/*', webhook: { url: hook.url }, lease_ttl_ms: 1000 })).status).toBe(201);
    await createStream(server.url, 'lease/a');
    const first = await hook.nth(1);
    const second = await hook.nth(2, 30_000);
    expect(second.body.generation).toBeGreaterThan(first.body.generation);
    expect(second.body.wake_id).not.toBe(first.body.wake_id);
    expect(second.body.streams.map((stream) => stream.path)).toContain('lease/a');
    const tail = second.body.streams.find((stream) => stream.path === 'lease/a')?.tail_offset;
    const stale = await post(first.body.callback_url, { wake_id: first.body.wake_id, generation: first.body.generation, acks: [{ stream: 'lease/a', offset: tail }], done: true }, first.body.callback_token);
    expect(stale.status).toBe(409);
    expect(((await stale.json()) as { error: { code: string } }).error.code).toBe('FENCED');
    await fetch(subUrl(server.url, 'lease-1'), { method: 'DELETE' });
  });

  test('pull-wake: ack without done is a heartbeat; an expired lease fences the worker and a new wake event is written', async () => {
    await createStream(server.url, 'pwake/pool', '[]');
    expect((await put(server.url, 'pull-1', { type: 'pull-wake', pattern: 'pull/*', wake_stream: 'pwake/pool', lease_ttl_ms: 1000 })).status).toBe(201);
    await createStream(server.url, 'pull/a');
    const wakeEvents = async () => (await (await fetch(`${server.url}/v1/stream/pwake/pool`)).json()) as { subscription_id: string; generation: number }[];
    await waitFor(async () => (await wakeEvents()).length >= 1);
    const claim = await post(`${subUrl(server.url, 'pull-1')}/claim`, { worker: 'w1' });
    expect(claim.status).toBe(200);
    const claimed = (await claim.json()) as { wake_id: string; generation: number; token: string; streams: { path: string; tail_offset: string }[] };
    expect(claimed.generation).toBe((await wakeEvents())[0]?.generation);
    const beat = await post(`${subUrl(server.url, 'pull-1')}/ack`, { wake_id: claimed.wake_id, generation: claimed.generation, acks: [] }, claimed.token);
    expect(beat.status).toBe(200);
    // A wrong token is fenced even with the right generation.
    const forged = await post(`${subUrl(server.url, 'pull-1')}/ack`, { wake_id: claimed.wake_id, generation: claimed.generation, acks: [] }, 'not-the-token');
    expect(forged.status).toBe(409);
    await waitFor(async () => (await wakeEvents()).length >= 2, 30_000);
    const late = await post(`${subUrl(server.url, 'pull-1')}/ack`, { wake_id: claimed.wake_id, generation: claimed.generation, acks: [], done: true }, claimed.token);
    expect(late.status).toBe(409);
    const events = await wakeEvents();
    expect(events[1]?.generation).toBeGreaterThan(claimed.generation);
    const again = (await (await post(`${subUrl(server.url, 'pull-1')}/claim`, { worker: 'w2' })).json()) as typeof claimed;
    const done = await post(`${subUrl(server.url, 'pull-1')}/ack`, { wake_id: again.wake_id, generation: again.generation, acks: again.streams.map((s) => ({ stream: s.path, offset: s.tail_offset })), done: true }, again.token);
    expect(await done.json()).toEqual({ ok: true, next_wake: false });
    const nothing = await post(`${subUrl(server.url, 'pull-1')}/claim`, { worker: 'w3' });
    expect(nothing.status).toBe(409);
    expect(((await nothing.json()) as { error: { code: string } }).error.code).toBe('NO_PENDING_WORK');
  });
});

describe('control', () => {
  test('create is idempotent by configuration: 201, 200, then 409 for a different one; unknown __ds paths are 404, not streams', async () => {
    const config = { type: 'pull-wake', streams: ['ctl/b', 'ctl/a', 'ctl/a'], wake_stream: 'ctl-wake' };
    expect((await put(server.url, 'ctl-1', config)).status).toBe(201);
    expect((await put(server.url, 'ctl-1', { ...config, streams: ['ctl/a', 'ctl/b'] })).status).toBe(200);
    expect((await put(server.url, 'ctl-1', { ...config, lease_ttl_ms: 5000 })).status).toBe(409);
    expect((await fetch(`${server.url}/v1/stream/__ds/other`, { method: 'PUT', headers: json, body: '{}' })).status).toBe(404);
    expect((await put(server.url, 'bad', { type: 'pull-wake', pattern: 'w/*', wake_stream: 'w/x' })).status).toBe(400);
    expect((await put(server.url, 'bad', { type: 'webhook', webhook: { url: 'https://example.com' } })).status).toBe(400);
  });

  test('existing matching streams are linked at their tail; new ones at their start', async () => {
    await createStream(server.url, 'backfill/old', '{"n":1}');
    expect((await put(server.url, 'backfill-1', { type: 'pull-wake', pattern: 'backfill/**', wake_stream: 'backfill-wake' })).status).toBe(201);
    await createStream(server.url, 'backfill/x/new', '{"n":2}');
    const body = (await (await fetch(subUrl(server.url, 'backfill-1'))).json()) as { streams: { path: string; acked_offset: string }[] };
    const old = body.streams.find((stream) => stream.path === 'backfill/old');
    const fresh = body.streams.find((stream) => stream.path === 'backfill/x/new');
    const oldTail = (await fetch(`${server.url}/v1/stream/backfill/old`, { method: 'HEAD' })).headers.get('stream-next-offset');
    expect(old?.acked_offset).toBe(oldTail);
    expect(fresh?.acked_offset).toMatch(/_0{16}0$/);
  });
});

describe('restart', () => {
  test('configuration, acked cursors and generations survive a restart, from the WAL and from a checkpoint', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-subs-'));
    const open = () => startServer(testConfig(dataDir, { durability: 'wal' }), { logger: pino({ level: 'warn' }) });
    try {
      let running = await open();
      await createStream(running.url, 'rs/pool', '[]');
      expect((await put(running.url, 'rs-1', { type: 'pull-wake', pattern: 'rs/s*', wake_stream: 'rs/pool', lease_ttl_ms: 60_000 })).status).toBe(201);
      await createStream(running.url, 'rs/s1');
      const claimed = (await (await post(`${subUrl(running.url, 'rs-1')}/claim`, { worker: 'w' })).json()) as { wake_id: string; generation: number; token: string; streams: { path: string; tail_offset: string }[] };
      const ack = await post(`${subUrl(running.url, 'rs-1')}/ack`, { wake_id: claimed.wake_id, generation: claimed.generation, acks: claimed.streams.map((s) => ({ stream: s.path, offset: s.tail_offset })) }, claimed.token);
      expect(ack.status).toBe(200);
      const before = await (await fetch(subUrl(running.url, 'rs-1'))).json();
      await running.close();

      running = await open();
      expect(await (await fetch(subUrl(running.url, 'rs-1'))).json()).toEqual(before);
      // The lease survived too: the holder's token still works, a second worker is refused.
      expect((await post(`${subUrl(running.url, 'rs-1')}/claim`, { worker: 'other' })).status).toBe(409);
      const done = await post(`${subUrl(running.url, 'rs-1')}/ack`, { wake_id: claimed.wake_id, generation: claimed.generation, acks: [], done: true }, claimed.token);
      expect(done.status).toBe(200);
      await running.checkpoint();
      await append(running.url, 'rs/s1', '{"n":1}');
      await running.close();

      running = await open();
      const next = (await (await post(`${subUrl(running.url, 'rs-1')}/claim`, { worker: 'w' })).json()) as typeof claimed;
      expect(next.generation).toBeGreaterThan(claimed.generation);
      const acked = ((await (await fetch(subUrl(running.url, 'rs-1'))).json()) as { streams: { acked_offset: string }[] }).streams[0]?.acked_offset;
      expect(acked).toBe(claimed.streams[0]?.tail_offset);
      await running.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the subscribe grant', () => {
  let authed: TestServer;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-subs-auth-'));
    const file = path.join(dir, 'tokens.yaml');
    await writeFile(
      file,
      `tokens:
  - name: worker
    sha256: ${sha256Hex('worker-token-0123456789')}
    grants: [{ paths: ["jobs/**"], operations: [read, subscribe] }, { paths: ["wake/**"], operations: [write] }]
  - name: reader
    sha256: ${sha256Hex('reader-token-0123456789')}
    grants: [{ paths: ["**"], operations: [read] }]
`,
    );
    authed = await startTestServer({ authTokensFile: file });
  });
  afterAll(async () => {
    await authed?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('needs subscribe and read on every covered stream, and write on the wake stream', async () => {
    const worker = { authorization: 'Bearer worker-token-0123456789' };
    const reader = { authorization: 'Bearer reader-token-0123456789' };
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs/*', wake_stream: 'wake/w' })).status).toBe(401);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs/*', wake_stream: 'wake/w' }, reader)).status).toBe(403);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'other/**', wake_stream: 'wake/w' }, worker)).status).toBe(403);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs*/*', wake_stream: 'wake/w' }, worker)).status).toBe(403);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs/*', streams: ['other/x'], wake_stream: 'wake/w' }, worker)).status).toBe(403);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs/*', wake_stream: 'elsewhere' }, worker)).status).toBe(403);
    expect((await put(authed.url, 'a-1', { type: 'pull-wake', pattern: 'jobs/*', wake_stream: 'wake/w' }, worker)).status).toBe(201);
    expect((await fetch(subUrl(authed.url, 'a-1'), { headers: reader })).status).toBe(403);
    expect((await fetch(subUrl(authed.url, 'a-1'), { headers: worker })).status).toBe(200);
  });
});

describe('webhook sender bounds and metrics', () => {
  test('at most inFlightMax requests run, queueMax wait, and more are refused at once', async () => {
    const held: (() => void)[] = [];
    const slow = http.createServer((req, res) => {
      req.resume();
      held.push(() => res.writeHead(200, json).end('{"done":true}'));
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    const port = (slow.address() as { port: number }).port;
    const sender = new WebhookSender({ clock: systemClock, allowLocalhost: true, inFlightMax: 2, queueMax: 1, timeoutMs: 30_000, responseBytesMax: 1024 });
    try {
      const request = { url: `http://127.0.0.1:${port}/h`, body: '{}', headers: {} };
      const sends = [sender.send(request), sender.send(request), sender.send(request)];
      expect(await sender.send(request)).toEqual({ ok: false, reason: 'webhook delivery queue is full' });
      await waitFor(() => held.length === 2);
      expect(sender.inFlightCount).toBe(2);
      expect(sender.queuedCount).toBe(1);
      held.splice(0).forEach((release) => release());
      await waitFor(() => held.length === 1);
      held.splice(0).forEach((release) => release());
      expect(await Promise.all(sends)).toEqual([
        { ok: true, done: true },
        { ok: true, done: true },
        { ok: true, done: true },
      ]);
      // A loopback target is refused at connect time when the exception is off.
      const strict = new WebhookSender({ clock: systemClock, allowLocalhost: false, inFlightMax: 1, queueMax: 0, timeoutMs: 5_000, responseBytesMax: 1024 });
      const refused = await strict.send({ url: `http://localhost:${port}/h`, body: '{}', headers: {} });
      expect(refused.ok).toBe(false);
    } finally {
      slow.closeAllConnections();
      slow.close();
    }
  });

  // Runs after the tests above on the same server: the lease test's wakes were accepted, the redirect test's failed.
  test('wakes and webhook outcomes are counted at /metrics', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/^cairn_subscription_wakes_total\{type="webhook"\} [1-9]/m);
    expect(text).toMatch(/^cairn_webhook_deliveries_total\{outcome="accepted"\} [1-9]/m);
    expect(text).toMatch(/^cairn_webhook_deliveries_total\{outcome="failed"\} [1-9]/m);
    expect(text).toMatch(/^cairn_subscriptions \d+/m);
    expect(text).toMatch(/^cairn_webhook_requests_in_flight \d+/m);
  });
});
