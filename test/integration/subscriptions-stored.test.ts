/**
 * Subscriptions in the object store (docs/storage-layout.md "Subscriptions", README
 * "Subscriptions"): a server over an object store that outlives its data directory (a filesystem
 * store in its own directory) creates a webhook and a pull-wake subscription, delivers and acks a
 * round of appends, gets a second round it does not ack, stops, loses its data directory, and a
 * server started on an empty one over the same store lists the subscriptions with their acked
 * cursors, signs with the same keys, and re-offers exactly the unacked work (at-least-once). A
 * deleted subscription stays deleted. Glob-link cursors of deleted streams are pruned, live and
 * at replay, and are not stored.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { ServeConfig } from '../../src/config/serve-config.ts';
import { FsObjectStore } from '../../src/object-store/index.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { SubscriptionStore } from '../../src/subscriptions/subscription-store.ts';
import { testConfig } from '../support/server.ts';
import { waitFor } from '../support/streams.ts';
import { startWebhookReceiver, verifySignature, type WebhookReceiver } from '../support/webhook-receiver.ts';

const json = { 'content-type': 'application/json' };
const subUrl = (base: string, id: string) => `${base}/v1/stream/__ds/subscriptions/${id}`;
const put = (base: string, id: string, body: unknown) => fetch(subUrl(base, id), { method: 'PUT', headers: json, body: JSON.stringify(body) });
const post = (url: string, body: unknown, token?: string) =>
  fetch(url, { method: 'POST', headers: { ...json, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) });
const createStream = (base: string, name: string, body = '{"n":0}') => fetch(`${base}/v1/stream/${name}`, { method: 'PUT', headers: json, body });
const append = (base: string, name: string, body: string) => fetch(`${base}/v1/stream/${name}`, { method: 'POST', headers: json, body });

interface SubView {
  streams: { path: string; link_type: string; acked_offset: string }[];
  webhook: { signing: { kid: string } } | null;
}
interface Claim {
  wake_id: string;
  generation: number;
  token: string;
  streams: { path: string; acked_offset: string; tail_offset: string; has_pending: boolean }[];
}

let root: string;
const receivers: WebhookReceiver[] = [];
const running: RunningServer[] = [];
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-subs-stored-'));
});
afterAll(async () => {
  for (const server of running) await server.close().catch(() => {});
  for (const receiver of receivers) await receiver.close();
  await rm(root, { recursive: true, force: true });
});

/** A server on `dataDir` over the store in `objectsDir` (kept when the data directory goes). */
async function open(dataDir: string, objectsDir: string, overrides: Partial<ServeConfig> = {}): Promise<RunningServer> {
  const config = testConfig(dataDir, { allowLocalhostWebhooks: true, sealIdleMs: 0, metadataFlushMs: 20, subscriptionCursorFlushMs: 20, ...overrides });
  const server = await startServer(config, { logger: pino({ level: 'warn' }), objectStore: new FsObjectStore({ rootDir: objectsDir }) });
  running.push(server);
  return server;
}

const sealed = (server: RunningServer, name: string) => {
  const stream = server.registry.get(name, { touch: false });
  return stream.sealedOffset === stream.durableOffset;
};

