/**
 * Key layout of the diskless write-ahead log (`--durability object-store`; DESIGN.md "Durability
 * modes"), in one place. A **chain** is the WAL of one node (its name: the node id, or
 * `default` for a single server). Each start of a process on a chain is a new **generation**;
 * within it, WAL objects are numbered by **sequence** from 0, one object per flush:
 *
 * ```
 * _cairn/wal/<chain>/node-id                               the node id this chain's objects are named with (create-if-absent, never changes)
 * _cairn/wal/<chain>/<generation:010>/claim               the start that owns the generation (create-if-absent)
 * _cairn/wal/<chain>/<generation:010>/<seq:012>.wal       record frames (record-codec.ts) of one flush
 * _cairn/wal/<chain>/<generation:010>/<seq:012>.wal       EMPTY: the fence a later generation put at the first missing sequence
 * _cairn/wal/<chain>/<generation:010>/<seq:012>.ckpt      checkpoint: the state up to WAL object <seq> of <generation>
 * _cairn/wal/<chain>/<generation:010>/<seq:012>.<n:06>.ckpt  a later checkpoint at the same position (state changed without
 *                                                         a record: slots taken over); the highest n is the newest
 * ```
 *
 * Zero-padded numbers make a LIST come back in replay order. Every object is written
 * create-if-absent, so a fence object and a late write of a paused process (a zombie) race for
 * one key and exactly one wins: if the fence wins, the zombie's put is refused and it
 * acknowledges nothing more; if the zombie wins, recovery reads its object and fences the next
 * sequence. A WAL object is never empty (a flush stores at least one frame), so an empty object
 * is always a fence.
 */

/** Prefix of every diskless WAL object of every chain. */
export const OBJECT_WAL_PREFIX = '_cairn/wal/';

/** Chain name of a server without a configured node id. */
export const OBJECT_WAL_CHAIN_DEFAULT = 'default';

const GENERATION_DIGITS = 10;
const SEQ_DIGITS = 12;
const CHECKPOINT_COUNT_DIGITS = 6;

/** Prefix of every object of `chain`. */
export function chainPrefix(chain: string): string {
  return `${OBJECT_WAL_PREFIX}${chain}/`;
}

function generationPrefix(chain: string, generation: number): string {
  return `${chainPrefix(chain)}${String(generation).padStart(GENERATION_DIGITS, '0')}/`;
}

/** Key of WAL object `seq` of `generation` (also where a fence goes). */
export function walObjectKey(chain: string, generation: number, seq: number): string {
  return `${generationPrefix(chain, generation)}${String(seq).padStart(SEQ_DIGITS, '0')}.wal`;
}

/**
 * Key of the checkpoint from which replay continues at WAL object `seq` of `generation`; `count`
 * numbers further checkpoints at the same position (0: the first, keyed without a number).
 */
export function checkpointObjectKey(chain: string, generation: number, seq: number, count = 0): string {
  const suffix = count === 0 ? '' : `.${String(count).padStart(CHECKPOINT_COUNT_DIGITS, '0')}`;
  return `${generationPrefix(chain, generation)}${String(seq).padStart(SEQ_DIGITS, '0')}${suffix}.ckpt`;
}

/** Key that a start writes create-if-absent to own `generation`. */
export function claimObjectKey(chain: string, generation: number): string {
  return `${generationPrefix(chain, generation)}claim`;
}

/** Key of the node id of `chain`: segments and manifests name their writer by it (object-naming.ts). */
export function nodeIdObjectKey(chain: string): string {
  return `${chainPrefix(chain)}node-id`;
}

/** What a key of the chain is; `undefined` for a key that is not part of the layout. */
export type ChainObject =
  | { kind: 'wal'; generation: number; seq: number }
  | { kind: 'checkpoint'; generation: number; seq: number; count: number }
  | { kind: 'claim'; generation: number };

const KEY_PATTERN = /^(\d{10})\/(?:(\d{12})\.wal|(\d{12})(?:\.(\d{6}))?\.ckpt|claim)$/;

/** Parses a key listed under `chainPrefix(chain)`. */
export function parseChainKey(chain: string, key: string): ChainObject | undefined {
  const prefix = chainPrefix(chain);
  if (!key.startsWith(prefix)) return undefined;
  const match = KEY_PATTERN.exec(key.slice(prefix.length));
  if (match === null) return undefined;
  const generation = Number(match[1]);
  if (match[2] !== undefined) return { kind: 'wal', generation, seq: Number(match[2]) };
  if (match[3] !== undefined) return { kind: 'checkpoint', generation, seq: Number(match[3]), count: Number(match[4] ?? 0) };
  return { kind: 'claim', generation };
}

/** Orders (generation, seq) pairs; checkpoints at one position by their `count`. */
export function comparePositions(a: { generation: number; seq: number; count?: number }, b: { generation: number; seq: number; count?: number }): number {
  return a.generation - b.generation || a.seq - b.seq || (a.count ?? 0) - (b.count ?? 0);
}
