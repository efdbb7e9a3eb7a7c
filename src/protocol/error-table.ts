/**
 * Every error a request can end in, in one table: its stable `code`, the HTTP status it is
 * answered with, whether the same request may succeed later (`retryable`), and the protocol
 * headers it carries. `CairnError` is the one base class: the protocol's errors
 * (`protocol/errors.ts`), the WAL's (`wal/errors.ts`) and the object store's
 * (`object-store/object-store.ts`) all extend it, and take status, `retryable` and default
 * headers from this table by their code. `http/error-handler.ts` is the only place that turns
 * them into responses. It lives in `protocol/`, the bottom layer, so every layer can import it.
 *
 * Rich internal codes map to a few public answers (the WAL's and the object store's codes are
 * 503, 413 or 500); a status is never chosen by matching message text.
 */

/** How the error handler answers one error code. */
export interface ErrorEntry {
  /** HTTP status of the response. */
  readonly status: number;
  /** True if the same request may succeed later; such errors carry `retry-after`. */
  readonly retryable: boolean;
  /** Protocol headers (lower-case names) an error of this code always carries. */
  readonly headers: readonly string[];
  /** `Retry-After` in seconds when the error itself does not give one. */
  readonly retryAfterSeconds?: number;
  /** Prefix of the response body naming the part that failed (`<subject>: <message>`). */
  readonly subject?: string;
  /** The body is JSON `{ "error": { "code", "message", …details } }`: the subscription APIs (PROTOCOL.md §6–7) and the Proxy Protocol (its §11), not a line of text. */
  readonly json?: boolean;
  /** The code a JSON body names when the protocol's code is already a row of its own (e.g. a proxy 404 is `STREAM_NOT_FOUND`). */
  readonly bodyCode?: string;
}

const RETRY_AFTER = ['retry-after'] as const;
const NONE = [] as const;

