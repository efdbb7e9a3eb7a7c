/**
 * The seal policy (DESIGN.md "Seal policy"), pure so it can be tested without I/O: when a hot tail
 * is sealed, where the cut goes, and which streams give up their hot tails first under memory
 * pressure, and when a fork may store its first manifest.
 */

export interface SealPolicy {
  /** Seal once this many durable bytes are unsealed (`--segment-size-bytes`). */
  segmentSizeBytes: number;
  /** Seal after this long without appends (`--seal-idle-ms`). */
  sealIdleMs: number;
  /** Seal bytes unsealed for this long (`--unsealed-age-ms-max`). */
  unsealedAgeMsMax: number;
}

/** What the policy needs to know about one hot tail. */
export interface HotTailView {
  /** Durable, unsealed bytes (`durableOffset − sealedOffset`). */
  sealableBytes: number;
  /** Since the last append, in ms. */
  idleMs: number;
  /** Since the hot tail last went from empty to non-empty, in ms. */
  unsealedAgeMs: number;
  /** The stream's closure is durable: nothing more will come. */
  closed: boolean;
}

export type SealReason = 'size' | 'closed' | 'idle' | 'age';

/** Why this hot tail should be sealed now, or undefined to leave it. */
export function sealReason(view: HotTailView, policy: SealPolicy): SealReason | undefined {
  if (view.sealableBytes <= 0) return undefined;
  if (view.sealableBytes >= policy.segmentSizeBytes) return 'size';
  if (view.closed) return 'closed';
  if (view.idleMs >= policy.sealIdleMs) return 'idle';
  if (view.unsealedAgeMs >= policy.unsealedAgeMsMax) return 'age';
  return undefined;
}

/**
 * Under memory pressure: the hot tails to seal, largest first, until the total would fall to
 * `targetBytes`. Ties keep the input order.
 * @param tails `[id, sealableBytes]` pairs; `totalBytes` counts all hot-tail bytes (also unsealable).
 */
export function pressureVictims<Id>(tails: readonly (readonly [Id, number])[], totalBytes: number, targetBytes: number): Id[] {
  const victims: Id[] = [];
  let remaining = totalBytes;
  for (const [id, bytes] of [...tails].sort((a, b) => b[1] - a[1])) {
    if (remaining <= targetBytes || bytes <= 0) break;
    victims.push(id);
    remaining -= bytes;
  }
  return victims;
}

export interface Cut {
  /** End of the segment: the new sealed offset. */
  end: number;
  /** Ends of the segment's read units, ascending, the last equal to `end` (SegmentRef.unitEnds). */
  unitEnds: number[];
}

/**
 * Where to cut the next segment of a hot tail holding `entries` (append entries, in order), from
 * `from` (the sealed offset, an entry boundary or inside the first entry) up to `to` (the durable
 * offset).
 * - Byte streams cut at `from + segmentSizeBytes` (or `to`), and split the segment into read units
 *   at fixed steps of `chunkBytesMax`.
 * - JSON streams (`wholeEntries`) cut and split only between append entries, so every segment and
 *   unit holds whole messages; a single entry larger than a limit is a unit (and a segment) alone.
 * Deterministic for the same bytes, so readers and CDNs see the same boundaries.
 */
export function chooseCut(
  entries: readonly { start: number; data: { length: number } }[],
  from: number,
  to: number,
  segmentSizeBytes: number,
  chunkBytesMax: number,
  wholeEntries: boolean,
): Cut | undefined {
  if (to <= from) return undefined;
  if (!wholeEntries) {
    const end = Math.min(to, from + segmentSizeBytes);
    const unitEnds: number[] = [];
    for (let at = from + chunkBytesMax; at < end; at += chunkBytesMax) unitEnds.push(at);
    unitEnds.push(end);
    return { end, unitEnds };
  }
  const unitEnds: number[] = [];
  let end = from;
  let unitStart = from;
  for (const entry of entries) {
    const entryEnd = entry.start + entry.data.length;
    if (entryEnd <= from) continue;
    if (entryEnd > to || (end > from && entryEnd - from > segmentSizeBytes)) break;
    if (end > unitStart && entryEnd - unitStart > chunkBytesMax) {
      unitEnds.push(end);
      unitStart = end;
    }
    end = entryEnd;
  }
  if (end === from) return undefined;
  unitEnds.push(end);
  return { end, unitEnds };
}

/**
 * Whether a fork's source has stored what the fork's manifests refer to: a manifest of its own
 * covering the fork position. Until then no manifest of the fork is written, so the store never
 * holds a fork whose source (or the source's bytes below the fork position) it lacks — a node
 * without the local disk could not serve it, and `cairn verify` would fail it.
 */
export function forkSourceStored(stream: {
  readonly fork: { readonly source: { readonly manifestVersion: number; readonly sealedOffset: number }; readonly position: number } | undefined;
}): boolean {
  const fork = stream.fork;
  return fork === undefined || (fork.source.manifestVersion > 0 && fork.source.sealedOffset >= fork.position);
}
