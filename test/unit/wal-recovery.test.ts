import { mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeFrame, faultInjectingWalFs, nodeWalFs, openWal, WalCorruptError, type WalFs, type WalLogger } from '../../src/wal/index.ts';
import { WalFileBytes } from '../../src/wal/wal-file-bytes.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cairn-wal-recovery-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const walName = (seq: number) => `wal-${String(seq).padStart(20, '0')}.log`;

interface LogEntry {
  obj: Record<string, unknown>;
  msg: string;
}
function captureLogger(): WalLogger & { warns: LogEntry[]; infos: LogEntry[] } {
  const warns: LogEntry[] = [];
  const infos: LogEntry[] = [];
  return {
    warns,
    infos,
    warn: (obj, msg) => warns.push({ obj: obj as Record<string, unknown>, msg }),
    info: (obj, msg) => infos.push({ obj: obj as Record<string, unknown>, msg }),
  };
}

async function recover(walDir: string, logger?: WalLogger) {
  const wal = await openWal({ dir: walDir, durability: 'wal', logger });
  const records: unknown[] = [];
  for await (const r of wal.replay()) records.push(r);
  return { ...wal, records };
}

const earlier = [
  { t: 'create', inc: 1, path: '/a', data: Buffer.from('first') },
  { t: 'append', inc: 1, data: Buffer.from('second'), producer: ['p', 0, 1] },
];
const last = { t: 'append', inc: 1, data: Buffer.from('third, the torn one'), s: 'ünïcode' };
const earlierBytes = Buffer.concat(earlier.map((r) => encodeFrame(r)));
const lastFrame = encodeFrame(last);

/** Writes a fresh WAL dir whose only file is the earlier records plus `tail`. */
async function walWithTail(tail: Buffer): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cairn-wal-torn-'));
  await writeFile(join(d, walName(1)), Buffer.concat([earlierBytes, tail]));
  return d;
}

/** The torn-tail contract, checked on one damaged directory. */
async function expectTornTailRecovered(d: string, discardedBytes: number): Promise<void> {
  const logger = captureLogger();
  const first = await recover(d, logger);
  expect(first.records).toEqual(earlier);
  expect((await stat(join(d, walName(1)))).size).toBe(earlierBytes.length);
  expect(logger.warns).toHaveLength(1);
  expect(logger.warns[0]!.obj).toMatchObject({
    file: join(d, walName(1)),
    offsetBytes: earlierBytes.length,
    discardedBytes,
  });
  expect(first.writer.fileSeq).toBe(2);
  await first.writer.append({ after: 'recovery' });
  await first.writer.close();

  const logger2 = captureLogger();
  const second = await recover(d, logger2);
  expect(second.records).toEqual([...earlier, { after: 'recovery' }]);
  expect(logger2.warns).toHaveLength(0);
  await second.writer.close();
}