test('a server on an empty data directory over the same store lists every subscription and delivers from the stored cursors', { timeout: 60_000 }, async () => {
  const objectsDir = path.join(root, 'objects-1');
  const firstDir = path.join(root, 'data-1a');
  const hook = await startWebhookReceiver();
  receivers.push(hook);

  const first = await open(firstDir, objectsDir);
  expect((await createStream(first.url, 'wake/pool', '[]')).status).toBe(201);
  expect((await createStream(first.url, 'orders/a')).status).toBe(201);
  expect((await createStream(first.url, 'mail/x')).status).toBe(201);
  expect((await put(first.url, 'orders', { type: 'pull-wake', pattern: 'orders/*', wake_stream: 'wake/pool', lease_ttl_ms: 60_000 })).status).toBe(201);
  const mailer = await put(first.url, 'mailer', { type: 'webhook', pattern: 'mail/*', webhook: { url: hook.url }, lease_ttl_ms: 60_000 });
  expect(mailer.status).toBe(201);
  const { webhook } = (await mailer.json()) as SubView;
  expect((await put(first.url, 'gone', { type: 'pull-wake', streams: ['orders/a'], wake_stream: 'wake/pool' })).status).toBe(201);
  expect((await fetch(subUrl(first.url, 'gone'), { method: 'DELETE' })).status).toBe(204);
  const jwksBefore = (await (await fetch(`${first.url}/v1/stream/__ds/jwks.json`)).json()) as { keys: { kid: string }[] };

  // Round 1, delivered and acked: the webhook by callback, the pull wake by claim and ack.
  expect((await append(first.url, 'orders/a', '{"n":1}')).status).toBe(204);
  expect((await append(first.url, 'mail/x', '{"n":1}')).status).toBe(204);
  const wake1 = await hook.nth(1);
  const mailOffer = wake1.body.streams.find((stream) => stream.path === 'mail/x');
  expect(mailOffer?.has_pending).toBe(true);
  const ackedMail = mailOffer?.tail_offset ?? '';
  const callback = await post(wake1.body.callback_url, { wake_id: wake1.body.wake_id, generation: wake1.body.generation, acks: [{ stream: 'mail/x', offset: ackedMail }], done: true }, wake1.body.callback_token);
  expect(callback.status).toBe(200);
  const claim1 = (await (await post(`${subUrl(first.url, 'orders')}/claim`, { worker: 'w1' })).json()) as Claim;
  const ackedOrders = claim1.streams.find((stream) => stream.path === 'orders/a')?.tail_offset ?? '';
  expect(ackedOrders).not.toBe('');
  const ack1 = await post(`${subUrl(first.url, 'orders')}/ack`, { wake_id: claim1.wake_id, generation: claim1.generation, acks: [{ stream: 'orders/a', offset: ackedOrders }], done: true }, claim1.token);
  expect(ack1.status).toBe(200);

  // Round 2, offered but never acked: the webhook answers 200 {} and is left hanging, nobody claims.
  expect((await append(first.url, 'orders/a', '{"n":2}')).status).toBe(204);
  expect((await append(first.url, 'mail/x', '{"n":2}')).status).toBe(204);
  const wake2 = await hook.nth(2);
  await waitFor(() => ['orders/a', 'mail/x', 'wake/pool'].every((name) => sealed(first, name)));
  const views = {
    orders: (await (await fetch(subUrl(first.url, 'orders'))).json()) as SubView,
    mailer: (await (await fetch(subUrl(first.url, 'mailer'))).json()) as SubView,
  };
  expect(views.orders.streams).toEqual([{ path: 'orders/a', link_type: 'glob', acked_offset: ackedOrders }]);
  expect(views.mailer.streams).toEqual([{ path: 'mail/x', link_type: 'glob', acked_offset: ackedMail }]);
  // The cursors reach the store within --subscription-cursor-flush-ms, before any shutdown drain.
  const reader = new SubscriptionStore({ store: new FsObjectStore({ rootDir: objectsDir }), nodeId: 'reader', clock: { nowMs: () => 0 } });
  await waitFor(async () => {
    const stored = await reader.loadAll();
    const acked = (id: string, stream: string) => stored.get(id)?.state?.links.find(([path]) => path === stream)?.[1].acked;
    return acked('orders', 'orders/a') === ackedOrders && acked('mailer', 'mail/x') === ackedMail;
  });
  await first.close();
  await rm(firstDir, { recursive: true, force: true });

  // The data directory is gone; the store is not. Same address: stored callback URLs name it.
  const second = await open(path.join(root, 'data-1b'), objectsDir, { port: Number(new URL(first.url).port) });
  expect(await (await fetch(subUrl(second.url, 'orders'))).json()).toEqual(views.orders);
  const mailerAfter = (await (await fetch(subUrl(second.url, 'mailer'))).json()) as SubView;
  expect(mailerAfter).toEqual(views.mailer);
  expect(mailerAfter.webhook?.signing.kid).toBe(webhook?.signing.kid);
  expect((await fetch(subUrl(second.url, 'gone'))).status).toBe(404);

  // The webhook is woken again for the unacked round, from the stored cursor, signed with the same key.
  const wake3 = await hook.nth(3);
  expect(wake3.body.generation).toBeGreaterThan(wake2.body.generation);
  const reoffer = wake3.body.streams.find((stream) => stream.path === 'mail/x');
  expect(reoffer?.acked_offset).toBe(ackedMail);
  expect(reoffer?.has_pending).toBe(true);
  expect(reoffer && reoffer.tail_offset > ackedMail).toBe(true);
  expect(verifySignature(wake3.rawBody, wake3.signature, jwksBefore)).toBe(true);
  // The hanging wake of the lost process is fenced; the new one is acknowledged.
  const stale = await post(wake2.body.callback_url, { wake_id: wake2.body.wake_id, generation: wake2.body.generation, acks: [], done: true }, wake2.body.callback_token);
  expect(stale.status).toBe(409);
  const done3 = await post(wake3.body.callback_url, { wake_id: wake3.body.wake_id, generation: wake3.body.generation, acks: [{ stream: 'mail/x', offset: reoffer?.tail_offset }], done: true }, wake3.body.callback_token);
  expect(done3.status).toBe(200);

  // The pull wake: a worker claims the unacked round from the stored cursor.
  const claim2 = (await (await post(`${subUrl(second.url, 'orders')}/claim`, { worker: 'w2' })).json()) as Claim;
  const pending = claim2.streams.find((stream) => stream.path === 'orders/a');
  expect(pending?.acked_offset).toBe(ackedOrders);
  expect(pending?.has_pending).toBe(true);
  expect(claim2.generation).toBeGreaterThan(claim1.generation);
  // The wake stream got an event for it (written again at start).
  const events = (await (await fetch(`${second.url}/v1/stream/wake/pool?offset=-1`)).json()) as { subscription_id: string; generation: number }[];
  expect(events.some((event) => event.subscription_id === 'orders' && event.generation > claim1.generation)).toBe(true);
  const ack2 = await post(`${subUrl(second.url, 'orders')}/ack`, { wake_id: claim2.wake_id, generation: claim2.generation, acks: [{ stream: 'orders/a', offset: pending?.tail_offset }], done: true }, claim2.token);
  expect(ack2.status).toBe(200);

  // New appends on the new node are delivered as usual.
  expect((await append(second.url, 'mail/x', '{"n":3}')).status).toBe(204);
  const wake4 = await hook.nth(4);
  expect(wake4.body.streams.find((stream) => stream.path === 'mail/x')?.acked_offset).toBe(reoffer?.tail_offset);
  await second.close();
});

