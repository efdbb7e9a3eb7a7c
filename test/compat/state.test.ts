/**
 * @durable-streams/state (StreamDB, TanStack DB collections) against Cairn, embedded and sealed:
 * change events written with the schema's event helpers are materialised by a StreamDB that
 * preloads the history and then follows the stream live over SSE and long-poll (inserts, updates,
 * deletes across two entity types, with a txid awaited).
 *
 * How it fails on a broken server: a read that loses, repeats or reorders JSON messages (across
 * segment and read-unit boundaries in sealed mode, or between the catch-up and the live tail)
 * leaves a collection with missing, stale or resurrected rows, and `awaitTxId` times out when a
 * live append never arrives. Checked by serving offset `-1` as `now` (the history is skipped, so
 * `preload` misses every earlier event): the row-count assertions fail.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { DurableStream } from '@durable-streams/client';
import { createStateSchema } from '@durable-streams/state';
import { createStreamDB } from '@durable-streams/state/db';
import type { TestServer } from '../support/server.ts';
import { COMPAT_MODES, startCompatServer, waitFor, waitUntilSealed } from './support.ts';

const schema = createStateSchema({
  users: { schema: z.object({ id: z.string(), name: z.string() }), type: 'user', primaryKey: 'id' },
  messages: { schema: z.object({ id: z.string(), userId: z.string(), text: z.string() }), type: 'message', primaryKey: 'id' },
});

describe.each(COMPAT_MODES)('StreamDB, %s', (mode) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCompatServer(mode);
  });
  afterAll(() => server.stop());

  for (const live of ['sse', 'long-poll'] as const) {
    test(`preloads the history, then follows live appends (${live})`, async () => {
      const url = `${server.url}/v1/stream/state-${live}`;
      const handle = await DurableStream.create({ url, contentType: 'application/json' });
      for (let u = 0; u < 20; u++) await handle.append(JSON.stringify(schema.users.insert({ value: { id: `u${u}`, name: `user ${u}` } })));
      for (let m = 0; m < 200; m++) {
        await handle.append(JSON.stringify(schema.messages.insert({ value: { id: `m${m}`, userId: `u${m % 20}`, text: `hello ${m}` } })));
      }
      await handle.append(JSON.stringify(schema.users.update({ value: { id: 'u3', name: 'renamed' } })));
      await handle.append(JSON.stringify(schema.messages.delete({ key: 'm7' })));
      if (mode === 'sealed') await waitUntilSealed(server);

      const db = createStreamDB({ streamOptions: { url, contentType: 'application/json' }, live, state: schema });
      try {
        await db.preload();
        expect(db.collections.users.size).toBe(20);
        expect(db.collections.messages.size).toBe(199);
        expect(db.collections.users.get('u3')?.name).toBe('renamed');
        expect(db.collections.messages.get('m7')).toBeUndefined();
        expect(db.collections.messages.get('m199')?.text).toBe('hello 199');

        await handle.append(JSON.stringify(schema.users.insert({ value: { id: 'late', name: 'late joiner' }, headers: { txid: 'tx-late' } })));
        await handle.append(JSON.stringify(schema.users.delete({ key: 'u0' })));
        await db.utils.awaitTxId('tx-late', 20_000);
        await waitFor('the live delete', () => db.collections.users.get('u0') === undefined);
        expect(db.collections.users.get('late')?.name).toBe('late joiner');
        expect(db.collections.users.size).toBe(20);
      } finally {
        db.close();
      }
    }, 60_000);
  }
});
