/**
 * Every default limit in one place, each with the reason for its number (STYLE.md). Over 400
 * lines on purpose: one table read as a whole is the point of keeping them together.
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
export const APPEND_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** The highest `--append-bytes-max` accepted: one append is one WAL frame, capped at 256 MiB. */
export const APPEND_BYTES_MAX_LIMIT = 128 * 1024 * 1024;

/**
 * Largest catch-up response: 4 MiB. Big enough that small streams come back in one response (the
 * conformance suite and clients with `live: false` expect that), small enough that one slow
 * reader holds little memory and responses stay CDN-friendly.
 */
export const CHUNK_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;

/**
 * Largest catch-up response (GET without `live`, and long-poll): 64 MiB, 16 read units. Upstream
 * clients with `live: false` read exactly one response, and every other server in the ecosystem
 * answers the whole catch-up at once, so this is the size of stream such a call returns whole.
 * The body streams (sealed units fetched READ_AHEAD_UNITS ahead while it is written), so memory
 * per response stays at 1 + READ_AHEAD_UNITS read units whatever this is; what it costs is a
 * retry re-reading up to 64 MiB after a broken connection, and CDN objects of that size (well
 * inside CloudFront's and nginx's limits). Responses still end on read-unit boundaries, so they stay deterministic and cacheable.
 */
export const CATCH_UP_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

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
 * Diskless mode: appends gather this long into one shared WAL object before it is stored: 20 ms.
 * Each flush is one PUT for every stream of the node, so a busy node makes at most 50 PUTs/s
 * (about $0.65 a day on S3 Standard, README "Durability modes"); an append waits this plus one
 * PUT (S3 Standard ~30–100 ms, S3 Express ~5–10 ms). Shorter trades PUTs for latency.
 */
export const WAL_OBJECT_FLUSH_MS_DEFAULT = 20;

/**
 * Diskless mode: a WAL object is stored at once when it reaches 8 MiB, without waiting for the
 * flush timer: large enough that one PUT carries many appends, small enough that a put stays
 * well under a second on S3 and a failed one is cheap to send again.
 */
export const WAL_OBJECT_BYTES_DEFAULT = 8 * 1024 * 1024;

/**
 * How long an idempotent producer's request that arrives ahead of its predecessor waits for it
 * before answering 409 (sequence gap): 5 s. Pipelined batches (the upstream IdempotentProducer
 * keeps 5 in flight) travel on separate connections and overtake each other by milliseconds, and
 * by seconds across a failover: each batch refused by a dead or moving owner is retried after its
 * own backoff (up to Retry-After), so they reach the new owner scattered (1 s was too short in the
 * kill tests of a diskless cluster: 409 "expected 10, received 12"). A predecessor that is really
 * lost costs the client five seconds more before its 409.
 */
export const PRODUCER_SEQUENCE_GAP_WAIT_MS = 5_000;

/** How often expired streams are reaped in the background (expiry is also checked on access). */
export const EXPIRY_REAP_INTERVAL_MS = 1_000;

/** How often the checkpoint condition is checked. */
export const CHECKPOINT_CHECK_INTERVAL_MS = 1_000;

/**
 * Diskless mode: at most one checkpoint a minute besides the `--checkpoint-wal-bytes` ones, and
 * only when it copies fewer bytes (the hot tails) than the WAL objects it retires. Once sealed,
 * records leave the WAL objects within about a minute; a checkpoint is a PUT, a LIST and a
 * delete, so this costs about 130,000 requests a month at most (about $0.70 on S3 Standard).
 */
export const DISKLESS_CHECKPOINT_INTERVAL_MS = 60_000;

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
export const UNSEALED_AGE_MS_MAX_DEFAULT = 5 * 60_000;

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
export const SEAL_RETRY_BACKOFF_MS_MAX = 30_000;

/**
 * Entries per manifest page (docs/storage-layout.md "Manifest pages"): 64. A manifest version
 * then lists at most 63 recent segments (about 10 KB with their read units and checksums) and at
 * most 63 page references per level (about 80 B each), so a seal writes a bounded manifest
 * however long the history; 64^3 = 262,144 segments fit in 3 levels and 64^4 (16.7 million) in
 * 4, so locating an offset reads at most 4 pages. Larger pages make heads bigger per seal,
 * smaller ones make lookups deeper.
 */
