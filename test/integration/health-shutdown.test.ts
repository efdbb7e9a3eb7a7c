/**
 * Graceful shutdown of a real `cairn serve` child process (issue 6): on SIGTERM every SSE reader
 * gets a final control event (where to resume) and its connection ends, waiting long-polls are
 * answered, the process exits 0, and every append acknowledged before or during the shutdown is
 * there after a restart. Also `/healthz` and `/readyz` of the child.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import { scrape, sampleValue } from '../support/prometheus-text.ts';
import { readToEnd, waitFor } from '../support/streams.ts';

const TEXT = { 'content-type': 'text/plain' };
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startChild(): Promise<{ child: ChildServer; base: string }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cairn-shutdown-'));
  const child = new ChildServer({ port: await freePort(), dataDir, args: ['--long-poll-timeout-ms', '60000'] });
  cleanups.push(async () => {
    await child.stop();
    await rm(dataDir, { recursive: true, force: true });
  });
  await child.start();
  return { child, base: `http://127.0.0.1:${child.port}` };
}

/** The events of an SSE body: `{ event, data }` with the data lines joined. */
function sseEvents(body: string): { event: string; data: string }[] {
  return body
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((line) => line.startsWith('event:'))?.slice('event:'.length).trim() ?? 'message';
      const data = lines
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.replace(/^data: ?/, '')) // the SSE format drops one space after the colon
        .join('\n');
      return { event, data };
    });
}

test('SIGTERM: SSE readers get a final control event, long-polls are answered, acknowledged appends survive', async () => {
  const { child, base } = await startChild();
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ ready: true });

  const url = `${base}/v1/stream/draining`;
  expect((await fetch(url, { method: 'PUT', headers: TEXT })).status).toBe(201);
  const first = await fetch(url, { method: 'POST', headers: TEXT, body: 'acknowledged-before;' });
  expect(first.status).toBe(204);
  const tail = first.headers.get('stream-next-offset')!;

  const SSE_READERS = 3;
  const LONG_POLLS = 2;
  const sse = Array.from({ length: SSE_READERS }, () =>
    fetch(`${url}?offset=-1&live=sse`).then(async (response) => ({ status: response.status, body: await response.text() })),
  );
  const polls = Array.from({ length: LONG_POLLS }, () => fetch(`${url}?offset=${tail}&live=long-poll`));
  await waitFor(async () => {
    const samples = await scrape(base);
    return (
      sampleValue(samples, 'cairn_live_connections', { mode: 'sse' }) === SSE_READERS &&
      sampleValue(samples, 'cairn_live_connections', { mode: 'long-poll' }) === LONG_POLLS
    );
  }, 30_000);

  // Appends racing the shutdown: each one acknowledged (204) must be there after the restart.
  const racing = Array.from({ length: 20 }, (_, i) =>
    fetch(url, { method: 'POST', headers: TEXT, body: `racing-${i};` }).then(
      (response) => ({ i, acknowledged: response.status === 204 }),
      () => ({ i, acknowledged: false }),
    ),
  );
  child.signal('SIGTERM');

  for (const reader of await Promise.all(sse)) {
    expect(reader.status).toBe(200);
    const events = sseEvents(reader.body);
    expect(events[0]).toEqual({ event: 'data', data: 'acknowledged-before;' });
    // The shutdown's own control event follows the last data event's control event.
    const [beforeLast, last] = events.slice(-2);
    expect(beforeLast!.event).toBe('control');
    expect(last!.event).toBe('control');
    expect(JSON.parse(last!.data).streamNextOffset).toBe(JSON.parse(beforeLast!.data).streamNextOffset);
    const control = JSON.parse(last!.data) as { streamNextOffset: string; streamCursor?: string; streamClosed?: boolean };
    // Where to resume: at least past the first append; never "closed" (the stream is not).
    expect(control.streamNextOffset >= tail).toBe(true);
    expect(control.streamCursor).toBeTypeOf('string');
    expect(control.streamClosed).toBeUndefined();
  }
  for (const response of await Promise.all(polls)) {
    // Answered, not cut: 204 at the tail, or 200 with a racing append that landed first.
    expect([200, 204]).toContain(response.status);
    expect(response.headers.get('stream-next-offset')! >= tail).toBe(true);
    await response.arrayBuffer();
  }
  const outcomes = await Promise.all(racing);
  await child.waitExit();
  expect(child.lastExit).toEqual({ code: 0, signal: null });

  await child.start();
  const text = (await readToEnd(url)).toString('utf8');
  expect(text.startsWith('acknowledged-before;')).toBe(true);
  for (const { i, acknowledged } of outcomes) {
    const count = text.split(`racing-${i};`).length - 1;
    // Acknowledged: exactly once. Not acknowledged (refused, or cut by the exit): at most once.
    if (acknowledged) expect(count).toBe(1);
    else expect(count).toBeLessThanOrEqual(1);
  }
}, 120_000);
