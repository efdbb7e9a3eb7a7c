/**
 * Retention (issue: "drop whole segments from the head"): pure rule for the first position a
 * stream keeps. Only whole sealed segments are dropped; hot-tail bytes are always kept. As in
 * Kafka, a segment goes when either limit says so. Reads below the result answer 410 Gone
 * (PROTOCOL.md §5.6).
 */
import type { SegmentRef } from '../manifest/manifest.ts';

export interface RetentionLimits {
  /** Drop a segment once it was sealed this long ago, in ms. */
  retentionMs?: number;
  /** Drop a segment once at least this many newer bytes exist after it. */
  retentionBytes?: number;
}

/**
 * @param segments the stream's segments in order; `tailOffset` its durable end.
 * @returns the new retained start: `retainedStart` unchanged, or the end of the last segment to drop.
 */
export function retainedStartAfter(
  segments: readonly SegmentRef[],
  retainedStart: number,
  tailOffset: number,
  limits: RetentionLimits,
  nowMs: number,
): number {
  let start = retainedStart;
  for (const segment of segments) {
    if (segment.end <= start) continue;
    const old = limits.retentionMs !== undefined && nowMs - segment.sealedAtMs >= limits.retentionMs;
    const surplus = limits.retentionBytes !== undefined && tailOffset - segment.end >= limits.retentionBytes;
    if (!old && !surplus) break;
    start = segment.end;
  }
  return start;
}