export const MANIFEST_PAGE_ENTRIES = 64;

/**
 * Default `--metadata-flush-ms`: 1 s. A create, a close at a sealed tail or a soft delete reaches
 * the object store within about a second (one manifest PUT per stream per change, fewer when a
 * seal comes first and carries it), so a lost disk forgets at most a second of stream lifecycle.
 */
export const METADATA_FLUSH_MS_DEFAULT = 1_000;

/**
 * Lazy lookup (docs/storage-layout.md): a path the object store does not hold is remembered as
 * absent for 1 s, so a client polling an absent path costs one LIST a second, not one per request;
 * short, because another node may create it. At most 10,000 such paths (about 1 MiB of keys with
 * paths up to ~100 bytes), least recently asked forgotten first.
 */
export const LOOKUP_ABSENT_TTL_MS = 1_000;
export const LOOKUP_ABSENT_PATHS_MAX = 10_000;

/**
 * Streams loaded by lazy lookup (src/tiering/idle-eviction.ts) hold their whole segment list in
 * memory (a few hundred bytes per segment with its read units and checksums). One that no request named for 10 minutes, that is fully
 * sealed, not written since it was loaded, and has no fork, live reader or sliding TTL, is
 * forgotten (its objects stay; the next request looks it up again: one LIST, one GET). Beyond
 * 100,000 such streams (about 100 MB of state at 1 KB each) or 250,000 segments among them
 * (about 100 MB at 400 B each), the least recently used evictable ones go at once. Checked every 10 s.
 */
export const LOADED_STREAM_IDLE_MS = 10 * 60_000;
export const LOADED_STREAMS_MAX = 100_000;
export const LOADED_SEGMENTS_MAX = 250_000;
export const LOADED_STREAM_SWEEP_INTERVAL_MS = 10_000;
/** Over those limits, a stream a request named in the last second is kept: that request may still be using it. */
export const LOADED_STREAM_IN_USE_MS = 1_000;

/**
 * `cairn recover` (src/recover.ts): object-store requests in flight at once, 32 — the 256 hash
 * shards are listed and the newest manifests read in parallel (one at a time, 100,000 streams
 * took 84 s on the fs store, mostly waiting; at S3's 5–20 ms per request 32 in flight give a few
 * thousand GETs a second, well within one S3 prefix's 5,500 GETs/s). Load records awaiting their
 * fsync: at most 1,024 streams' (about 1 MiB of WAL queue with short segment lists), so a group
 * commit takes many per fsync without the queue filling.
 */
export const RECOVER_REQUESTS_MAX = 32;
export const RECOVER_LOADS_IN_FLIGHT_MAX = 1_024;

/**
 * A lookup whose listed manifest (or one of its pages) is gone by the time it is read — a newer
 * version or a tombstone superseded it and the collector deleted it — lists again, at most 5
 * times: each retry means a writer moved on in the few milliseconds between LIST and GET.
 */
export const LOOKUP_VANISHED_ATTEMPTS_MAX = 5;

/**
 * Incarnations are time-ordered (docs/storage-layout.md "Incarnations"): a new one is at least
 * wall-clock ms × 1,000, so up to 1,000 creates per ms stay unique by the counter alone, and the
 * value stays below 2^53 and within the 16 digits of an offset token until the year 2255.
 */
export const INCARNATIONS_PER_MS = 1_000;

/** How often the sealer looks at idle/old hot tails, budget pressure and retention. */
export const SEAL_CHECK_INTERVAL_MS = 100;

/** Pause between attempts to delete the objects of a removed stream (retried until done). */
export const OBJECT_DELETE_RETRY_MS = 5_000;

// -------------------------------------------------------------------------------------------------
// Access control and limits against abuse (README "Authentication", "Limits")

/**
 * Longest stream path, in bytes of its decoded form: 1 KiB. Paths are map keys held per stream
 * and written into every create record; 1 KiB fits any sensible naming scheme (tenant/user/uuid)
 * with room to spare, while keeping a million streams' keys within a gigabyte at worst.
 */
export const STREAM_PATH_BYTES_MAX_DEFAULT = 1024;

/**
 * Largest request head (request line + headers): 16 KiB, Node's own default. Every header the
 * protocol defines is short; a bearer JWT is 1–4 KiB. Larger heads get 431.
 */
export const HEADER_BYTES_MAX_DEFAULT = 16 * 1024;

