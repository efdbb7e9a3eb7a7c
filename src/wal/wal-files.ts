/**
 * Names of the files in the WAL directory. Sequence numbers are zero-padded to 20 digits so a
 * directory listing sorts in sequence order.
 *
 * - `wal-<seq>.log`: records, in frames (record-codec.ts); files are created in seq order,
 *   never appended to after the writer moves on, and never reused after a restart.
 * - `checkpoint-<seq>.ckpt`: a snapshot meaning "state = snapshot, then replay WAL files from
 *   `<seq>` on"; written as `checkpoint-<seq>.ckpt.tmp` and renamed into place.
 */
import { join } from 'node:path';

const SEQ_DIGITS = 20;
const WAL_FILE_RE = /^wal-(\d{20})\.log$/;
const CHECKPOINT_FILE_RE = /^checkpoint-(\d{20})\.ckpt$/;

function padSeq(seq: number): string {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`assertion: bad WAL sequence number ${seq}`);
  return String(seq).padStart(SEQ_DIGITS, '0');
}

export function walFileName(seq: number): string {
  return `wal-${padSeq(seq)}.log`;
}

export function checkpointFileName(walSeqStart: number): string {
  return `checkpoint-${padSeq(walSeqStart)}.ckpt`;
}

export function checkpointTmpFileName(walSeqStart: number): string {
  return `${checkpointFileName(walSeqStart)}.tmp`;
}

export function walFilePath(dir: string, seq: number): string {
  return join(dir, walFileName(seq));
}

/** The WAL directory's contents by kind, each list sorted ascending. Other names are ignored. */
export interface WalDirListing {
  walSeqs: number[];
  checkpointSeqs: number[];
  /** Names of `*.tmp` files: unfinished checkpoints, never valid. */
  tmpNames: string[];
}

export function parseWalDir(names: readonly string[]): WalDirListing {
  const walSeqs: number[] = [];
  const checkpointSeqs: number[] = [];
  const tmpNames: string[] = [];
  for (const name of names) {
    let m = WAL_FILE_RE.exec(name);
    if (m) {
      walSeqs.push(Number(m[1]));
      continue;
    }
    m = CHECKPOINT_FILE_RE.exec(name);
    if (m) {
      checkpointSeqs.push(Number(m[1]));
      continue;
    }
    if (name.endsWith('.tmp')) tmpNames.push(name);
  }
  walSeqs.sort((a, b) => a - b);
  checkpointSeqs.sort((a, b) => a - b);
  return { walSeqs, checkpointSeqs, tmpNames };
}
