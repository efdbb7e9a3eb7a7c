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

/** How often expired streams are reaped in the background (expiry is also checked on access). */
export const EXPIRY_REAP_INTERVAL_MS = 1_000;

/** How often the checkpoint condition is checked. */
export const CHECKPOINT_CHECK_INTERVAL_MS = 1_000;
