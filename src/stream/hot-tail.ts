/**
 * The hot tail of one stream (DESIGN.md vocabulary): its unsealed bytes `[sealedOffset, tailOffset)`
 * in memory, kept as the append entries that produced them (one Buffer per append, never copied).
 * Entry boundaries are append boundaries, so in JSON mode they are always message boundaries.
 *
 * After a restart an entry may hold `DeferredBytes` instead: appends replayed from the WAL whose
 * bytes are still in their WAL file (src/wal/wal-file-bytes.ts). They are loaded, once, when first
 * read, cut or checkpointed; their length is known without loading (the seal policy needs only it).
 */

/** Bytes kept elsewhere until first needed. `load()` reads them (synchronously) or throws. */
export interface DeferredBytes {
  readonly length: number;
  load(): Buffer;
}

interface Entry {
  /** Logical byte position of the entry's first byte. */
  start: number;
  data: Buffer | DeferredBytes;
}

/** The entry's bytes, loading deferred ones and keeping them in the entry. */
function loaded(entry: Entry): Buffer {
  if (!Buffer.isBuffer(entry.data)) entry.data = entry.data.load();
  return entry.data;
}

export class HotTail {
  #entries: Entry[] = [];
  #startPosition: number;
  #endPosition: number;

  /** @param startPosition logical position of the first byte this tail will hold. */
  constructor(startPosition: number) {
    this.#startPosition = startPosition;
    this.#endPosition = startPosition;
  }

  /** First position held (the sealed offset). */
  get startPosition(): number {
    return this.#startPosition;
  }

  /** Position after the last byte held (the tail offset). */
  get endPosition(): number {
    return this.#endPosition;
  }

  /** Bytes held in memory. */
  get sizeBytes(): number {
    return this.#endPosition - this.#startPosition;
  }

  /** Appends one entry; returns the new end position. Empty data is ignored. */
  append(data: Buffer | DeferredBytes): number {
    if (data.length === 0) return this.#endPosition;
    const entry = { start: this.#endPosition, data };
    // A first entry gets an array of exactly one slot: push() on [] reserves 17, and most streams
    // of a million-stream server hold a single small message.
    if (this.#entries.length === 0) this.#entries = [entry];
    else this.#entries.push(entry);
    this.#endPosition += data.length;
    return this.#endPosition;
  }

  /**
   * Slices of `[from, to)` in order, cut to at most `maxBytes` — at an entry boundary when
   * `wholeEntries` is set (JSON mode), but never returning nothing when data exists.
   * Positions must satisfy `startPosition ≤ from ≤ to ≤ endPosition`.
   * @returns the slices (views, not copies) and the position after the last byte returned.
   */
  read(from: number, to: number, maxBytes: number, wholeEntries: boolean): { parts: Buffer[]; end: number } {
    if (from < this.#startPosition || to > this.#endPosition || from > to) {
      throw new RangeError(`hot tail read [${from}, ${to}) outside [${this.#startPosition}, ${this.#endPosition})`);
    }
    const parts: Buffer[] = [];
    let at = from;
    let budget = maxBytes;
    for (let i = this.#indexOf(from); i < this.#entries.length && at < to; i++) {
      const entry = this.#entries[i];
      const sliceStart = at - entry.start;
      const sliceEnd = Math.min(entry.data.length, to - entry.start);
      let length = sliceEnd - sliceStart;
      if (length > budget) {
        if (parts.length > 0 && wholeEntries) break;
        if (!wholeEntries) length = budget;
      }
      parts.push(loaded(entry).subarray(sliceStart, sliceStart + length));
      at += length;
      budget -= length;
      if (budget <= 0) break;
    }
    return { parts, end: at };
  }

  /**
   * Frees everything below `position` once it is sealed; the new start is `position`. An entry cut
   * in two keeps a copy of its rest, so the sealed part's memory is released.
   * An empty tail may also be moved forward (restoring a checkpoint of a sealed stream).
   */
  dropBefore(position: number): void {
    if (this.#entries.length === 0 && position >= this.#endPosition) {
      this.#startPosition = this.#endPosition = position;
      return;
    }
    if (position < this.#startPosition || position > this.#endPosition) {
      throw new RangeError(`hot tail cannot drop below ${position}: holds [${this.#startPosition}, ${this.#endPosition})`);
    }
    let keep = 0;
    while (keep < this.#entries.length && this.#entries[keep].start + this.#entries[keep].data.length <= position) keep++;
    this.#entries = this.#entries.slice(keep);
    const first = this.#entries[0];
    if (first !== undefined && first.start < position) {
      this.#entries[0] = { start: position, data: Buffer.from(loaded(first).subarray(position - first.start)) };
    }
    this.#startPosition = position;
  }

  /** All entries with their start positions; `data` may be deferred (see the module doc). */
  entries(): readonly Readonly<Entry>[] {
    return this.#entries;
  }

  /** Every entry's bytes, in order, loading deferred ones (checkpoints). */
  loadedEntries(): Buffer[] {
    return this.#entries.map(loaded);
  }

  /** Index of the entry holding `position` (or the first entry at/after it). */
  #indexOf(position: number): number {
    let low = 0;
    let high = this.#entries.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.#entries[mid].start <= position) low = mid;
      else high = mid - 1;
    }
    return low;
  }
}
