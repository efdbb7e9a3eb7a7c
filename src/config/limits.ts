/**
 * Every default limit in one place, each with the reason for its number (STYLE.md).
 */

/** Default TCP port: the protocol's registered default (PROTOCOL.md §13.1). */
export const PORT_DEFAULT = 4437;

/**
 * Long-poll wait before answering 204: 20 s stays below CloudFront's 30 s default origin read
 * timeout, so a CDN in front never cuts a waiting request.
 */
export const LONG_POLL_TIMEOUT_MS_DEFAULT = 20_000;

/**
 * Largest append body: 64 MiB. Bodies are buffered whole before validation (JSON mode must parse
 * them) and are held in the hot tail, so the limit bounds per-request memory; larger payloads
 * should be split into several appends.
 */
export const MAX_APPEND_BYTES_DEFAULT = 64 * 1024 * 1024;

/** The highest `--max-append-bytes` accepted: one append is one WAL frame, capped at 256 MiB. */
export const MAX_APPEND_BYTES_LIMIT = 128 * 1024 * 1024;

/**
 * Largest catch-up response: 4 MiB. Big enough that small streams come back in one response (the
 * conformance suite and clients with `live: false` expect that), small enough that one slow
 * reader holds little memory and responses stay CDN-friendly.
 */
export const MAX_CHUNK_BYTES_DEFAULT = 4 * 1024 * 1024;

/** SSE connections are closed after ~60 s so CDNs can collapse reconnects (PROTOCOL.md §10.2). */
export const SSE_RECONNECT_MS_DEFAULT = 60_000;

/**
 * Live readers (long-poll + SSE) waiting at once: 100,000. Each costs a socket and a few hundred
 * bytes of state; the number is set so that fan-out of tens of thousands fits while a flood of
 * connections is refused with 503 before memory runs out.
 */
export const LIVE_READERS_MAX_DEFAULT = 100_000;

/**
 * Checkpoint after this many WAL bytes: 256 MiB. Replay runs at several hundred MB/s, so restart
 * replays at most about a second of WAL; a checkpoint rewrites the hot tails, so checkpointing
 * much more often would spend disk bandwidth twice.
 */
export const CHECKPOINT_WAL_BYTES_DEFAULT = 256 * 1024 * 1024;

/**
 * How long an idempotent producer's request that arrives ahead of its predecessor waits for it
 * before answering 409 (sequence gap): 1 s. Pipelined batches (the upstream IdempotentProducer
 * keeps 5 in flight) travel on separate connections and overtake each other by milliseconds; a
 * predecessor that is really lost costs the client one second more before its 409.
 */
export const PRODUCER_SEQUENCE_GAP_WAIT_MS = 1_000;

/** How often expired streams are reaped in the background (expiry is also checked on access). */
export const EXPIRY_REAP_INTERVAL_MS = 1_000;

/** How often the checkpoint condition is checked. */
export const CHECKPOINT_CHECK_INTERVAL_MS = 1_000;

// -------------------------------------------------------------------------------------------------
// Tiering (DESIGN.md: seal policy, caching, backpressure)

/**
 * Segment size: 8 MiB. Each seal costs two PUTs (segment + manifest), so 8 MiB segments cost
 * 256 PUTs per GiB ingested (about $0.0013/GiB on S3 Standard); smaller segments multiply that,
 * larger ones hold more unsealed bytes in memory and in the WAL per stream.
 */
export const SEGMENT_SIZE_BYTES_DEFAULT = 8 * 1024 * 1024;

/**
 * Seal a stream's hot tail after 30 s without appends: a finished LLM response or agent session
 * moves to the object store (and out of memory) half a minute after its last token, while a
 * stream that writes every few seconds still fills large segments.
 */
export const SEAL_IDLE_MS_DEFAULT = 30_000;

/**
 * Seal bytes that have been unsealed for 5 minutes even if the stream keeps trickling: bounds how
 * long data exists only on the local disk and how much WAL a slow stream pins.
 */
export const SEAL_MAX_AGE_MS_DEFAULT = 5 * 60_000;

/**
 * Hot-tail budget: 512 MiB of unsealed bytes across all streams. Past 3/4 of it the largest hot
 * tails are sealed first; at the budget appends get 503 + Retry-After (object store down or too
 * slow) instead of memory growing without bound. 512 MiB is 64 full segments, and at 300 MB/s of
 * ingest it gives the store more than a second of slack.
 */
export const HOT_TAIL_BUDGET_BYTES_DEFAULT = 512 * 1024 * 1024;

/** Fraction of the hot-tail budget above which the largest hot tails are sealed early. */
export const HOT_TAIL_PRESSURE_FRACTION = 0.75;

/**
 * Segment cache: 256 MiB of segment chunks read from the object store (lru-cache, by bytes). A
 * hit saves one GET (tens of ms on S3); 256 MiB keeps the 64 most recent 4 MiB chunks, enough for
 * many readers catching up on the same recent history.
 */
export const SEGMENT_CACHE_BYTES_DEFAULT = 256 * 1024 * 1024;

/**
 * Segment uploads in flight at once: 4. Enough to keep an S3 connection pool busy (an 8 MiB PUT
 * takes ~100 ms) without letting a backlog of seals take all sockets and memory at once.
 */
export const SEAL_UPLOADS_MAX = 4;

/**
 * Seals and retention trims running at once: 64. Each holds a few small objects in memory and
 * waits for an upload slot; more streams due at once (a million quiet streams going idle
 * together) wait in a queue instead of each starting a task.
 */
export const SEAL_TASKS_MAX = 64;

/** First pause before a failed seal of a stream is tried again; doubles up to the maximum. */
export const SEAL_RETRY_BACKOFF_BASE_MS = 500;
export const SEAL_RETRY_BACKOFF_MAX_MS = 30_000;

/** How often the sealer looks at idle/old hot tails, budget pressure and retention. */
export const SEAL_CHECK_INTERVAL_MS = 100;

/** Pause between attempts to delete the objects of a removed stream (retried until done). */
export const OBJECT_DELETE_RETRY_MS = 5_000;

// -------------------------------------------------------------------------------------------------
// Observability and shutdown (issue 6)

/**
 * `/readyz` keeps an object-store probe result for 1 s: load balancers and Kubernetes probe every
 * few seconds, possibly from several places, and each probe is a billed S3 request; one second
 * still notices an outage (and its end) almost at once.
 */
export const READINESS_PROBE_CACHE_MS = 1_000;

/** An object-store probe not answered within 2 s counts as unreachable (a healthy HEAD takes ms). */
export const READINESS_PROBE_TIMEOUT_MS = 2_000;

/**
 * Graceful shutdown waits up to 10 s for in-flight requests (appends awaiting their fsync, reads
 * streaming to slow clients) after live readers were ended, then closes the remaining connections.
 * Well inside Kubernetes' default 30 s termination grace period, which also covers sealing and
 * closing the WAL afterwards.
 */
export const SHUTDOWN_DRAIN_MS = 10_000;

/** While draining, idle keep-alive connections are closed every 50 ms (they would hold the drain open). */
export const SHUTDOWN_IDLE_SWEEP_MS = 50;