/**
 * Deepest nesting of a JSON body (arrays and objects): 128. Cairn stores JSON text as sent, so the
 * limit protects readers, whose parsers are often recursive (serde_json stops at 128 too); no
 * message format in practice nests that deep.
 */
export const JSON_DEPTH_MAX_DEFAULT = 128;

/**
 * Streams held at once: 2,000,000. A stream costs about 2 KB of memory (DESIGN measurements:
 * 2,044 B), so the cap bounds stream state near 4 GiB, twice the 1,000,000 streams of the scale
 * benchmark. Past it, creates get 503 + Retry-After until streams are deleted or expire.
 */
export const STREAMS_MAX_DEFAULT = 2_000_000;

/** Retry-After of a create refused by the streams cap: deletes and expiry free slots slowly. */
export const STREAMS_MAX_RETRY_AFTER_SECONDS = 30;

/**
 * Streams per page of `GET /v1/streams`: 100 unless the client asks, at most 1,000. A page is
 * built by one scan of the streams this node holds (sorted selection of the page, O(n) per page),
 * and an entry is ~200 bytes of JSON, so the largest page stays near 200 KB and one request
 * cannot make the server serialise a million streams at once.
 */
export const STREAM_LIST_PAGE_SIZE_DEFAULT = 100;
export const STREAM_LIST_PAGE_SIZE_MAX = 1_000;

/**
 * Cluster mode: how long `GET /v1/streams` waits for each other node's page before it answers 503
 * + Retry-After naming that node: 5 s. A page is one scan of a node's registry (tens of ms at a
 * million streams) and one round trip; a node that takes longer is down, paused or partitioned,
 * and a listing must never come back without its streams.
 */
export const STREAM_LIST_NODE_TIMEOUT_MS = 5_000;

/**
 * Segments and producers listed per stream by `GET /v1/streams/meta`: the newest 1,000 of each
 * (with their total counts). Both grow with a stream's history; the inspector shows the recent end.
 */
export const STREAM_META_ITEMS_MAX = 1_000;

/**
 * Live readers (long-poll + SSE) per client key at once: 10,000, a tenth of the total. The key is
 * the token when authenticated, else the client IP (the `X-Forwarded-For` client only behind a
 * `--trust-proxy`). Behind a CDN, a handful of edge IPs carry all readers, so the cap is high enough
 * that four edges fill the fan-out benchmark's 15,000 readers (3,750 per IP), and low enough that
 * one address cannot take every slot.
 */
export const LIVE_READERS_PER_CLIENT_MAX_DEFAULT = 10_000;

/**
 * Writes (PUT, POST) per second per client key: 0 = off. One Cairn process tops out near 25,000
 * small appends/s in total, and the right per-writer share depends on the deployment (one ingest
 * service vs. many browser tabs), so the limit is opt-in; on a non-loopback host every write needs
 * a token anyway (auth is on), and a per-token limit is what stops one writer from starving others.
 */
export const APPENDS_PER_SECOND_MAX_DEFAULT = 0;

/**
 * Time allowed to send the whole request head: 20 s. A slowloris client trickling headers holds a
 * socket at most this long; a real client sends them in one packet. (Node's default is 60 s.)
 */
export const HEADERS_TIMEOUT_MS_DEFAULT = 20_000;

/**
 * Time allowed to receive a whole request, head and body: 300 s (Node's default). A 64 MiB append
 * needs ~270 s at 2 Mbit/s; a slower upload should be split into smaller appends.
 */
export const REQUEST_TIMEOUT_MS_DEFAULT = 300_000;

/**
 * Longest silence on a socket while a request is in progress (no byte received or sent): 60 s.
 * Stops slow-body clients (a body stalled mid-way) and readers that stop reading; live reads are
 * exempt while they wait for data (their own timeouts end them). 60 s is twice the object store's
 * retry budget (30 s), so a cold read or fork waiting on a retrying store gets its answer
 * instead of a cut connection.
 */
export const BODY_TIMEOUT_MS_DEFAULT = 60_000;

/**
 * Keep-alive idle time between requests: 72 s, longer than the 60 s idle timeout of common load
 * balancers (AWS ALB), so the balancer closes first and never sends on a socket Cairn just closed.
 */
export const IDLE_TIMEOUT_MS_DEFAULT = 72_000;