/** The one error table, keyed by code. Status ≥ 500 (but 501) and not retryable: a bug or an operator's problem. */
export const ERROR_TABLE = {
  // Protocol (PROTOCOL.md §5, §12): what the client got wrong, or what the server refuses for now.
  /** Malformed header, offset, TTL, JSON body or parameter: the client must change the request. */
  BAD_REQUEST: { status: 400, retryable: false, headers: NONE },
  /** Token missing or invalid: RFC 6750 §3 asks for `WWW-Authenticate: Bearer`. */
  UNAUTHORIZED: { status: 401, retryable: false, headers: ['www-authenticate'] },
  /** A valid token without the grant: RFC 6750 `insufficient_scope`. */
  FORBIDDEN: { status: 403, retryable: false, headers: ['www-authenticate'] },
  /** Zombie producer fencing (§5.2.1): the client learns the current epoch. */
  STALE_PRODUCER_EPOCH: { status: 403, retryable: false, headers: ['producer-epoch'] },
  /** No stream at this path (or it expired). */
  STREAM_NOT_FOUND: { status: 404, retryable: false, headers: NONE },
  /** Configuration, content-type or Stream-Seq conflict (§5.1, §5.2). */
  CONFLICT: { status: 409, retryable: false, headers: NONE },
  /** Append to a closed stream (§5.2): the client learns the final offset. */
  STREAM_CLOSED: { status: 409, retryable: false, headers: ['stream-closed', 'stream-next-offset'] },
  /** Producer sequence gap (§5.2.1): the client learns which sequence to resend from. */
  PRODUCER_SEQUENCE_GAP: { status: 409, retryable: false, headers: ['producer-expected-seq', 'producer-received-seq'] },
  /** Soft-deleted stream (§4.2), offset below retention, or an earlier incarnation's offset. */
  GONE: { status: 410, retryable: false, headers: NONE },
  /** Body above `--max-append-bytes`: retrying the same body cannot succeed. */
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false, headers: NONE },
  /** Write rate above the client's limit (§12.5); the error sets its own Retry-After. */
  TOO_MANY_REQUESTS: { status: 429, retryable: true, headers: RETRY_AFTER },
  /** A bounded resource is full (streams, live readers, hot tails) or auth keys cannot be fetched. */
  SERVICE_UNAVAILABLE: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1 },

  /** The web inspector's files are not built yet (`npm run build:inspector`); served as soon as they are. */
  INSPECTOR_NOT_BUILT: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 60 },
  // Subscriptions (PROTOCOL.md §6–7, subscriptions/errors.ts): JSON bodies with the protocol's codes.
  /** A webhook URL that is not https, or points at a private, loopback or link-local target (§6.2, §12.8). */
  WEBHOOK_URL_REJECTED: { status: 400, retryable: false, headers: NONE, json: true },
  /** Callback or claim token missing or not valid for this subscription's current wake (§12.9). */
  TOKEN_INVALID: { status: 401, retryable: false, headers: NONE, json: true },
  /** No subscription with this id (or it was deleted). */
  SUBSCRIPTION_NOT_FOUND: { status: 404, retryable: false, headers: NONE, json: true },
  /** Same id, different configuration (§6.2). */
  SUBSCRIPTION_CONFLICT: { status: 409, retryable: false, headers: NONE, json: true },
  /** Stale `generation` or `wake_id`, or an expired lease (§7.3). */
  FENCED: { status: 409, retryable: false, headers: NONE, json: true },
  /** Another worker holds the lease (§7.2); details name it and the generation. */
  ALREADY_CLAIMED: { status: 409, retryable: false, headers: NONE, json: true },
  /** A claim found no pending work and no wake to take. */
  NO_PENDING_WORK: { status: 409, retryable: false, headers: NONE, json: true },
  /** Cluster mode and `--workers`: subscriptions are not served yet (a node sees only its own streams, so it would miss wakes). */
  SUBSCRIPTIONS_NOT_IN_CLUSTER: { status: 501, retryable: false, headers: NONE, json: true },

  // Cluster mode (cluster/errors.ts, DESIGN.md "Scale-out").
  /** This node does not own the stream's slot (it moved or is moving): retry, the owner answers; `Cairn-Slot-Owner` names the owner it knows (empty if none). */
  SLOT_NOT_OWNED: { status: 503, retryable: true, headers: ['retry-after', 'cairn-slot-owner'], retryAfterSeconds: 1, subject: 'cluster' },
  /** Ownership cannot be trusted now (lease at risk, etcd unreachable, owner not live): writes wait. */
  CLUSTER_UNAVAILABLE: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'cluster unavailable' },

  // Write-ahead log (wal/errors.ts).
  /** The WAL's queue of not-yet-durable bytes is full: the disk is behind; nothing was written. */
  WAL_OVERLOADED: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** A WAL write or fsync failed: the append was not acknowledged; the next process may take it. */
  WAL_WRITE_FAILED: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** The server is shutting down: retry against the next process. */
  WAL_CLOSED: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** Internal: a second checkpoint while one runs; never reaches a client, 503 if it ever did. */
  WAL_CHECKPOINT_IN_PROGRESS: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** One append does not fit one WAL record: the same body never will, so 413, not 503. */
  WAL_RECORD_TOO_LARGE: { status: 413, retryable: false, headers: NONE },
  /** Recovery found damage it cannot explain: the data directory needs an operator. */
  WAL_CORRUPT: { status: 500, retryable: false, headers: NONE },
  /** Recovery could not show the WAL is on disk: the server refuses to start; never a response. */
  WAL_NOT_DURABLE: { status: 500, retryable: false, headers: NONE },
  /** Diskless mode: the object store did not take the last WAL object; new appends wait for it (the queued ones are retried). */
  WAL_OBJECT_STORE_UNAVAILABLE: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** Diskless mode: a newer process took this WAL chain over (create-if-absent refused a WAL object): this one acknowledges nothing more. */
  WAL_FENCED: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, subject: 'write-ahead log unavailable' },
  /** Diskless mode: another process claimed the same WAL generation at the same moment; never a response (the start fails). */
  WAL_CHAIN_CLAIMED: { status: 500, retryable: false, headers: NONE },

  // Object store (object-store/object-store.ts). Callers catch the expected ones (a missing
  // object, a lost create-if-absent race) before they reach a client; the rest are 500.
  /** Store unreachable or transient failure, after the retrying store gave up: retry in a while. */
  OBJECT_STORE_UNAVAILABLE: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 5, subject: 'object store unavailable' },
  /** A create-if-absent put lost: another writer exists; a client never should see it. */
  OBJECT_ALREADY_EXISTS: { status: 500, retryable: false, headers: NONE },
  /** A missing object the caller did not expect (one it expects becomes e.g. GONE at the call site). */
  OBJECT_NOT_FOUND: { status: 500, retryable: false, headers: NONE },
  /** A ranged read past an object's end: a caller bug. */
  OBJECT_RANGE_NOT_SATISFIABLE: { status: 500, retryable: false, headers: NONE },
  /** A key that breaks the key rules: a caller bug. */
  OBJECT_KEY_INVALID: { status: 500, retryable: false, headers: NONE },
  /** The store refused for good (access denied, no such bucket): the operator must fix it. */
  OBJECT_STORE_REQUEST_FAILED: { status: 500, retryable: false, headers: NONE },
  /** The store does not enforce create-if-absent: startup refuses it. */
  OBJECT_STORE_OVERWRITE_UNSAFE: { status: 500, retryable: false, headers: NONE },
  /**
   * Stored bytes fail their manifest checksum, or a manifest names objects the store no longer
   * holds (docs/storage-layout.md): no bytes are served; the key is in the error log. 503, not
   * 500: another replica or an operator's repair may bring the data back.
   */
  STORED_DATA_CORRUPT: { status: 503, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 60, subject: 'stored data corrupt' },

  // Durable proxy (the Proxy Protocol v0.1 §11; src/proxy/errors.ts): codes as the spec names them.
  MISSING_UPSTREAM_URL: { status: 400, retryable: false, headers: NONE, json: true },
  MISSING_UPSTREAM_METHOD: { status: 400, retryable: false, headers: NONE, json: true },
  INVALID_UPSTREAM_METHOD: { status: 400, retryable: false, headers: NONE, json: true },
  /** The upstream answered 3xx: never followed (§6.1), so an allowed URL cannot lead elsewhere. */
  REDIRECT_NOT_ALLOWED: { status: 400, retryable: false, headers: NONE, json: true },
  INVALID_ACTION: { status: 400, retryable: false, headers: NONE, json: true },
  MISSING_SIGNATURE: { status: 401, retryable: false, headers: NONE, json: true },
  SIGNATURE_EXPIRED: { status: 401, retryable: false, headers: NONE, json: true },
  SIGNATURE_INVALID: { status: 401, retryable: false, headers: NONE, json: true },
  /** Not on the allowlist, or it resolves to a private or local address (§6, §12.1). */
  UPSTREAM_NOT_ALLOWED: { status: 403, retryable: false, headers: NONE, json: true },
  /** The upstream could not be reached or failed before answering: it may work later. */
  UPSTREAM_ERROR: { status: 502, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, json: true },
  /** No response head within `--proxy-first-byte-timeout-ms` (or no connection in time). */
  UPSTREAM_TIMEOUT: { status: 504, retryable: true, headers: RETRY_AFTER, retryAfterSeconds: 1, json: true },
  /** No proxy stream with this id (§11.5): the spec's JSON body, where a plain stream 404 is text. */
  PROXY_STREAM_NOT_FOUND: { status: 404, retryable: false, headers: NONE, json: true, bodyCode: 'STREAM_NOT_FOUND' },
} as const satisfies Record<string, ErrorEntry>;

