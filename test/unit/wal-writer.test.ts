import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  faultInjectingWalFs,
  nodeWalFs,
  openWal,
  WalClosedError,
  WalOverloadedError,
  WalWriteError,
  WalNotDurableError,
  WalWriter,
  type WalCommitInfo,
  type WalFsOperation,
} from '../../src/wal/index.ts';
import { waitFor } from '../support/streams.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-wal-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Replays the WAL; `afterReboot` opens it as on a later boot (a WAL fsync failure refuses the same boot). */
async function replayAll(walDir: string, afterReboot = false): Promise<unknown[]> {
  const fs = afterReboot ? { ...nodeWalFs, bootId: async () => 'a later boot' } : nodeWalFs;
  const wal = await openWal({ dir: walDir, durability: 'memory', fs });
  const out: unknown[] = [];
  for await (const r of wal.replay()) out.push(r);
  await wal.writer.close();
  return out;
}

function rec(i: number): { t: string; i: number; data: Buffer } {
  return { t: 'append', i, data: Buffer.from(`record-${i}`) };
}

describe('WalWriter group commit', () => {
  it('commits 500 concurrent appends with far fewer fsyncs, resolving in order', async () => {
    const commits: WalCommitInfo[] = [];
    let datasyncCount = 0;
    const fs = faultInjectingWalFs(nodeWalFs, (op) => {
      if (op === 'datasync') datasyncCount++;
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs, onCommit: (c) => commits.push(c) });
    const resolved: number[] = [];
    const appends = Array.from({ length: 500 }, (_, i) => writer.append(rec(i)).then(() => resolved.push(i)));
    await Promise.all(appends);
    expect(resolved).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(commits.reduce((n, c) => n + c.recordCount, 0)).toBe(500);
    expect(commits.length).toBeLessThanOrEqual(5);
    expect(datasyncCount).toBe(commits.length);
    await writer.close();
    expect(await replayAll(dir)).toEqual(Array.from({ length: 500 }, (_, i) => rec(i)));
  });

  it('batches appends that arrive while a write is in flight', async () => {
    let releaseFirst: () => void = () => {};
    const firstHeld = new Promise<void>((r) => (releaseFirst = r));
    let firstInDatasync: () => void = () => {};
    const firstEntered = new Promise<void>((r) => (firstInDatasync = r));
    let datasyncCount = 0;
    const fs = faultInjectingWalFs(nodeWalFs, async (op) => {
      if (op === 'datasync' && ++datasyncCount === 1) {
        firstInDatasync();
        await firstHeld;
      }
    });
    const commits: WalCommitInfo[] = [];
    const { writer } = await openWal({ dir, durability: 'wal', fs, onCommit: (c) => commits.push(c) });
    const first = writer.append(rec(0));
    await firstEntered; // the first batch is now waiting in datasync
    const rest = Array.from({ length: 99 }, (_, i) => writer.append(rec(i + 1)));
    expect(writer.queuedBytes).toBeGreaterThan(0);
    releaseFirst();
    await Promise.all([first, ...rest]);
    expect(commits.map((c) => c.recordCount)).toEqual([1, 99]);
    await writer.close();
    expect(await replayAll(dir)).toEqual(Array.from({ length: 100 }, (_, i) => rec(i)));
  });

  it('memory durability writes without fsync and replays after close', async () => {
    const ops: WalFsOperation[] = [];
    const fs = faultInjectingWalFs(nodeWalFs, (op) => {
      ops.push(op);
    });
    const commits: WalCommitInfo[] = [];
    const { writer } = await openWal({ dir, durability: 'memory', fs, onCommit: (c) => commits.push(c) });
    for (let i = 0; i < 20; i++) await writer.append(rec(i));
    expect(ops.filter((op) => op === 'datasync' || op === 'syncDir')).toEqual([]);
    expect(commits.every((c) => c.fsyncMs === 0)).toBe(true);
    await writer.close();
    expect(ops.filter((op) => op === 'datasync')).toEqual(['datasync']); // one, at close
    expect(await replayAll(dir)).toEqual(Array.from({ length: 20 }, (_, i) => rec(i)));
  });

  it('rotates files past walFileBytesMax and replays all files in order', async () => {
    const { writer } = await openWal({ dir, durability: 'wal', walFileBytesMax: 1000 });
    for (let i = 0; i < 100; i++) await writer.append(rec(i));
    await writer.close();
    const files = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(files[0]).toBe('wal-00000000000000000001.log');
    for (const f of files) expect((await stat(join(dir, f))).size).toBeLessThan(1000 + 100);
    expect(await replayAll(dir)).toEqual(Array.from({ length: 100 }, (_, i) => rec(i)));
  });

  it('rejects with WalOverloadedError beyond queueBytesMax, and accepts again once drained', async () => {
    const { writer } = await openWal({ dir, durability: 'wal', queueBytesMax: 2000 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => writer.append({ i, data: Buffer.alloc(300, i) })),
    );
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected');
    expect(accepted).toBeGreaterThanOrEqual(1);
    expect(accepted).toBeLessThanOrEqual(6);
    expect(refused.length).toBe(20 - accepted);
    const err = (refused[0] as PromiseRejectedResult).reason as WalOverloadedError;
    expect(err).toBeInstanceOf(WalOverloadedError);
    expect(err).toMatchObject({ code: 'WAL_OVERLOADED', statusCode: 503, retryable: true, queueBytesMax: 2000 });
    expect(writer.queuedBytes).toBe(0);
    await writer.append({ after: true });
    await writer.close();
    expect((await replayAll(dir)).length).toBe(accepted + 1);
  });

  it('accepts a single record larger than queueBytesMax when the queue is empty', async () => {
    const { writer } = await openWal({ dir, durability: 'memory', queueBytesMax: 100 });
    await writer.append({ data: Buffer.alloc(1000) });
    await writer.close();
    expect(await replayAll(dir)).toEqual([{ data: Buffer.alloc(1000) }]);
  });

  it('never writes into a file that existed before it was created', async () => {
    const first = await openWal({ dir, durability: 'wal' });
    await first.writer.append(rec(1));
    await first.writer.close();
    const second = await openWal({ dir, durability: 'wal' });
    expect(second.writer.fileSeq).toBe(2);
    await second.writer.close();
    await expect(
      WalWriter.create({ dir, durability: 'wal', fileSeqFirst: 1 }),
    ).rejects.toMatchObject({ code: 'EEXIST' });
  });

  it('rejects appends after close with WalClosedError, and close flushes what was queued', async () => {
    const { writer } = await openWal({ dir, durability: 'wal' });
    const pending = Array.from({ length: 10 }, (_, i) => writer.append(rec(i)));
    const closed = writer.close();
    await expect(writer.append(rec(99))).rejects.toBeInstanceOf(WalClosedError);
    await Promise.all(pending);
    await closed;
    expect(await replayAll(dir)).toEqual(Array.from({ length: 10 }, (_, i) => rec(i)));
  });
});

