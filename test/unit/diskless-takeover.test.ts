/**
 * Diskless takeover (src/takeover.ts) against the memory store and a slot table driven by hand:
 * the new owner of a slot that names dead nodes in `recoverFrom` replays their chains, refuses
 * writes until it has checkpointed and cleared `recoverFrom`, and reads the first dead node's
 * chain even when a taker in between died before finishing (both chains named).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ClusterUnavailableError } from '../../src/cluster/errors.ts';
import { SlotTable, type SlotOwner } from '../../src/cluster/slot-table.ts';
import { MemoryObjectStore } from '../../src/object-store/index.ts';
import { StreamRegistry } from '../../src/stream/registry.ts';
import { DisklessTakeover } from '../../src/takeover.ts';
import { chainNodeId, openObjectWal } from '../../src/wal/index.ts';
import { testClock } from '../support/record-log.ts';

const SLOTS = 16;
const text = (body: string) => ({ contentType: 'text/plain', body: Buffer.from(body), close: false, producer: undefined, streamSeq: undefined });

/** Writes `appends` to `path` through a registry logging into `chain`'s WAL objects, as a node of that id would. */
async function nodeWrites(store: MemoryObjectStore, chain: string, path: string, appends: string[]): Promise<void> {
  await chainNodeId(store, chain, `${chain}-object-id`);
  const opened = await openObjectWal({ store, chain, flushMs: 1, objectBytesMax: 1 << 20 });
  for await (const record of opened.replay()) void record;
  const registry = new StreamRegistry({ log: { append: (record) => opened.writer.enqueue(record) }, clock: testClock() });
  await registry.create({ path, contentType: 'text/plain', body: Buffer.alloc(0), closed: false, ttlSeconds: undefined, expiresAtMs: undefined });
  for (const body of appends) await registry.append({ path, ...text(body) });
  // Killed: the writer is never closed.
}

function takerOf(store: MemoryObjectStore, recoverFrom: string[]) {
  const clock = testClock();
  const table = new SlotTable({ nodeId: 'me', slotCount: SLOTS, clock, leaseSafeUntilMs: () => Infinity });
  const path = 'chat/1';
  const slot = table.slotOf(path);
  const owners: SlotOwner[] = Array.from({ length: SLOTS }, () => ({ nodeId: 'other', epoch: 1 }));
  owners[slot] = { nodeId: 'me', epoch: 3, recoverFrom };
  const registry = new StreamRegistry({
    log: { append: () => Promise.resolve() },
    clock,
    writeFence: { admit: (p) => table.writeEpoch(p), confirm: (p) => void table.writeEpoch(p) },
  });
  const calls: string[] = [];
  let releaseCheckpoint: () => void = () => {};
  const checkpointHeld = new Promise<void>((resolve) => (releaseCheckpoint = resolve));
  const takeover = new DisklessTakeover({
    store,
    registry,
    table,
    clock,
    logger: pino({ level: 'silent' }),
    checkpointAfter: async () => {
      calls.push('checkpoint');
      await checkpointHeld;
    },
    clearRecoverFrom: async (slots) => {
      calls.push(`clear ${slots.join(',')}`);
      const next = table.map.owners.map((owner, s) => (slots.includes(s) ? { nodeId: owner.nodeId, epoch: owner.epoch } : owner));
      table.setMap({ slotCount: SLOTS, owners: next, revision: table.map.revision + 1 });
    },
  });
  table.onChange(() => takeover.onMapChange());
  table.setMap({ slotCount: SLOTS, owners, revision: 1 });
  return { table, registry, takeover, path, slot, calls, releaseCheckpoint };
}

describe('diskless takeover', () => {
  it("replays the dead node's chain, refuses writes until checkpointed and cleared, then takes them", async () => {
    const store = new MemoryObjectStore();
    await nodeWrites(store, 'dead', 'chat/1', ['a', 'b', 'c']);
    const { registry, takeover, path, slot, calls, releaseCheckpoint, table } = takerOf(store, ['dead']);
    expect(table.recovering(slot)).toBe('dead');
    expect(() => table.writeEpoch(path)).toThrow(ClusterUnavailableError);
    // Adopted before the checkpoint, still refusing writes until it is stored and the map cleared.
    await expect.poll(() => calls).toEqual(['checkpoint']);
    await expect(registry.append({ path, ...text('still early') })).rejects.toBeInstanceOf(ClusterUnavailableError);
    releaseCheckpoint();
    await expect.poll(() => table.recovering(slot)).toBeUndefined();
    expect(calls).toEqual(['checkpoint', `clear ${slot}`]);
    const stream = registry.get(path, { touch: false });
    expect(stream.tailOffset).toBe(3);
    expect(stream.objectNodeId).toBe('dead-object-id');
    await registry.append({ path, ...text('d') });
    expect(registry.get(path, { touch: false }).tailOffset).toBe(4);
    await takeover.close();
  });

  it("does not read (and so fence) its own chain when it is named: a node that came back and got the slot again", async () => {
    const store = new MemoryObjectStore();
    await chainNodeId(store, 'me', 'me-object-id');
    const own = await openObjectWal({ store, chain: 'me', flushMs: 1, objectBytesMax: 1 << 20 });
    for await (const record of own.replay()) void record;
    const { takeover, slot, releaseCheckpoint, table } = takerOf(store, ['me']);
    releaseCheckpoint();
    await expect.poll(() => table.recovering(slot)).toBeUndefined();
    await own.writer.enqueue({ still: 'writable' }); // not fenced
    await takeover.close();
  });

  it('reads the first dead node when the taker after it died before finishing (both named)', async () => {
    const store = new MemoryObjectStore();
    await nodeWrites(store, 'first', 'chat/1', ['x', 'y']);
    // The second owner started, adopted nothing durable, and died: its chain holds nothing of the stream.
    await chainNodeId(store, 'second', 'second-object-id');
    const { registry, takeover, path, slot, releaseCheckpoint, table } = takerOf(store, ['first', 'second']);
    releaseCheckpoint();
    await expect.poll(() => table.recovering(slot)).toBeUndefined();
    expect(table.map.owners[slot]?.recoverFrom).toBeUndefined();
    expect(registry.get(path, { touch: false }).tailOffset).toBe(2);
    await takeover.close();
  });
});