/**
 * The TLS certificate and key files are re-read every 2 s (src/http/tls-reload.ts): two small
 * reads are negligible, and a renewed certificate (cert-manager, certbot) is in use for new
 * connections within seconds of being written.
 */
export const TLS_RELOAD_CHECK_INTERVAL_MS = 2_000;

/**
 * Requests open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS): 256. Node's
 * own default is unbounded; nginx uses 128 and Go 250. Each live reader holds a stream, and a
 * browser puts every stream of an origin on one connection, so this is how many streams one page
 * (or all tabs of one browser) can follow at once; the per-client live-reader limit still applies.
 */
export const HTTP2_STREAMS_PER_SESSION_MAX = 256;

/**
 * Verified tokens remembered: 10,000. A hit costs one map lookup instead of a JWT signature check
 * (tens of µs for RS256) or a SHA-256; an entry never outlives its token's `exp`.
 */
export const AUTH_CACHE_ENTRIES_MAX = 10_000;

/** Longest a verified token is remembered when its token has no `exp`. */
export const AUTH_CACHE_TTL_MS_MAX = 5 * 60_000;

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

/**
 * Read-ahead of the next sealed unit (src/read-path/read-path.ts) runs only when the segment cache
 * holds at least 4 responses' worth (4 × --chunk-bytes-max): a smaller cache would evict the unit
 * before its reader asks for it, turning the read-ahead into a wasted GET. One unit ahead per
 * response bounds the extra GETs to one per reader that stops mid-walk.
 */
export const READ_AHEAD_CACHE_CHUNKS_MIN = 4;

/**
 * Sealed units a streaming catch-up response fetches ahead of the one it is writing: 3 (12 MiB
 * at 4 MiB units). A cold read from S3 waits on the store, not the CPU (the server was idle 78%
 * of a cold read from a local Ceph RGW with one unit ahead), and one S3 connection carries far
 * less than a server can send, so several ranged GETs in flight are how S3 is read fast. Memory:
 * 16 MiB per cold response. GETs per GiB are unchanged (whole units); a reader that disconnects
 * mid-response leaves at most three GETs, whose units the cache keeps.
 */
export const READ_AHEAD_UNITS = 3;

// Subscriptions (PROTOCOL.md §6–7, src/subscriptions/).

/** Lease of a wake when the subscription names none: 30 s, the protocol's default (§6.2). */
export const LEASE_TTL_MS_DEFAULT = 30_000;
/** Shortest `lease_ttl_ms` accepted: 1 s (§6.2). */
export const LEASE_TTL_MS_MIN = 1_000;
/** Longest `lease_ttl_ms` accepted: 10 minutes (§6.2). */
export const LEASE_TTL_MS_MAX = 600_000;

/**
 * Subscriptions held at once: 10,000. Every append is matched against every subscription's glob
 * (a regular expression test, ~50 ns), so this bounds the per-append cost to about half a
 * millisecond in the worst case; past it, creates get 503.
 */
export const SUBSCRIPTIONS_MAX = 10_000;

/** Explicit `streams[]` of one subscription: 10,000 keeps one create record well under a WAL frame. */
export const SUBSCRIPTION_EXPLICIT_STREAMS_MAX = 10_000;

/**
 * Streams listed in one wake (webhook body, claim response): 1,000, about 200 KiB of JSON. A
 * subscription with more pending streams is woken again after the worker acks (`next_wake`).
 */
export const WAKE_STREAMS_MAX = 1_000;

/**
 * Webhook requests in flight across all subscriptions: 64. Each holds a socket and a timer; one
 * subscription never has more than one (one wake at a time, §7), so this is the total bound.
 */
export const WEBHOOK_DELIVERIES_IN_FLIGHT_MAX = 64;

/**
 * Wakes waiting for a delivery slot: 10,000 (one per subscription at most, so SUBSCRIPTIONS_MAX).
 * A wake that finds the queue full is not lost: the subscription stays pending and the next tick
 * offers it again.
 */
export const WEBHOOK_DELIVERY_QUEUE_MAX = 10_000;

/** A webhook that has not answered in 10 s failed; its retry follows the backoff below. */
export const WEBHOOK_TIMEOUT_MS = 10_000;

/** Largest webhook response body read (it only carries `{ "done": true }`): 64 KiB. */
export const WEBHOOK_RESPONSE_BYTES_MAX = 64 * 1024;

