/**
 * Webhook delivery across `kill -9` (PROTOCOL.md §7, README "Subscriptions"): a child
 * `cairn serve --durability wal --allow-localhost-webhooks` with one webhook subscription over
 * `load/*` and 1,000 streams under it; a worker on loopback answers each wake at once and then
 * acknowledges every offered stream in one batched callback. Appends run in rounds; the server is
 * killed with SIGKILL in the middle of a round (wakes and callbacks in flight) and restarted on the
 * same data directory and port. Checked:
 *   - at-least-once: every acknowledged append lies inside some offered range (acked, tail] of its
 *     stream, before or after the crash;
 *   - acked cursors never go back: after the restart every stream's acked_offset is at least the
 *     highest offset the server acknowledged to the worker, and so is every later offer;
 *   - in the end every stream is acknowledged up to its tail.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { waitFor } from '../support/streams.ts';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../support/webhook-receiver.ts';
import { ChildServer, freePort } from './support/child-server.ts';

const STREAM_COUNT = 1_000;
const PARALLEL = 32;
const json = { 'content-type': 'application/json' };

let server: ChildServer | undefined;
let hook: WebhookReceiver | undefined;
let dataDir: string | undefined;
afterAll(async () => {
  await server?.stop();
  await hook?.close();
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
});

/** Runs `task` over `items`, `PARALLEL` at a time. */
async function parallel<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

test('every event is delivered at least once and acked cursors never go back across kill -9', { timeout: 300_000 }, async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-subs-crash-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  server = new ChildServer({ port, dataDir, args: ['--allow-localhost-webhooks'] });
  const names = Array.from({ length: STREAM_COUNT }, (_, i) => `load/s${String(i).padStart(4, '0')}`);

  /** Ends (next offsets) of acknowledged appends, per stream. */
  const events = new Map<string, string[]>();
  /** Highest offset the server acknowledged to the worker (callback 200), per stream. */
  const acknowledged = new Map<string, string>();
  /** Every offered range, per stream. */
  const offered = new Map<string, [string, string][]>();
  const violations: string[] = [];

  const work = async (wake: ReceivedWebhook): Promise<void> => {
    for (const stream of wake.body.streams) {
      const list = offered.get(stream.path) ?? [];
      list.push([stream.acked_offset, stream.tail_offset]);
      offered.set(stream.path, list);
      const floor = acknowledged.get(stream.path);
      if (floor !== undefined && stream.acked_offset < floor) violations.push(`${stream.path} offered from ${stream.acked_offset} after ${floor} was acknowledged`);
    }
    const acks = wake.body.streams.map((stream) => ({ stream: stream.path, offset: stream.tail_offset }));
    const response = await fetch(wake.body.callback_url, {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${wake.body.callback_token}` },
      body: JSON.stringify({ wake_id: wake.body.wake_id, generation: wake.body.generation, acks, done: true }),
    }).catch(() => undefined); // the server is down: the wake is offered again after its lease
    if (response?.status !== 200) return;
    for (const { stream, offset } of acks) if (offset > (acknowledged.get(stream) ?? '')) acknowledged.set(stream, offset);
  };
  hook = await startWebhookReceiver((wake) => {
    // Answer at once, acknowledge in one batch a moment later (asynchronous processing, §7.1).
    setTimeout(() => void work(wake), 5);
    return { status: 200, body: {} };
  });

  await server.start();
  const created = await fetch(`${base}/v1/stream/__ds/subscriptions/load`, {
    method: 'PUT',
    headers: json,
    body: JSON.stringify({ type: 'webhook', pattern: 'load/*', webhook: { url: hook.url }, lease_ttl_ms: 2000 }),
  });
  expect(created.status).toBe(201);
  const appendRound = (round: number) =>
    parallel(names, async (name) => {
      const response = await fetch(`${base}/v1/stream/${name}`, { method: round === 0 ? 'PUT' : 'POST', headers: json, body: JSON.stringify({ round }) }).catch(() => undefined);
      if (response === undefined || response.status >= 300) return; // in flight at the kill: not acknowledged
      const end = response.headers.get('stream-next-offset');
      if (end !== null) events.set(name, [...(events.get(name) ?? []), end]);
    });

  await appendRound(0);
  await appendRound(1);
  // Kill in the middle of round 2, once the worker has seen some of it.
  const seenBefore = hook.received.length;
  const round2 = appendRound(2);
  await waitFor(() => hook!.received.length > seenBefore + 1, 60_000);
  server.kill();
  await round2;
  await server.waitExit();
  const acknowledgedAtKill = new Map(acknowledged);

  await server.start();
  const after = (await (await fetch(`${base}/v1/stream/__ds/subscriptions/load`)).json()) as { streams: { path: string; acked_offset: string }[] };
  const cursors = new Map(after.streams.map((stream) => [stream.path, stream.acked_offset]));
  const movedBack = [...acknowledgedAtKill].filter(([name, offset]) => (cursors.get(name) ?? '') < offset);
  expect(movedBack).toEqual([]);
  expect(acknowledgedAtKill.size).toBeGreaterThan(0);
  await appendRound(3);

  // Everything acknowledged up to each stream's tail.
  const tails = new Map<string, string>();
  await parallel(names, async (name) => {
    const head = await fetch(`${base}/v1/stream/${name}`, { method: 'HEAD' });
    tails.set(name, head.headers.get('stream-next-offset') ?? '');
  });
  await waitFor(() => names.every((name) => (acknowledged.get(name) ?? '') >= (tails.get(name) ?? '')), 120_000);

  expect(violations).toEqual([]);
  let checked = 0;
  for (const [name, ends] of events) {
    for (const end of ends) {
      const ranges = offered.get(name) ?? [];
      expect(ranges.some(([acked, tail]) => acked < end && end <= tail), `${name} event ending at ${end}`).toBe(true);
      checked++;
    }
  }
  expect(checked).toBeGreaterThan(STREAM_COUNT * 3);
  expect(server.starts).toBe(2);
});
