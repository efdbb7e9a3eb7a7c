/**
 * WAL records of the stream layer. Every state change of a stream is one record, applied by the
 * same function live and at replay (src/stream/stream-table.ts `apply`), so recovery reproduces the
 * exact state. A producer-state change travels in the same record as its data (exactly-once
 * across crashes, DESIGN.md invariants). Fields are short because every append carries them.
 */
import type { SegmentRef } from '../manifest/manifest.ts';
import type { DeferredBytes } from './hot-tail.ts';

/** A stream is created (with its initial bytes, already in stored form). */
export interface CreateRecord {
  t: 'create';
  /** New incarnation number (server-wide, increasing). */
  inc: number;
  path: string;
  contentType: string;
  ttlSeconds?: number;
  expiresAtMs?: number;
  closed: boolean;
  /** Fork source incarnation and the logical position where the fork diverges. */
  fork?: { inc: number; position: number };
  /** Deferred only in a record replayed from the WAL (src/stream/hot-tail.ts). */
  data?: Buffer | DeferredBytes;
  createdAtMs: number;
  /** Per-stream retention (the `Cairn-Retention-*` create headers); absent = server default. */
  retentionMs?: number;
  retentionBytes?: number;
}

/** Bytes appended to a stream, optionally with producer state, Stream-Seq and closure. */
export interface AppendRecord {
  t: 'append';
  inc: number;
  /** Deferred only in a record replayed from the WAL (src/stream/hot-tail.ts). */
  data?: Buffer | DeferredBytes;
  /** `[producerId, epoch, seq]` accepted with this append. */
  producer?: [string, number, number];
  streamSeq?: string;
  close?: boolean;
}

/** A stream is deleted (soft-deleted while forks reference it). */
export interface DeleteRecord {
  t: 'delete';
  inc: number;
}

/**
 * `[start, end)` of a stream was sealed into a segment and manifest `version` listing it is stored
 * (src/tiering/sealer.ts). Written after the manifest; until it is replayed, a restart finds the
 * bytes in the WAL again and the sealer adopts the stored manifest.
 */
export interface SealRecord {
  t: 'seal';
  inc: number;
  segment: SegmentRef;
  version: number;
}

/** Retention dropped the segments below `retainedStart`; manifest `version` no longer lists them. */
export interface TrimRecord {
  t: 'trim';
  inc: number;
  retainedStart: number;
  version: number;
}

/**
 * A stream incarnation loaded from the object store (docs/storage-layout.md "Lazy lookup"): its
 * state as of its stored sealed offset. Logged before the first record that changes it, so replay
 * knows the incarnation; applying it when the incarnation is already held changes nothing.
 */
export interface LoadRecord {
  t: 'load';
  inc: number;
  path: string;
  contentType: string;
  createdAtMs: number;
  ttlSeconds?: number;
  expiresAtMs?: number;
  retentionMs?: number;
  retentionBytes?: number;
  fork?: { inc: number; position: number };
  /** The node id in the incarnation's object keys. */
  objectNodeId: string;
  segments: SegmentRef[];
  sealedOffset: number;
  retainedStart: number;
  manifestVersion: number;
  closed: boolean;
  closedBy?: [string, number, number];
  lastStreamSeq?: string;
  producers: [string, number, number][];
  softDeleted: boolean;
}

/**
 * Cluster mode: the stream's slot was handed to another node after every byte and its metadata
 * were stored (docs/cluster.md "Moves"). The incarnation is forgotten here, its objects kept; the
 * new owner loads it from the object store.
 */
export interface UnloadRecord {
  t: 'unload';
  inc: number;
}

export type StreamRecord = CreateRecord | AppendRecord | DeleteRecord | SealRecord | TrimRecord | LoadRecord | UnloadRecord;