/** Webhook retry backoff: from 1 s doubling up to 60 s, ±20% jitter (§7.1). */
export const WEBHOOK_RETRY_DELAY_MS_MIN = 1_000;
export const WEBHOOK_RETRY_DELAY_MS_MAX = 60_000;
export const WEBHOOK_RETRY_JITTER_RATIO = 0.2;

/**
 * How often subscriptions check leases, retries and wakes not yet written: 100 ms, well under the
 * shortest lease (1 s), so an expired lease is re-offered within a tenth of its length.
 */
export const SUBSCRIPTION_TICK_MS = 100;

/**
 * Default `--subscription-cursor-flush-ms`: 10 s. A subscription whose cursors, generation or lease
 * changed is stored in the object store within this long: at most one PUT (and one DELETE of the
 * version it supersedes) per busy subscription per 10 s, 8,640 PUTs a day (about $0.04 a day at
 * S3 Standard's $0.005 per 1,000). A lost disk re-delivers at most this much of acknowledged work.
 */
export const SUBSCRIPTION_CURSOR_FLUSH_MS_DEFAULT = 10_000;

/**
 * Subscription versions being written to the object store at once: 16. Writes are small (one
 * subscription's JSON); 16 keep a burst of due subscriptions moving without crowding out seals.
 */
export const SUBSCRIPTION_STORE_WRITES_MAX = 16;

/** After a failed write of a subscription version: try again in 1 s (the store client already retried). */
export const SUBSCRIPTION_STORE_RETRY_MS = 1_000;

/**
 * Object-store trips at once while subscriptions are reconciled at start (one GET per stored
 * subscription, one LIST + GET per stream lookup): 16, so 10,000 of them take seconds on S3
 * (tens of ms each) instead of minutes, without crowding out other start-up reads.
 */
export const SUBSCRIPTION_LOAD_LOOKUPS_MAX = 16;

/**
 * A rotated-out webhook signing key stays published this long: 1 hour, far past the receivers'
 * 5-minute replay window plus the longest retry delay (§6.5).
 */
export const WEBHOOK_SIGNING_KEY_RETIRED_KEEP_MS = 60 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Durable proxy (README "Durable proxy", the Proxy Protocol v0.1)

/**
 * Upstream requests the proxy runs at once, all callers together: 1,000. Each holds a socket to
 * the upstream, a pipe buffer (at most PROXY_PIPE_BUFFER_BYTES_MAX) and a stream being written,
 * so the cap bounds them near 1 GiB in the worst case; LLM answers last tens of seconds, so 1,000
 * concurrent answers is tens of creates per second. Past it, creates get 503 + Retry-After.
 */
export const PROXY_UPSTREAMS_MAX_DEFAULT = 1000;

/**
 * Upstream requests per caller (token, else IP) at once: 50, a twentieth of the total, so one
 * caller cannot take every slot (§12.1 asks for a per-client bound). Past it, 429 + Retry-After.
 */
export const PROXY_UPSTREAMS_PER_CLIENT_MAX_DEFAULT = 50;

/** Retry-After of a create refused by a concurrency cap: answers end within seconds to minutes. */
export const PROXY_UPSTREAMS_RETRY_AFTER_SECONDS = 5;

/** Time to open the TCP/TLS connection to the upstream: 10 s, well above any healthy handshake. */
export const PROXY_CONNECT_TIMEOUT_MS_DEFAULT = 10_000;

/** Time from sending the request to the upstream's response head: 60 s (the spec's §8.1 default). */
export const PROXY_FIRST_BYTE_TIMEOUT_MS_DEFAULT = 60_000;

/** Longest silence between two body chunks of the upstream: 10 minutes (the spec's §8.1 default). */
export const PROXY_IDLE_TIMEOUT_MS_DEFAULT = 600_000;

/**
 * Longest whole upstream exchange: 1 hour. Long-running generations take minutes; an hour bounds
 * a slow-drip upstream that never trips the idle timeout from holding a slot for ever.
 */
export const PROXY_TOTAL_TIMEOUT_MS_DEFAULT = 3_600_000;

/** Lifetime of a capability URL and of its streams: 24 hours (the spec's §7.4 default). */
export const PROXY_URL_EXPIRY_SECONDS_DEFAULT = 86_400;