describe('WalWriter write failures', () => {
  function failing(opToFail: WalFsOperation, afterCount: number) {
    const injected = new Error(`injected ${opToFail} failure`);
    let count = 0;
    let armed = true;
    const fs = faultInjectingWalFs(nodeWalFs, (op, path) => {
      if (armed && op === opToFail && path.endsWith('.log') && ++count > afterCount) throw injected;
    });
    return { fs, injected, disarm: () => (armed = false) };
  }

  for (const op of ['writev', 'datasync'] as const) {
    it(`a failing ${op} rejects the batch and everything queued, and all later appends`, async () => {
      const { fs, injected } = failing(op, 1);
      const { writer } = await openWal({ dir, durability: 'wal', fs });
      await writer.append(rec(0)); // first batch succeeds
      const batch = writer.append(rec(1)); // this batch fails
      await Promise.resolve();
      await Promise.resolve();
      const queued = writer.append(rec(2)); // may be queued behind it
      for (const p of [batch, queued]) {
        const err = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WalWriteError);
        expect(err).toMatchObject({ code: 'WAL_WRITE_FAILED', statusCode: 503, cause: injected });
      }
      await expect(writer.append(rec(3))).rejects.toBeInstanceOf(WalWriteError);
      expect(writer.failure).toBeInstanceOf(WalWriteError);
      expect(writer.queuedBytes).toBe(0);
      await expect(writer.close()).rejects.toBeInstanceOf(WalWriteError);
      if (op === 'datasync') {
        // The failed fsync is recorded: no restart before a reboot (sync-failure-marker.ts).
        await expect(replayAll(dir)).rejects.toBeInstanceOf(WalNotDurableError);
      }
      expect(await replayAll(dir, op === 'datasync')).toContainEqual(rec(0));
    });
  }

  it('rejects records queued behind an in-flight batch that fails', async () => {
    let releaseSync: () => void = () => {};
    const held = new Promise<void>((r) => (releaseSync = r));
    const injected = new Error('disk gone');
    let inDatasync: () => void = () => {};
    const entered = new Promise<void>((r) => (inDatasync = r));
    const fs = faultInjectingWalFs(nodeWalFs, async (op) => {
      if (op === 'datasync') {
        inDatasync();
        await held;
        throw injected;
      }
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs });
    const inFlight = writer.append(rec(0));
    await entered; // the first batch is now in flight (waiting in datasync)
    const queued = Array.from({ length: 5 }, (_, i) => writer.append(rec(i + 1)));
    releaseSync();
    const settled = await Promise.allSettled([inFlight, ...queued]);
    for (const s of settled) {
      expect(s.status).toBe('rejected');
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(WalWriteError);
    }
    await writer.close().catch(() => {});
  });

  it('a failing rotation puts the writer into the failed state', async () => {
    const injected = new Error('cannot create');
    const fs = faultInjectingWalFs(nodeWalFs, (op, path) => {
      if (op === 'openFile' && path.endsWith('wal-00000000000000000002.log')) throw injected;
    });
    const { writer } = await openWal({ dir, durability: 'wal', fs, walFileBytesMax: 100 });
    await writer.append({ data: Buffer.alloc(200) }); // durable; the rotation after it fails
    await waitFor(() => writer.failure !== undefined);
    const err = await writer.append(rec(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalWriteError);
    expect((err as WalWriteError).cause).toBe(injected);
    await writer.close().catch(() => {});
  });
});