/** A stable error code: a key of `ERROR_TABLE`. */
export type ErrorCode = keyof typeof ERROR_TABLE;

/** The table entry of `code`. */
export function errorEntry(code: ErrorCode): ErrorEntry {
  return ERROR_TABLE[code];
}

/**
 * Base of every error that can reach a client. Status, `retryable` and the default
 * `retry-after` come from `ERROR_TABLE[code]`; `headers` adds the values only the thrower
 * knows (an offset, an epoch). Branch on the class or `code`, never on message text.
 */
export class CairnError extends Error {
  /** Stable machine-readable code, e.g. `STREAM_NOT_FOUND`. */
  readonly code: ErrorCode;
  /** HTTP status of a request that failed with this error (from the table). */
  readonly statusCode: number;
  /** True if the same request may succeed later (from the table). */
  readonly retryable: boolean;
  /** The protocol headers of the response (lower-case names): the table's, with values. */
  readonly headers: Readonly<Record<string, string>>;
  /** Extra fields of a JSON error body (table entries with `json`), e.g. `current_holder`; absent for most errors. */
  readonly details?: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { headers?: Record<string, string>; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    const entry = errorEntry(code);
    this.code = code;
    this.statusCode = entry.status;
    this.retryable = entry.retryable;
    const defaults: Record<string, string> = entry.retryAfterSeconds === undefined ? {} : { 'retry-after': String(entry.retryAfterSeconds) };
    this.headers = { ...defaults, ...options?.headers };
    if (options?.details !== undefined) this.details = options.details;
  }
}