test('a created subscription is in the store before it is answered, whatever the budgets, with --public-url as its origin', { timeout: 30_000 }, async () => {
  const objectsDir = path.join(root, 'objects-2');
  const first = await open(path.join(root, 'data-2a'), objectsDir, { subscriptionCursorFlushMs: 3_600_000, metadataFlushMs: 3_600_000, publicUrl: 'https://cairn.example/base/' });
  expect((await createStream(first.url, 'w2/pool', '[]')).status).toBe(201);
  expect((await put(first.url, 'early', { type: 'pull-wake', streams: ['e/one'], wake_stream: 'w2/pool' })).status).toBe(201);
  // Stored before the 201, whatever the budgets: another node reading the store sees it now.
  const stored = await new SubscriptionStore({ store: new FsObjectStore({ rootDir: objectsDir }), nodeId: 'reader', clock: { nowMs: () => 0 } }).loadAll();
  expect(stored.get('early')?.state?.config.streams).toEqual(['e/one']);
  // Callbacks and keys are addressed by --public-url, not by the address the request came to.
  expect(stored.get('early')?.state?.origin).toBe('https://cairn.example/base');
  const hook = await put(first.url, 'early-hook', { type: 'webhook', streams: ['e/one'], webhook: { url: 'http://127.0.0.1:9/hook' } });
  expect(((await hook.json()) as { webhook: { signing: { jwks_url: string } } }).webhook.signing.jwks_url).toBe('https://cairn.example/base/v1/stream/__ds/jwks.json');
  await first.close();
});

