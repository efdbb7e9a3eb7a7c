/**
 * Settings of `cairn serve`. Every field has a flag and a `CAIRN_*` environment variable twin
 * (src/cli/serve-command.ts).
 */
import type { WalDurability } from '../wal/index.ts';

export interface ServeConfig {
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Directory of the WAL and checkpoints (and, with tiering, the embedded object store). */
  dataDir: string;
  /** `wal`: acknowledge after fdatasync; `memory`: no fsync (development only). */
  durability: WalDurability;
  longPollTimeoutMs: number;
  maxAppendBytes: number;
  maxChunkBytes: number;
  sseReconnectMs: number;
  liveReadersMax: number;
  checkpointWalBytes: number;
  /** Where segments and manifests go: `fs` (embedded, under `<dataDir>/objects`) or `s3`. */
  objectStore: 'fs' | 's3';
  /** S3 bucket (required with `objectStore: 's3'`). */
  s3Bucket?: string;
  /** Key prefix inside the bucket, e.g. `cairn/prod`. */
  s3Prefix?: string;
  /** Endpoint of an S3-compatible store (MinIO, Ceph RGW); default AWS. */
  s3Endpoint?: string;
  s3Region?: string;
  s3ForcePathStyle?: boolean;
  /** Start even if the store does not refuse overwrites (create-if-absent unenforced). */
  unsafeAllowOverwrites?: boolean;
  /** Seal a hot tail when it reaches this many bytes. */
  segmentSizeBytes: number;
  /** Seal a hot tail after this long without appends, in ms (0 = as soon as it is durable). */
  sealIdleMs: number;
  /** Seal bytes unsealed for this long even if appends continue, in ms. */
  sealMaxAgeMs: number;
  /** Unsealed bytes across all streams before appends get 503. */
  hotTailBudgetBytes: number;
  /** Bytes of segment data kept in memory for reads. */
  segmentCacheBytes: number;
  /** Default retention by age of sealed data, in ms (per-stream `Cairn-Retention-Ms` overrides). */
  retentionMs?: number;
  /** Default retention by size: keep at least this many newest bytes (per-stream `Cairn-Retention-Bytes`). */
  retentionBytes?: number;
  // Access control (README "Authentication"). Auth is on when any of the three sources is set.
  /** Start on a non-loopback host without auth (otherwise refused). */
  allowUnauthenticated?: boolean;
  /** HMAC secret of HS256/384/512 JWTs. Never logged. */
  authJwtSecret?: string;
  /** URL of the JWKS holding the public keys of RS/PS/ES/EdDSA JWTs. */
  authJwksUrl?: string;
  /** Required JWT `aud`. */
  authJwtAudience?: string;
  /** Required JWT `iss`. */
  authJwtIssuer?: string;
  /** YAML/JSON file of static bearer tokens and their grants. */
  authTokensFile?: string;
  /** Origins allowed by CORS: `'*'` (default) or a list. */
  corsOrigins?: '*' | string[];
  /** Addresses/CIDRs of proxies whose `X-Forwarded-For` names the client; default none. */
  trustProxy?: string[];
  // Limits against abuse (README "Limits"); defaults in src/config/limits.ts.
  /** Longest decoded stream path, in bytes (400 above). */
  maxStreamPathBytes?: number;
  /** Largest request head, in bytes (431 above). */
  maxHeaderBytes?: number;
  /** Deepest JSON body nesting (400 above). */
  maxJsonDepth?: number;
  /** Streams held at once (503 on create above). */
  streamsMax?: number;
  /** Live readers per client key (token, else IP) at once (503 above). */
  liveReadersPerIpMax?: number;
  /** Writes per second per client key; 0 = off (429 above). */
  appendsPerSecondMax?: number;
  /** Time to receive a request head, in ms (408 after). */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, in ms (408 after). */
  requestTimeoutMs?: number;
  /** Longest socket silence during a request, in ms (connection closed after). */
  bodyTimeoutMs?: number;
  /** Keep-alive idle time between requests, in ms. */
  idleTimeoutMs?: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}
