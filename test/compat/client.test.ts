/**
 * @durable-streams/client against Cairn, embedded and sealed: the two client behaviours the README
 * section "Using the upstream clients" describes.
 *
 * - `stream({ live: false })` reads exactly one response. A mailbox of 1,500 mails (~7 MiB, past
 *   the 4 MiB read unit) must come back whole from `.json()`; a stream larger than one catch-up
 *   response comes back whole by following Stream-Next-Offset until Stream-Up-To-Date.
 *   Fails on a server whose catch-up responses stop at one 4 MiB read unit (the behaviour before
 *   --catch-up-bytes-max): `.json()` then returns a prefix; the second test shows that cut on purpose.
 * - `IdempotentProducer` with `fetch: createFetchWithBackoff(fetch, { …, maxDelay: 500 })` across a
 *   SIGKILL of the server mid-run delivers every message exactly once, in order. (With the default
 *   backoff, whose delays grow towards 60 s with jitter, two pipelined batches' retries can land
 *   more than the server's 1 s predecessor wait apart on a loaded machine: a 409 in 2 of 3 runs.) Fails on a server that loses acknowledged
 *   appends or producer state across a crash (duplicates or gaps in the read-back), or that answers
 *   a retried out-of-order batch at once with 409 instead of waiting for its predecessor (an error
 *   in `onError`, then a gap). Checked: with the plain `fetch` (the producer's default) the crash
 *   loses batches and this test fails the same way; with a 4 MiB catch-up limit the mailbox test
 *   gets 681 of 1,500 mails.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFetchWithBackoff, DurableStream, IdempotentProducer, stream } from '@durable-streams/client';
import { ChildServer, freePort } from '../fault/support/child-server.ts';
import type { TestServer } from '../support/server.ts';
import { COMPAT_MODES, startCompatServer, waitUntilSealed } from './support.ts';

interface Mail {
  id: number;
  subject: string;
  body: string;
}

function mail(id: number): Mail {
  return { id, subject: `message ${id}`, body: `${'lorem ipsum dolor sit amet '.repeat(170)}#${id}` }; // ~4.7 KB
}

describe.each(COMPAT_MODES)('@durable-streams/client reads, %s', (mode) => {
  let server: TestServer;
  beforeAll(async () => {
    // Sealed: 256 KiB segments of 4 KiB read units (64-byte segments would make 100,000 objects).
    server = await startCompatServer(mode, mode === 'sealed' ? { segmentSizeBytes: 256 * 1024 } : {});
  });
  afterAll(() => server.stop());
  const url = (name: string) => `${server.url}/v1/stream/${name}`;

  test('stream({ live: false }).json() returns a whole mailbox of 1,500 mails', async () => {
    const handle = await DurableStream.create({ url: url('mailbox'), contentType: 'application/json' });
    const producer = new IdempotentProducer(handle, 'importer', { lingerMs: 5 });
    for (let id = 0; id < 1500; id++) producer.append(JSON.stringify(mail(id)));
    await producer.flush();
    await producer.close();
    if (mode === 'sealed') await waitUntilSealed(server);
    const mails = await (await stream<Mail>({ url: url('mailbox'), live: false })).json();
    expect(mails.length).toBe(1500);
    expect(mails.map((m) => m.id)).toEqual(Array.from({ length: 1500 }, (_, id) => id));
    expect(mails[1499]).toEqual(mail(1499));
  }, 120_000);

  test('past one response, following Stream-Next-Offset until Stream-Up-To-Date returns everything', async () => {
    // 80 MiB would be slow here; a server whose catch-up responses are 64 KiB shows the same thing.
    const small = await startCompatServer(mode, { catchUpBytesMax: 64 * 1024, ...(mode === 'sealed' ? { segmentSizeBytes: 16 * 1024 } : {}) });
    try {
      const target = `${small.url}/v1/stream/big`;
      const handle = await DurableStream.create({ url: target, contentType: 'application/octet-stream' });
      const data = Buffer.from(Array.from({ length: 300 * 1024 }, (_, i) => (i * 7) % 256));
      for (let at = 0; at < data.length; at += 10 * 1024) await handle.append(data.subarray(at, at + 10 * 1024));
      if (mode === 'sealed') await waitUntilSealed(small);

      // The client behaviour: one response, a prefix (no error, no Stream-Up-To-Date).
      const once = await stream({ url: target, live: false });
      const prefix = Buffer.from(await once.body());
      expect(prefix.length).toBeLessThan(data.length);
      expect(once.upToDate).toBe(false);

      // The pattern that always works.
      const parts: Buffer[] = [];
      let offset = '-1';
      for (;;) {
        const response = await stream({ url: target, offset, live: false });
        parts.push(Buffer.from(await response.body()));
        offset = response.offset;
        if (response.upToDate) break;
      }
      expect(Buffer.concat(parts).equals(data)).toBe(true);
    } finally {
      await small.stop();
    }
  }, 120_000);
});

describe.each(COMPAT_MODES)('IdempotentProducer with the retrying fetch across a server crash, %s', (mode) => {
  let dir: string;
  let child: ChildServer;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-compat-producer-'));
    const sealed = ['--segment-size-bytes', '64', '--seal-idle-ms', '0'];
    child = new ChildServer({ port: await freePort(), dataDir: dir, args: mode === 'sealed' ? sealed : [] });
    await child.start();
  });
  afterAll(async () => {
    await child.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('every message exactly once, in order, with a SIGKILL and restart mid-run', async () => {
    const target = `http://127.0.0.1:${child.port}/v1/stream/producer-crash`;
    const handle = await DurableStream.create({ url: target, contentType: 'application/json' });
    const errors: unknown[] = [];
    const producer = new IdempotentProducer(handle, 'writer-1', {
      // Retries capped at 500 ms apart: pipelined batches retried after the restart then reach the
      // server within its 1 s wait for a missing predecessor (README, Using the upstream clients).
      fetch: createFetchWithBackoff(fetch, { initialDelay: 100, maxDelay: 500, multiplier: 1.3 }),
      lingerMs: 2,
      onError: (error) => errors.push(error),
    });
    const total = 3000;
    for (let i = 0; i < total; i++) {
      producer.append(JSON.stringify({ i }));
      if (i === 1000) {
        child.kill(); // batches in flight now meet a reset or refused connection and are retried
        await new Promise((resolve) => setTimeout(resolve, 300));
        await child.start();
      }
      if (i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await producer.flush();
    expect(errors).toEqual([]);
    await producer.close();
    const items = await (await stream<{ i: number }>({ url: target, live: false })).json();
    expect(items.map((item) => item.i)).toEqual(Array.from({ length: total }, (_, i) => i));
  }, 120_000);
});