test('glob-link cursors of deleted streams are pruned, live and after a restart, and are not stored', { timeout: 30_000 }, async () => {
  const objectsDir = path.join(root, 'objects-3');
  const dataDir = path.join(root, 'data-3');
  const hook = await startWebhookReceiver(() => ({ status: 200, body: { done: true } }));
  receivers.push(hook);
  let server = await open(dataDir, objectsDir);
  expect((await put(server.url, 'pr', { type: 'webhook', pattern: 'pr/*', streams: ['keep/x'], webhook: { url: hook.url } })).status).toBe(201);
  expect((await createStream(server.url, 'pr/a')).status).toBe(201);
  expect((await createStream(server.url, 'pr/b')).status).toBe(201);
  const links = () => server.subscriptions.get('pr').links;
  // Auto-acked on `done`: both streams have a cursor entry.
  await waitFor(() => links().get('pr/a')?.acked != null && links().get('pr/b')?.acked != null);

  expect((await fetch(`${server.url}/v1/stream/pr/a`, { method: 'DELETE' })).status).toBe(204);
  await waitFor(() => !links().has('pr/a'));
  expect(links().has('pr/b')).toBe(true);
  expect(links().get('keep/x')?.explicit).toBe(true);
  await server.subscriptions.drainStored();
  const stored = await new SubscriptionStore({ store: server.tiering.store, nodeId: 'reader', clock: { nowMs: () => 0 } }).loadAll();
  expect(stored.get('pr')?.state?.links.map(([path]) => path)).toEqual(['keep/x', 'pr/b']);
  await server.close();

  // The prune is a WAL record: a restart on the same data directory replays it.
  server = await open(dataDir, objectsDir);
  expect(links().has('pr/a')).toBe(false);
  expect([...links().keys()].sort()).toEqual(['keep/x', 'pr/b']);
  await server.close();
});

test('at start a stored tombstone of the held life finishes a delete a crash cut short; one of another life does not', { timeout: 30_000 }, async () => {
  const objectsDir = path.join(root, 'objects-4');
  const dataDir = path.join(root, 'data-4');
  let server = await open(dataDir, objectsDir);
  expect((await createStream(server.url, 'w4/pool', '[]')).status).toBe(201);
  expect((await put(server.url, 'del-me', { type: 'pull-wake', streams: ['d/one'], wake_stream: 'w4/pool' })).status).toBe(201);
  expect((await put(server.url, 'keep-me', { type: 'pull-wake', streams: ['d/two'], wake_stream: 'w4/pool' })).status).toBe(201);
  await server.close();

  // What a crash between storing the tombstone and logging the delete leaves: the WAL still holds it.
  const reader = new SubscriptionStore({ store: new FsObjectStore({ rootDir: objectsDir }), nodeId: 'other', clock: { nowMs: () => 0 } });
  const stored = await reader.loadAll();
  const life = stored.get('del-me')?.state;
  await reader.storeTombstone('del-me', { createdAtMs: life?.createdAtMs ?? 0, hash: life?.hash ?? '' });
  // A tombstone of an older life of the id (the held one was created after it) changes nothing.
  await reader.storeTombstone('keep-me', { createdAtMs: 1, hash: 'an-older-life' });

  server = await open(dataDir, objectsDir);
  expect((await fetch(subUrl(server.url, 'del-me'))).status).toBe(404);
  expect((await fetch(subUrl(server.url, 'keep-me'))).status).toBe(200);
  await server.subscriptions.drainStored();
  await waitFor(async () => {
    const now = await new SubscriptionStore({ store: new FsObjectStore({ rootDir: objectsDir }), nodeId: 'r', clock: { nowMs: () => 0 } }).loadAll();
    return !now.has('del-me') && now.get('keep-me')?.state !== null && now.get('keep-me') !== undefined;
  });
  await server.close();
  // And it stays deleted with the WAL gone too.
  await rm(dataDir, { recursive: true, force: true });
  server = await open(path.join(root, 'data-4b'), objectsDir);
  expect((await fetch(subUrl(server.url, 'del-me'))).status).toBe(404);
  expect((await fetch(subUrl(server.url, 'keep-me'))).status).toBe(200);
  await server.close();
});
