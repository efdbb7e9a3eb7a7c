/**
 * The shapes of the registry's write requests and outcomes (what the HTTP routes pass in and get
 * back), and the comparison that makes create idempotent: a PUT to an existing stream is 200 when
 * its configuration matches, 409 otherwise (PROTOCOL.md §5.1).
 */
import { DEFAULT_CONTENT_TYPE, sameMediaType } from '../protocol/content-type.ts';
import type { ProducerHeaders } from '../protocol/headers.ts';
import type { OffsetToken } from '../protocol/offset.ts';
import { forkPosition, type SealedUnitReader } from './lineage.ts';
import type { StreamState } from './stream-state.ts';

export interface CreateRequest {
  path: string;
  contentType: string | undefined;
  ttlSeconds: number | undefined;
  expiresAtMs: number | undefined;
  closed: boolean;
  body: Buffer;
  fork?: { sourcePath: string; offset: OffsetToken | undefined; subOffset: number | undefined };
  /** Cairn extension headers `Cairn-Retention-Ms` / `Cairn-Retention-Bytes`. */
  retentionMs?: number;
  retentionBytes?: number;
}

export interface CreateOutcome {
  created: boolean;
  stream: StreamState;
}

export interface AppendRequest {
  path: string;
  contentType: string | undefined;
  body: Buffer;
  close: boolean;
  producer: ProducerHeaders | undefined;
  streamSeq: string | undefined;
}

export interface AppendOutcome {
  stream: StreamState;
  /** `appended`: new data or closure; `duplicate`: an idempotent retry of an accepted request. */
  kind: 'appended' | 'duplicate';
  /** Tail position after the request, for Stream-Next-Offset. */
  position: number;
  /** Producer epoch and highest accepted seq, for the response headers. */
  producer?: { epoch: number; seq: number };
}

/**
 * True when `request` asks for the configuration `stream` already has (§5.1): content type, closure,
 * TTL or expiry, retention, and for a fork the same source and fork point (an unset offset matches
 * any; an unset TTL and expiry on a fork match the inherited ones). A fork point that cannot be
 * resolved any more (retention, a failed read) does not match.
 */
export async function sameConfig(stream: StreamState, request: CreateRequest, readSealedUnit: SealedUnitReader | undefined): Promise<boolean> {
  if (request.retentionMs !== undefined && request.retentionMs !== stream.retentionMs) return false;
  if (request.retentionBytes !== undefined && request.retentionBytes !== stream.retentionBytes) return false;
  if (request.contentType !== undefined && !sameMediaType(request.contentType, stream.contentType)) return false;
  if (request.contentType === undefined && request.fork === undefined && !sameMediaType(DEFAULT_CONTENT_TYPE, stream.contentType)) {
    return false;
  }
  if (request.closed !== stream.closed) return false;
  if (request.fork !== undefined || stream.fork !== undefined) {
    if (request.fork === undefined || stream.fork === undefined) return false;
    if (stream.fork.source.path !== request.fork.sourcePath) return false;
    if (request.fork.offset !== undefined) {
      let position: number;
      try {
        position = await forkPosition(stream.fork.source, request.fork.offset, request.fork.subOffset ?? 0, readSealedUnit);
      } catch {
        return false;
      }
      if (position !== stream.fork.position) return false;
    }
    if (request.ttlSeconds === undefined && request.expiresAtMs === undefined) return true;
  }
  return request.ttlSeconds === stream.ttlSeconds && request.expiresAtMs === stream.expiresAtMs;
}