describe('WAL recovery', () => {
  it('recovers a clean WAL without warnings and logs the replay', async () => {
    const d = await walWithTail(lastFrame);
    try {
      const logger = captureLogger();
      const { records, writer } = await recover(d, logger);
      expect(records).toEqual([...earlier, last]);
      expect(logger.warns).toEqual([]);
      expect(logger.infos.find((e) => e.msg === 'WAL replayed')?.obj).toMatchObject({ recordCount: 3 });
      expect(writer.walBytesSinceCheckpoint).toBe(earlierBytes.length + lastFrame.length);
      await writer.close();
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('discards a last frame cut at every byte position', async () => {
    for (let cut = 1; cut < lastFrame.length; cut++) {
      const d = await walWithTail(lastFrame.subarray(0, cut));
      try {
        await expectTornTailRecovered(d, cut);
      } finally {
        await rm(d, { recursive: true, force: true });
      }
    }
  });

  it('discards a last frame with a flipped bit at every byte position', async () => {
    for (let i = 0; i < lastFrame.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const damaged = Buffer.from(lastFrame);
        damaged[i] ^= mask;
        const d = await walWithTail(damaged);
        try {
          await expectTornTailRecovered(d, lastFrame.length);
        } finally {
          await rm(d, { recursive: true, force: true });
        }
      }
    }
  });

  it('discards zero-filled space at the end of the last file', async () => {
    const d = await walWithTail(Buffer.alloc(4096));
    try {
      await expectTornTailRecovered(d, 4096);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('throws WalCorruptError for a bad frame in a file that is not the last', async () => {
    const a = encodeFrame({ n: 1 });
    const b = encodeFrame({ n: 2 });
    const damaged = Buffer.concat([a, b]);
    damaged[a.length + 10] ^= 0x04;
    await writeFile(join(dir, walName(1)), damaged);
    await writeFile(join(dir, walName(2)), encodeFrame({ n: 3 }));
    const wal = await openWal({ dir, durability: 'wal' });
    const seen: unknown[] = [];
    const err = await (async () => {
      for await (const r of wal.replay()) seen.push(r);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WalCorruptError);
    expect(err).toMatchObject({ code: 'WAL_CORRUPT', file: join(dir, walName(1)), offsetBytes: a.length });
    expect((err as Error).message).toContain(walName(1));
    expect(seen).not.toContainEqual({ n: 2 });
    expect(seen).not.toContainEqual({ n: 3 });
    // Nothing was truncated: the damage is left for an operator.
    expect((await stat(join(dir, walName(1)))).size).toBe(damaged.length);
    await wal.writer.close();
  });

  it('throws WalCorruptError for an incomplete frame in a file that is not the last', async () => {
    const a = encodeFrame({ n: 1 });
    await writeFile(join(dir, walName(1)), Buffer.concat([a, encodeFrame({ n: 2 }).subarray(0, 5)]));
    await writeFile(join(dir, walName(2)), encodeFrame({ n: 3 }));
    const wal = await openWal({ dir, durability: 'wal' });
    await expect(
      (async () => {
        for await (const _ of wal.replay());
      })(),
    ).rejects.toMatchObject({ code: 'WAL_CORRUPT', offsetBytes: a.length });
    await wal.writer.close();
  });

  it('throws WalCorruptError when a WAL file in the middle is missing', async () => {
    const { writer } = await openWal({ dir, durability: 'wal', walFileBytesMax: 50 });
    for (let i = 0; i < 6; i++) await writer.append({ i, pad: 'x'.repeat(60) });
    await writer.close();
    await unlink(join(dir, walName(3)));
    await expect(openWal({ dir, durability: 'wal' })).rejects.toMatchObject({
      code: 'WAL_CORRUPT',
      file: join(dir, walName(3)),
    });
  });

  it('throws WalCorruptError when the first WAL file is missing and there is no checkpoint', async () => {
    await writeFile(join(dir, walName(2)), encodeFrame({ n: 1 }));
    await expect(openWal({ dir, durability: 'wal' })).rejects.toBeInstanceOf(WalCorruptError);
  });

  it('creates the directory and starts empty', async () => {
    const nested = join(dir, 'a', 'b');
    const { records, checkpoint, checkpointWalSeqStart, writer } = await recover(nested);
    expect(records).toEqual([]);
    expect(checkpoint).toBeUndefined();
    expect(checkpointWalSeqStart).toBeUndefined();
    await writer.append({ x: 1 });
    await writer.close();
    expect(await readdir(nested)).toEqual([walName(1)]);
    expect((await readFile(join(nested, walName(1)))).equals(encodeFrame({ x: 1 }))).toBe(true);
  });
});

describe('WAL recovery with deferData', () => {
  const big = (seed: number, bytes = 20_000) => Buffer.alloc(bytes, seed);
  const deferredLoaded = (records: unknown[]) =>
    records.map((r) => {
      const data = (r as { data?: unknown }).data;
      if (data instanceof WalFileBytes) return { ...(r as object), data: data.load() };
      return r;
    });

  async function recoverDeferred(walDir: string, options: { logger?: WalLogger; fs?: WalFs } = {}) {
    const wal = await openWal({ dir: walDir, durability: 'wal', deferData: true, ...options });
    const records: unknown[] = [];
    for await (const r of wal.replay()) records.push(r);
    return { ...wal, records };
  }

  it('leaves large appends in their files and gives the same records once loaded; small data are copies', async () => {
    const file1 = [
      { t: 'create', inc: 1, path: '/a', data: big(1) },
      { t: 'append', inc: 1, data: Buffer.from('small one'), producer: ['p', 0, 1] },
      { t: 'append', inc: 1, data: big(2, 70_000) },
    ];
    const file2 = [{ t: 'append', inc: 1, data: big(3, 90_000) }, { t: 'append', inc: 1, data: Buffer.from('small two') }];
    const file3 = [{ t: 'append', inc: 1, data: big(4) }];
    await writeFile(join(dir, walName(1)), Buffer.concat(file1.map((r) => encodeFrame(r))));
    await writeFile(join(dir, walName(2)), Buffer.concat(file2.map((r) => encodeFrame(r))));
    await writeFile(join(dir, walName(3)), Buffer.concat(file3.map((r) => encodeFrame(r))));
    const logger = captureLogger();
    const { records, writer } = await recoverDeferred(dir, { logger });
    const datas = records.map((r) => (r as { data: unknown }).data);
    expect(datas.map((d) => d instanceof WalFileBytes)).toEqual([true, false, true, true, false, true]);
    expect(datas.map((d) => (d as { length: number }).length)).toEqual([20_000, 9, 70_000, 90_000, 9, 20_000]);
    // The small data were decoded from the reused buffer, which later files overwrote: copies survive.
    expect(deferredLoaded(records)).toEqual([...file1, ...file2, ...file3]);
    expect(logger.infos.find((e) => e.msg === 'WAL replayed')?.obj).toMatchObject({ recordCount: 6, deferred: true });
    await writer.close();
  });

  it('a deferred append whose file changed after recovery fails to load with WalCorruptError', async () => {
    await writeFile(join(dir, walName(1)), Buffer.concat([encodeFrame({ t: 'append', inc: 1, data: big(7) }), encodeFrame({ n: 1 })]));
    await writeFile(join(dir, walName(2)), encodeFrame({ t: 'append', inc: 1, data: big(8) }));
    const { records, writer } = await recoverDeferred(dir);
    const first = (records[0] as { data: WalFileBytes }).data;
    const last = (records[2] as { data: WalFileBytes }).data;
    expect(first.load()).toEqual(big(7));
    const bytes = await readFile(join(dir, walName(1)));
    bytes[5000] ^= 0x10;
    await writeFile(join(dir, walName(1)), bytes);
    expect(() => first.load()).toThrow(WalCorruptError);
    await writeFile(join(dir, walName(2)), Buffer.alloc(100));
    expect(() => last.load()).toThrow(WalCorruptError);
    await writer.close();
  });

  it('still throws WalCorruptError for a damaged large frame in a file that is not the last', async () => {
    const a = encodeFrame({ n: 1 });
    const damaged = Buffer.concat([a, encodeFrame({ t: 'append', inc: 1, data: big(5) })]);
    damaged[a.length + 10_000] ^= 0x01;
    await writeFile(join(dir, walName(1)), damaged);
    await writeFile(join(dir, walName(2)), encodeFrame({ n: 3 }));
    const wal = await openWal({ dir, durability: 'wal', deferData: true });
    const seen: unknown[] = [];
    const err = await (async () => {
      for await (const r of wal.replay()) seen.push(r);
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'WAL_CORRUPT', file: join(dir, walName(1)), offsetBytes: a.length });
    expect(seen).toEqual([]);
    await wal.writer.close();
  });

  it('repairs a torn large last frame, cut or garbled, and replays what is before it', async () => {
    const tail = encodeFrame({ t: 'append', inc: 1, data: big(6) });
    const garbled = Buffer.from(tail);
    garbled[15_000] ^= 0x80;
    for (const torn of [tail.subarray(0, 7), tail.subarray(0, 30), tail.subarray(0, tail.length - 1), garbled]) {
      const d = await walWithTail(torn);
      try {
        const { records, writer } = await recoverDeferred(d);
        expect(records).toEqual(earlier);
        expect((await stat(join(d, walName(1)))).size).toBe(earlierBytes.length);
        await writer.close();
      } finally {
        await rm(d, { recursive: true, force: true });
      }
    }
  });

  it('reads everything at start with a file system that cannot read synchronously', async () => {
    await writeFile(join(dir, walName(1)), encodeFrame({ t: 'append', inc: 1, data: big(9) }));
    const { records, writer } = await recoverDeferred(dir, { fs: faultInjectingWalFs(nodeWalFs, () => {}) });
    expect(records).toEqual([{ t: 'append', inc: 1, data: big(9) }]);
    await writer.close();
  });
});
