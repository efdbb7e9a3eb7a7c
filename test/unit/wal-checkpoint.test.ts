import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  faultInjectingWalFs,
  nodeWalFs,
  openWal,
  WalCheckpointInProgressError,
  WalCorruptError,
  WalWriteError,
  type WalFsHook,
} from '../../src/wal/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-wal-ckpt-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const walName = (seq: number) => `wal-${String(seq).padStart(20, '0')}.log`;
const ckptName = (seq: number) => `checkpoint-${String(seq).padStart(20, '0')}.ckpt`;
const rec = (i: number) => ({ i, data: Buffer.from(`payload ${i}`) });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => rec(from + k));

async function recover(fs?: Parameters<typeof openWal>[0]['fs']) {
  const wal = await openWal({ dir, durability: 'wal', fs });
  const records: unknown[] = [];
  for await (const r of wal.replay()) records.push(r);
  return { ...wal, records };
}

async function listDir(): Promise<string[]> {
  return (await readdir(dir)).sort();
}

describe('WAL checkpoints', () => {
  it('splits records at the call: before → snapshot, after → replay; old files deleted', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    for (const r of range(0, 5)) await writer.append(r);
    // Queued but not yet durable when the checkpoint is called: still belong to the snapshot.
    const before = range(5, 10).map((r) => writer.append(r));
    const done = writer.checkpoint({ upTo: 10 });
    const after = range(10, 15).map((r) => writer.append(r));
    await Promise.all([...before, done, ...after]);
    expect(writer.walBytesSinceCheckpoint).toBeGreaterThan(0);
    await writer.close();

    expect(await listDir()).toEqual([ckptName(2), walName(2)]);
    const { checkpoint, checkpointWalSeqStart, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ upTo: 10 });
    expect(checkpointWalSeqStart).toBe(2);
    expect(records).toEqual(range(10, 15));
    await w2.close();
  });

  it('replays nothing after a checkpoint with no later records, and keeps Buffers in the snapshot', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.append(rec(0));
    await writer.checkpoint({ blob: Buffer.from([1, 2, 3]), s: 'ß' });
    await writer.close();
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ blob: Buffer.from([1, 2, 3]), s: 'ß' });
    expect(Buffer.isBuffer((checkpoint as { blob: unknown }).blob)).toBe(true);
    expect(records).toEqual([]);
    await w2.close();
  });

  it('a second checkpoint replaces the first and deletes it', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.append(rec(0));
    await writer.checkpoint({ n: 1 });
    await writer.append(rec(1));
    await writer.checkpoint({ n: 2 });
    await writer.append(rec(2));
    await writer.close();
    expect(await listDir()).toEqual([ckptName(3), walName(3)]);
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ n: 2 });
    expect(records).toEqual([rec(2)]);
    await w2.close();
  });

  it('checkpoints an empty current file without creating another file', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.checkpoint({ empty: true });
    expect(writer.fileSeq).toBe(1);
    await writer.append(rec(0));
    await writer.close();
    expect(await listDir()).toEqual([ckptName(1), walName(1)]);
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ empty: true });
    expect(records).toEqual([rec(0)]);
    expect(w2.fileSeq).toBe(2);
    await w2.close();
  });

  it('covers records spread over several rotated files', async () => {
    const { writer } = await openWal({ dir, durability: 'wal', walFileBytesMax: 64 });
    for (const r of range(0, 6)) await writer.append(r);
    const done = writer.checkpoint({ upTo: 6 });
    for (const r of range(6, 9)) await writer.append(r);
    await done;
    await writer.close();
    const names = await listDir();
    expect(names.filter((n) => n.endsWith('.ckpt'))).toHaveLength(1);
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ upTo: 6 });
    expect(records).toEqual(range(6, 9));
    await w2.close();
  });

  it('tracks walBytesSinceCheckpoint: grows with appends, resets at checkpoint, restored at open', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.append(rec(0));
    const afterOne = writer.walBytesSinceCheckpoint;
    expect(afterOne).toBeGreaterThan(0);
    await writer.append(rec(1));
    expect(writer.walBytesSinceCheckpoint).toBeGreaterThan(afterOne);
    const done = writer.checkpoint({});
    expect(writer.walBytesSinceCheckpoint).toBe(0);
    await done;
    await writer.append(rec(2));
    const tail = writer.walBytesSinceCheckpoint;
    await writer.close();
    const { writer: w2 } = await recover();
    expect(w2.walBytesSinceCheckpoint).toBe(tail);
    await w2.close();
  });

  it('rejects a checkpoint while another is in progress, without side effects', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const fs = faultInjectingWalFs(nodeWalFs, async (op) => {
      if (op === 'rename') await gate;
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs });
    await writer.append(rec(0));
    const first = writer.checkpoint({ n: 1 });
    expect(writer.checkpointInProgress).toBe(true);
    await writer.append(rec(1));
    const bytes = writer.walBytesSinceCheckpoint;
    await expect(writer.checkpoint({ n: 2 })).rejects.toBeInstanceOf(WalCheckpointInProgressError);
    expect(writer.walBytesSinceCheckpoint).toBe(bytes);
    release();
    await first;
    expect(writer.checkpointInProgress).toBe(false);
    await writer.close();
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ n: 1 });
    expect(records).toEqual([rec(1)]);
    await w2.close();
  });

  it('a crash before the rename leaves the previous checkpoint and all WAL files valid', async () => {
    const crash = new Error('simulated crash');
    let crashed = false;
    const hook: WalFsHook = (op, path) => {
      // The process "dies" at the rename: nothing after it happens, the .tmp stays behind.
      if (crashed && (op === 'rename' || (op === 'unlink' && path.endsWith('.tmp')))) throw crash;
    };
    const { writer } = await openWal({ dir, durability: 'wal', fs: faultInjectingWalFs(nodeWalFs, hook) });
    for (const r of range(0, 2)) await writer.append(r);
    await writer.checkpoint({ upTo: 2 });
    for (const r of range(2, 4)) await writer.append(r);
    crashed = true;
    const err = await writer.checkpoint({ upTo: 4 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalWriteError);
    expect((err as WalWriteError).cause).toBe(crash);
    await writer.append(rec(4)); // the writer itself is still healthy
    await writer.close();

    const names = await listDir();
    expect(names).toContain(`${ckptName(3)}.tmp`);
    expect(names).toContain(ckptName(2));
    expect(names).toContain(walName(2)); // holds records 2 and 3: must not be deleted
    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ upTo: 2 });
    expect(records).toEqual(range(2, 5));
    await w2.close();
    expect((await listDir()).some((n) => n.endsWith('.tmp'))).toBe(false);
  });

  it('a crash after the rename but before deleting old files recovers from the new checkpoint', async () => {
    let failUnlinks = false;
    const fs = faultInjectingWalFs(nodeWalFs, (op) => {
      if (failUnlinks && op === 'unlink') throw new Error('simulated crash before delete');
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs });
    for (const r of range(0, 3)) await writer.append(r);
    await writer.checkpoint({ upTo: 3 });
    for (const r of range(3, 5)) await writer.append(r);
    failUnlinks = true;
    await writer.checkpoint({ upTo: 5 }); // deletion failures are logged, not fatal
    await writer.append(rec(5));
    await writer.close();
    expect(await listDir()).toEqual([ckptName(2), ckptName(3), walName(2), walName(3)]);

    const { checkpoint, records, writer: w2 } = await recover();
    expect(checkpoint).toEqual({ upTo: 5 });
    expect(records).toEqual([rec(5)]);
    expect(await listDir()).toEqual([ckptName(3), walName(3), walName(4)]);
    await w2.close();
  });

  it('a checkpoint fails with WalWriteError when the records before it cannot be made durable', async () => {
    let fail = false;
    const fs = faultInjectingWalFs(nodeWalFs, (op) => {
      if (fail && op === 'datasync') throw new Error('EIO');
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs });
    await writer.append(rec(0));
    fail = true;
    const appended = writer.append(rec(1));
    const ckpt = writer.checkpoint({ upTo: 2 });
    await expect(appended).rejects.toBeInstanceOf(WalWriteError);
    await expect(ckpt).rejects.toBeInstanceOf(WalWriteError);
    await writer.close().catch(() => {});
    expect((await listDir()).filter((n) => n.includes('checkpoint'))).toEqual([]);
  });

  it('a corrupt newest checkpoint is WalCorruptError naming the file, with no fallback', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.append(rec(0));
    await writer.checkpoint({ n: 1 });
    await writer.append(rec(1));
    await writer.close();
    const path = join(dir, ckptName(2));
    const bytes = await readFile(path);
    bytes[bytes.length - 2] ^= 0x20;
    await writeFile(path, bytes);
    const err = await openWal({ dir, durability: 'wal' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect((err as WalCorruptError).file).toBe(path);
    expect((err as Error).message).toContain(ckptName(2));
  });

  it('a checkpoint whose header does not match its file name is corrupt', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    await writer.append(rec(0));
    await writer.checkpoint({ n: 1 });
    await writer.close();
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, ckptName(2)), join(dir, ckptName(5)));
    await expect(openWal({ dir, durability: 'wal' })).rejects.toBeInstanceOf(WalCorruptError);
  });
});
