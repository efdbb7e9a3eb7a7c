/**
 * Object keys of a stream incarnation (object-keys.ts), with this node's id and a per-stream memo
 * of the prefix (it costs a SHA-256). The sealer, retention, the object collector and the read
 * path all name objects through one `ObjectNaming`.
 */
import { manifestKey, segmentKey, streamObjectPrefix } from './object-keys.ts';
import type { SegmentRef } from './manifest.ts';

/** What names a stream incarnation's objects (a `StreamState` is one). */
export interface StreamIdentity {
  readonly path: string;
  readonly incarnation: number;
  /** Node id in the incarnation's keys when another node created it (loaded from the store); default this node's. */
  readonly objectNodeId?: string | undefined;
}

export class ObjectNaming {
  /** 12 hex digits naming the data directory that writes the objects (see object-keys.ts). */
  readonly nodeId: string;
  readonly #prefixes = new WeakMap<StreamIdentity, string>();

  constructor(nodeId: string) {
    this.nodeId = nodeId;
  }

  /** Key prefix of everything `stream` stores, ending in '/'. */
  prefix(stream: StreamIdentity): string {
    let prefix = this.#prefixes.get(stream);
    if (prefix === undefined) {
      prefix = streamObjectPrefix(stream.path, stream.incarnation, stream.objectNodeId ?? this.nodeId);
      this.#prefixes.set(stream, prefix);
    }
    return prefix;
  }

  /** Key of the segment `[segment.start, segment.end)` of `stream`. */
  segment(stream: StreamIdentity, segment: Pick<SegmentRef, 'start' | 'end'>): string {
    return segmentKey(this.prefix(stream), segment.start, segment.end);
  }

  /** Key of manifest `version` of `stream`. */
  manifest(stream: StreamIdentity, version: number): string {
    return manifestKey(this.prefix(stream), version);
  }
}
