/**
 * Typed protocol errors. Each class is one failure the protocol distinguishes; it carries the
 * header values PROTOCOL.md requires with it, and its status comes from `ERROR_TABLE`
 * (error-table.ts). The HTTP layer maps these in one error handler (src/http/error-handler.ts) —
 * a status is never chosen by matching message text.
 */
import { CairnError, type ErrorCode } from './error-table.ts';

export { CairnError, ERROR_TABLE, type ErrorCode, type ErrorEntry } from './error-table.ts';

/** Base of the errors the protocol itself defines; status and retryability come from `ERROR_TABLE`. */
export class ProtocolError extends CairnError {
  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(code, message, { headers });
  }
}

/** 400: malformed header, offset, TTL, JSON body, or parameter (PROTOCOL.md §5). */
export class BadRequestError extends ProtocolError {
  constructor(message: string) {
    super('BAD_REQUEST', message);
  }
}

/** 404: no stream at this path (or it expired). */
export class StreamNotFoundError extends ProtocolError {
  constructor(path: string) {
    super('STREAM_NOT_FOUND', `stream not found: ${path}`);
  }
}

/** 410: the stream is soft-deleted (§4.2) or the offset is before the retained start. */
export class GoneError extends ProtocolError {
  constructor(message: string) {
    super('GONE', message);
  }
}

/** 409: configuration mismatch, content-type mismatch, Stream-Seq regression (§5.1, §5.2). */
export class ConflictError extends ProtocolError {
  constructor(message: string, headers: Record<string, string> = {}) {
    super('CONFLICT', message, headers);
  }
}

/** 409 with `Stream-Closed: true` and the final `Stream-Next-Offset` (§5.2). */
export class StreamClosedError extends ProtocolError {
  constructor(nextOffset: string) {
    super('STREAM_CLOSED', 'stream is closed', {
      'stream-closed': 'true',
      'stream-next-offset': nextOffset,
    });
  }
}

/** 403: stale producer epoch (zombie fencing), with the current epoch (§5.2.1). */
export class StaleProducerEpochError extends ProtocolError {
  constructor(currentEpoch: number) {
    super('STALE_PRODUCER_EPOCH', `stale producer epoch; current epoch is ${currentEpoch}`, {
      'producer-epoch': String(currentEpoch),
    });
  }
}

/** 409: producer sequence gap, with expected and received sequence numbers (§5.2.1). */
export class ProducerSequenceGapError extends ProtocolError {
  constructor(expectedSeq: number, receivedSeq: number) {
    super('PRODUCER_SEQUENCE_GAP', `producer sequence gap: expected ${expectedSeq}, received ${receivedSeq}`, {
      'producer-expected-seq': String(expectedSeq),
      'producer-received-seq': String(receivedSeq),
    });
  }
}

/** 413: request body exceeds `--append-bytes-max`. */
export class PayloadTooLargeError extends ProtocolError {
  constructor(limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limitBytes} bytes`);
  }
}

/** 503 with `Retry-After`: a bounded resource is full or storage is failing; retry later. */
export class ServiceUnavailableError extends ProtocolError {
  constructor(message: string, retryAfterSeconds = 1) {
    super('SERVICE_UNAVAILABLE', message, { 'retry-after': String(retryAfterSeconds) });
  }
}

/**
 * 401 with `WWW-Authenticate: Bearer` (RFC 6750 §3): no token, or a token that is malformed,
 * unknown, expired, not yet valid, or signed by the wrong key. Sent before anything reveals whether
 * the stream exists (PROTOCOL.md §12.1, §12.2).
 */
export class UnauthorizedError extends ProtocolError {
  constructor(message: string, tokenPresent: boolean) {
    super('UNAUTHORIZED', message, {
      'www-authenticate': tokenPresent ? 'Bearer realm="cairn", error="invalid_token"' : 'Bearer realm="cairn"',
    });
  }
}

/** 403: a valid token whose grants do not cover this path and operation (RFC 6750 `insufficient_scope`). */
export class ForbiddenError extends ProtocolError {
  constructor(message: string) {
    super('FORBIDDEN', message, { 'www-authenticate': 'Bearer realm="cairn", error="insufficient_scope"' });
  }
}

/** 429 with `Retry-After`: the client's write rate is above `--appends-per-second-max` (§12.5). */
export class TooManyRequestsError extends ProtocolError {
  constructor(message: string, retryAfterSeconds: number) {
    super('TOO_MANY_REQUESTS', message, { 'retry-after': String(retryAfterSeconds) });
  }
}

/** 503: `/inspector/` was asked for but its files are not built (yet); Retry-After from the table. */
export class InspectorNotBuiltError extends ProtocolError {
  constructor() {
    super('INSPECTOR_NOT_BUILT', 'inspector not built: run npm run build:inspector');
  }
}