/** Upstream error body passed through in a 502, at most 64 KiB (§12.3): enough for any diagnosis. */
export const PROXY_ERROR_BODY_BYTES_MAX = 64 * 1024;

/**
 * Upstream bytes received and not yet handed to the stream before the pipe stops reading the
 * upstream: 1 MiB. One append is in flight at a time and everything received meanwhile goes into
 * the next one (the spec's §8.2 batching, by group commit rather than a timer), so a slow disk
 * slows the upstream read instead of growing memory.
 */
export const PROXY_PIPE_BUFFER_BYTES_MAX = 1024 * 1024;

/**
 * How long a pipe retries an append refused for now (503: WAL overloaded, hot-tail budget full)
 * before giving up with outcome `storage-error`: 30 s, the time an object-store hiccup or a disk
 * burst takes to clear. Meanwhile the upstream is not read (TCP backpressure), nothing is dropped.
 */
export const PROXY_STORAGE_RETRY_MS_MAX = 30_000;

/** Waiting between two such retries: 200 ms, long enough for a group commit to drain. */
export const PROXY_STORAGE_RETRY_DELAY_MS = 200;

/** Outcomes of finished pipes remembered in memory (older ones are read back from their stream). */
export const PROXY_OUTCOMES_CACHED_MAX = 10_000;

/**
 * Connections a node keeps to each peer for forwarded requests (cluster mode): enough for the
 * requests in flight at once between two nodes (live reads hold one each while they wait), few
 * enough that a node's sockets stay bounded with many peers.
 */
export const FORWARD_CONNECTIONS_PER_NODE_MAX = 1024;

/**
 * Largest forwarded body kept to send again when the owner refuses because the slot moved: 1 MiB
 * covers nearly every append (a retry once against the new owner hides the move from the client);
 * a larger body streams and a move answers 503 + Retry-After instead.
 */
export const FORWARD_RETRY_BODY_BYTES_MAX = 1024 * 1024;

/** Wait before the one retry of a forwarded request: time for the slot map's watch to deliver the move. */
export const FORWARD_RETRY_DELAY_MS = 250;

/**
 * How long a forwarded request waits for its owner's response head beyond the long-poll timeout
 * (the longest an owner legitimately holds one back): an owner that is paused or cut off by the
 * network would otherwise hold the client for ever. 30 s covers the owner's own waits (a producer's
 * sequence gap, a slot being recovered) many times over. Past it the client gets 503 +
 * Retry-After, and the request is not sent again (the owner may have acted on it).
 */
export const FORWARD_ANSWER_MARGIN_MS = 30_000;

/**
 * Most `--workers` on one machine: 64, one per core of the largest common cloud instances; each
 * worker is a whole node process (its own WAL, caches and connections), so more than one per core
 * only adds forwarding.
 */
export const WORKERS_MAX = 64;

/** Wait between restarts of a crashed worker of `--workers`: a worker that fails at start does not spin. */
export const WORKER_RESTART_DELAY_MS = 1000;

/**
 * Cluster mode: forks hosted by another node that a hash owner remembers (path → host path), so
 * their requests go on without a lookup each (docs/cluster.md "Forks"). 100,000 entries of a
 * path and a host path are ~20 MB at the longest paths, far less at usual ones; a forgotten one
 * costs one lookup.
 */
export const LOOKUP_HOSTED_ELSEWHERE_PATHS_MAX = 100_000;

/**
 * Most times one request is forwarded between nodes: 3 is the longest legitimate route (a fork
 * create: any node → the path's slot owner → the source's slot owner → the node hosting the
 * source's chain); a fourth means maps or caches disagree, and the request answers 503 instead.
 */
export const FORWARD_HOPS_MAX = 3;

/**
 * Cluster mode: how long a node keeps its read-only views of streams other nodes own before it
 * looks them up again (src/http/sealed-views.ts). 2 s bounds how far behind the owner's seals a
 * view lags (reads past it are forwarded, so it costs speed, never correctness), for one LIST and
 * one GET per viewed stream per period.
 */
export const SEALED_VIEW_TTL_MS = 2_000;

/**
 * Slots of a new cluster: 4,096. Enough that rendezvous hashing balances 64 nodes within a few
 * per cent and a move hands over ~1/n of them in small pieces; few enough that the whole slot map
 * (one etcd key, ~40 bytes a slot) stays far below etcd's 1.5 MiB request limit. Part of the
 * cluster's identity: it never changes once the cluster exists.
 */
