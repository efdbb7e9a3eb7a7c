/**
 * A subscription's stream links as the protocol shows them (PROTOCOL.md §6.1, §6.3, §7.1): which
 * streams it follows (explicit entries, and every current stream its glob matches), each with its
 * effective acked cursor and tail, and which of them have pending work.
 *
 * A glob-matched stream without a stored cursor was created after the subscription: it is linked
 * at its start, so its first append is pending (§6.2). A cursor from an earlier incarnation of a
 * path sorts below the new incarnation's start, so the new stream counts from its start too.
 */
import { formatOffset } from '../protocol/offset.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import type { PathOffset } from './records.ts';
import type { Subscription } from './subscription-table.ts';

/** The offset token linked streams start from when nothing exists yet. */
export const ZERO_OFFSET = formatOffset(0, 0);

/** One link in a response: §6.3 shape, plus tail and pending for wakes (§7.1). */
export interface LinkView {
  path: string;
  link_type: 'explicit' | 'glob';
  acked_offset: string;
  tail_offset: string;
  has_pending: boolean;
}

/** The current, readable stream at `path`, or undefined. */
export function currentStream(registry: StreamRegistry, path: string): StreamState | undefined {
  try {
    return registry.get(path, { touch: false });
  } catch {
    return undefined;
  }
}

/** Durable tail token of a stream (what a reader can see). */
export function tailOffset(registry: StreamRegistry, stream: StreamState): string {
  return registry.offsetOf(stream, stream.durableOffset);
}

function viewOf(registry: StreamRegistry, path: string, explicit: boolean, acked: string | null, stream: StreamState | undefined): LinkView {
  const start = stream === undefined ? ZERO_OFFSET : registry.offsetOf(stream, stream.basePosition);
  const effective = acked !== null && acked > start ? acked : start;
  const tail = stream === undefined ? effective : tailOffset(registry, stream);
  return { path, link_type: explicit ? 'explicit' : 'glob', acked_offset: effective, tail_offset: tail, has_pending: tail > effective };
}

/** Every link of `sub`, in path order. O(streams held) when the subscription has a glob. */
export function linkViews(registry: StreamRegistry, sub: Subscription): LinkView[] {
  const views = new Map<string, LinkView>();
  for (const [path, link] of sub.links) {
    if (!link.explicit && sub.glob?.test(path) !== true) continue;
    const stream = currentStream(registry, path);
    // A glob link lives as long as its stream; an explicit one also before the stream exists.
    if (!link.explicit && stream === undefined) continue;
    views.set(path, viewOf(registry, path, link.explicit, link.acked, stream));
  }
  if (sub.glob !== null) {
    for (const stream of registry.allStreams()) {
      if (views.has(stream.path) || !sub.glob.test(stream.path) || stream.softDeleted || !stream.createDurable || !registry.isCurrent(stream)) continue;
      views.set(stream.path, viewOf(registry, stream.path, false, null, stream));
    }
  }
  return [...views.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The pending links (at most `max`), for a wake or a claim. */
export function pendingViews(registry: StreamRegistry, sub: Subscription, max: number): LinkView[] {
  return linkViews(registry, sub)
    .filter((view) => view.has_pending)
    .slice(0, max);
}

/** The tails of matching streams that exist now: where a new subscription's cursors start (§6.2 backfill). */
export function currentTails(registry: StreamRegistry, sub: Pick<Subscription, 'glob'>, explicit: readonly string[]): PathOffset[] {
  const tails = new Map<string, string>();
  for (const path of explicit) {
    const stream = currentStream(registry, path);
    if (stream !== undefined) tails.set(path, tailOffset(registry, stream));
  }
  if (sub.glob !== null) {
    for (const stream of registry.allStreams()) {
      if (stream.softDeleted || !stream.createDurable || !registry.isCurrent(stream) || !sub.glob.test(stream.path)) continue;
      tails.set(stream.path, tailOffset(registry, stream));
    }
  }
  return [...tails];
}