export const CLUSTER_SLOT_COUNT_DEFAULT = 4096;

/** The highest slot count accepted: 16,384 slots keep the JSON slot map (~40 bytes a slot) under etcd's 1.5 MiB request limit. */
export const CLUSTER_SLOT_COUNT_LIMIT = 16_384;

/**
 * Lease of a node's registration: 10 s. A crashed node's slots wait this long before the cluster
 * sees it gone; shorter makes a busy machine or a GC pause lose its lease (its writes pause until
 * it re-registers). etcd counts leases in whole seconds, so the TTL is rounded up to one.
 */
export const CLUSTER_LEASE_TTL_MS_DEFAULT = 10_000;

/**
 * A node acknowledges writes until the last answered keep-alive was sent plus the TTL minus this
 * share of the TTL (1/3): the margin covers clock-rate drift between this node and the etcd
 * leader (ppm) and a pause between the check and the acknowledgement, with room to spare.
 */
export const CLUSTER_LEASE_MARGIN_SHARE = 1 / 3;

/**
 * Keep-alives per lease TTL: 6 (every ~1.7 s at 10 s). The fence opens for TTL − margin after a
 * keep-alive is sent, so with six per TTL two in a row can fail before writes pause.
 */
export const CLUSTER_KEEPALIVES_PER_TTL = 6;

/**
 * Bound on `start()` of a cluster node: 60 s to reach etcd, register and read the slot map
 * (longer than etcd's own leader election after a restart of all members).
 */
export const CLUSTER_START_TIMEOUT_MS = 60_000;

/**
 * Bound on a graceful leave (SIGTERM): 60 s for the leader to move this node's slots away
 * (each move seals its streams' hot tails first, bounded by the object store's write time). Past
 * it the node stops anyway and its remaining slots wait for it as after a crash.
 */
export const CLUSTER_LEAVE_TIMEOUT_MS = 60_000;

/**
 * Diskless takeover: how long a request for a slot whose dead owner's log is still being replayed
 * waits for it (rather than answering 503 at once, which scatters a producer's pipelined retries
 * beyond the sequence-gap wait) before it answers 503 + Retry-After: 10 s.
 */
export const CLUSTER_TAKEOVER_WAIT_MS = 10_000;

/** Waiting before retrying a failed release (seal of a moving slot) or a failed campaign: 1 s. */
export const CLUSTER_RETRY_DELAY_MS = 1_000;

/**
 * Deadline of one etcd request (not of watches and keep-alive streams): 5 s. A healthy etcd
 * answers in milliseconds; a member without quorum never does, and the client should try another
 * member (or the caller try again) instead of waiting on it.
 */
export const CLUSTER_ETCD_CALL_TIMEOUT_MS = 5_000;

/**
 * Slots marked to move at once: 128 (1/32 of the default slot count). A marked slot refuses writes
 * (503 + Retry-After) from the mark until its owner has sealed its hot tails and handed it over,
 * so a join or leave moves slots in batches of this size: about 3 % of streams pause at a time,
 * each batch for about one seal of the streams in it.
 */
export const CLUSTER_MOVING_SLOTS_MAX = 128;

/** Stream paths whose slot a node remembers (an LRU): the hot paths of a busy node, ~10 MB at most. */
export const SLOT_OF_PATHS_MAX = 100_000;

/** Cluster mode: paths a node remembers having unloaded (their slot moved), to answer 503 rather than 404 for a request caught in the move. */
export const UNLOADED_PATHS_MAX = 100_000;

/**
 * Largest frame between two workers of `--workers` on their peer channel (src/http/peer-channel.ts):
 * an append's body (at most FORWARD_RETRY_BODY_BYTES_MAX goes this way) plus its few headers and
 * URL. A larger frame is a bug or a stranger on the socket: the connection is cut.
 */
export const PEER_FRAME_BYTES_MAX = 2 * 1024 * 1024 + 64 * 1024;

/**
 * Calls a worker keeps waiting on one peer channel at once: far above the HTTP requests one worker
 * holds in flight (each forwarded append waits for one), bounded so a stalled owner cannot grow a
 * worker's memory without end; past it, calls fail as if the peer were unreachable (503 after one retry).
 */
export const PEER_CALLS_PENDING_MAX = 65_536;
