/**
 * Every setting of `cairn serve`, described once. From this table come the command-line flags,
 * their `CAIRN_*` environment twins, the config-file keys (camelCase, the keys below), `--help`,
 * `cairn config print`, the validation of every source, and the `ServeConfig` type.
 * (Over 400 lines because it is one table, one entry per setting; splitting it would scatter it.)
 *
 * Adding a setting is one entry (the keys of this object are the `ServeConfig` fields):
 *
 *   someLimitBytes: setting({
 *     flag: '--some-limit-bytes <bytes>',        // commander syntax; a switch has no `<value>`
 *     env: 'CAIRN_SOME_LIMIT_BYTES',
 *     schema: bytes(1, SOME_LIMIT_BYTES_MAX),     // or int(..), z.enum([...]), z.string().min(1), z.boolean();
 *                                                 // add `.optional()` and no default when unset is meaningful
 *     default: SOME_LIMIT_BYTES_DEFAULT,          // from limits.ts, with its reason there
 *     unit: 'bytes',                              // bytes | ms | count | seconds …
 *     description: 'what it bounds; what happens above it',
 *     secret: true,                               // only for credentials: redacted by `cairn config print`
 *   }),
 *
 * Renaming a setting keeps its old spellings for one release: add
 * `formerly: { flag: '--old-name', env: 'CAIRN_OLD_NAME', key: 'oldName' }` to the renamed entry;
 * the old flag, variable and file key then still work, each with a deprecation warning at start.
 *
 * Porting an old commander option `option('--x <ms>', 'desc', 'CAIRN_X').argParser(integer(1, 10)).default(D)`
 * is: flag `'--x <ms>'`, env `'CAIRN_X'`, schema `ms(1, 10)`, default `D`, unit `'ms'`, description `'desc'`.
 * `.choices([...])` becomes `z.enum([...])`. A rule between settings goes into `serveConfigSchema`'s
 * `superRefine` below, with `path: [<the key to blame>]`. The README table is checked against this
 * table by test/unit/config-readme.test.ts.
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import {
  WORKERS_MAX,
  APPEND_BYTES_MAX_DEFAULT,
  APPEND_BYTES_MAX_LIMIT,
  APPENDS_PER_SECOND_MAX_DEFAULT,
  BODY_TIMEOUT_MS_DEFAULT,
  CHECKPOINT_WAL_BYTES_DEFAULT,
  WAL_OBJECT_FLUSH_MS_DEFAULT,
  WAL_OBJECT_BYTES_DEFAULT,
  CHUNK_BYTES_MAX_DEFAULT,
  CATCH_UP_BYTES_MAX_DEFAULT,
  HEADER_BYTES_MAX_DEFAULT,
  HEADERS_TIMEOUT_MS_DEFAULT,
  HOT_TAIL_BUDGET_BYTES_DEFAULT,
  IDLE_TIMEOUT_MS_DEFAULT,
  JSON_DEPTH_MAX_DEFAULT,
  LIVE_READERS_MAX_DEFAULT,
  LIVE_READERS_PER_CLIENT_MAX_DEFAULT,
  LONG_POLL_TIMEOUT_MS_DEFAULT,
  PORT_DEFAULT,
  REQUEST_TIMEOUT_MS_DEFAULT,
  SEAL_IDLE_MS_DEFAULT,
  METADATA_FLUSH_MS_DEFAULT,
  SUBSCRIPTION_CURSOR_FLUSH_MS_DEFAULT,
  SEGMENT_CACHE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SSE_RECONNECT_MS_DEFAULT,
  STREAM_PATH_BYTES_MAX_DEFAULT,
  STREAMS_MAX_DEFAULT,
  UNSEALED_AGE_MS_MAX_DEFAULT,
} from './limits.ts';
import { checkClusterSettings, clusterSettings } from './cluster-settings.ts';
import { proxySettings } from './proxy-settings.ts';
import { setting, settingsObject, type SettingTable } from './settings.ts';

/** A whole number in [min, max], with a message that says so. */
export function int(min: number, max: number) {
  const message = `expected a whole number from ${min} to ${max}`;
  return z.int({ error: message }).min(min, { error: message }).max(max, { error: message });
}
const bytes = int;
const ms = int;
const MAX = Number.MAX_SAFE_INTEGER;

/** A switch: on, off, or unset (off). Text from flags and variables is parsed by settings.ts. */
const onOff = () => z.boolean({ error: 'expected true or false' }).optional();

/**
 * A comma-separated list as text (flag, variable, file) or a list (file, or a value already
 * validated): the trimmed, non-empty items.
 */
const listInput = z.union([z.string(), z.array(z.string())], { error: 'expected a comma-separated list' });

function listItems(value: string | string[]): string[] {
  const items = typeof value === 'string' ? value.split(',') : value;
  return items.map((item) => item.trim()).filter((item) => item.length > 0);
}

/**
 * `--cors-origins`: `*` (any origin) or a list of origins, each exactly `scheme://host[:port]` (no
 * path, no trailing slash: browsers send the `Origin` header in that form, and Fastify's CORS compares
 * it as text). A `*` among other origins is an error. Output `'*' | string[]`.
 */
export const corsOriginsSchema = listInput.transform((value, context): '*' | string[] => {
  const origins = listItems(value);
  if (origins.length === 1 && origins[0] === '*') return '*';
  if (origins.length === 0) {
    context.issues.push({ code: 'custom', input: value, message: 'expected * or a comma-separated list of origins' });
    return z.NEVER;
  }
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      context.issues.push({ code: 'custom', input: value, message: `"${origin}" is not an origin (scheme://host[:port], no path or trailing slash)` });
      return z.NEVER;
    }
  }
  return origins;
});

/** `--trust-proxy`: a comma-separated list of IP addresses or CIDR ranges (`10.0.0.0/8`, `fd00::/8`). */
export const addressListSchema = listInput.transform((value, context): string[] => {
  const entries = listItems(value);
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !bitsOk || extra !== undefined) {
      context.issues.push({ code: 'custom', input: value, message: `"${entry}" is not an IP address or CIDR range` });
      return z.NEVER;
    }
  }
  return entries;
});

/**
 * `--workers`: a count from 1 to WORKERS_MAX, or `auto` (one per core the OS gives this process,
 * `os.availableParallelism()`). Output: the count.
 */
const workersSchema = z
  .union([z.int(), z.string()], { error: 'expected a whole number or auto' })
  .transform((value, context): number => {
    const count = value === 'auto' ? availableParallelism() : typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
    if (!Number.isInteger(count) || count < 1 || count > WORKERS_MAX) {
      context.issues.push({ code: 'custom', input: value, message: `expected auto or a whole number from 1 to ${WORKERS_MAX}` });
      return z.NEVER;
    }
    return Math.min(count, WORKERS_MAX);
  });

/** An http(s) URL, kept as given. */
const httpUrl = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });

export const serveSettings = {
  host: setting({
    flag: '--host <address>',
    env: 'CAIRN_HOST',
    schema: z.string().min(1, { error: 'expected an address' }),
    default: '127.0.0.1',
    unit: 'address',
    description: 'address to listen on',
  }),
  port: setting({
    flag: '--port <number>',
    env: 'CAIRN_PORT',
    schema: int(0, 65_535),
    default: PORT_DEFAULT,
    unit: 'port',
    description: 'TCP port (0 = any free port)',
  }),
  dataDir: setting({
    flag: '--data-dir <path>',
    env: 'CAIRN_DATA_DIR',
    schema: z.string().min(1, { error: 'expected a path' }),
    default: './data',
    unit: 'path',
    description: 'directory for the write-ahead log and checkpoints (and the fs object store)',
  }),
  workers: setting({
    flag: '--workers <count>',
    env: 'CAIRN_WORKERS',
    schema: workersSchema,
    default: 1,
    unit: 'count',
    description: 'node processes on this machine sharing the port, streams sharded over them by slot (auto = one per core)',
  }),
  durability: setting({
    flag: '--durability <mode>',
    env: 'CAIRN_DURABILITY',
    schema: z.enum(['wal', 'memory', 'object-store'], { error: 'expected one of: wal, memory, object-store' }),
    default: 'wal',
    description: 'wal: acknowledge after fsync; memory: no fsync (development only); object-store: diskless, acknowledge once a shared WAL object is stored',
  }),
  walObjectFlushMs: setting({
    flag: '--wal-object-flush-ms <ms>',
    env: 'CAIRN_WAL_OBJECT_FLUSH_MS',
    schema: ms(0, 10_000),
    default: WAL_OBJECT_FLUSH_MS_DEFAULT,
    unit: 'ms',
    description: 'diskless: how long appends gather into one WAL object before it is stored (latency against PUTs per second)',
  }),
  walObjectBytes: setting({
    flag: '--wal-object-bytes <bytes>',
    env: 'CAIRN_WAL_OBJECT_BYTES',
    schema: bytes(1024, 256 * 1024 * 1024),
    default: WAL_OBJECT_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'diskless: a WAL object is stored at once when it reaches this size',
  }),
  longPollTimeoutMs: setting({
    flag: '--long-poll-timeout-ms <ms>',
    env: 'CAIRN_LONG_POLL_TIMEOUT_MS',
    schema: ms(1, 3_600_000),
    default: LONG_POLL_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'long-poll wait before 204',
  }),
  appendBytesMax: setting({
    flag: '--append-bytes-max <bytes>',
    env: 'CAIRN_APPEND_BYTES_MAX',
    formerly: { flag: '--max-append-bytes', env: 'CAIRN_MAX_APPEND_BYTES', key: 'maxAppendBytes' },
    schema: bytes(1, APPEND_BYTES_MAX_LIMIT),
    default: APPEND_BYTES_MAX_DEFAULT,
    unit: 'bytes',
    description: 'largest request body accepted (413 above)',
  }),
  chunkBytesMax: setting({
    flag: '--chunk-bytes-max <bytes>',
    env: 'CAIRN_CHUNK_BYTES_MAX',
    formerly: { flag: '--max-chunk-bytes', env: 'CAIRN_MAX_CHUNK_BYTES', key: 'maxChunkBytes' },
    schema: bytes(1024, 256 * 1024 * 1024),
    default: CHUNK_BYTES_MAX_DEFAULT,
    unit: 'bytes',
    description: 'read unit inside sealed segments (cache entry, ranged GET) and largest SSE data event',
  }),
  catchUpBytesMax: setting({
    flag: '--catch-up-bytes-max <bytes>',
    env: 'CAIRN_CATCH_UP_BYTES_MAX',
    schema: bytes(1024, 1024 * 1024 * 1024),
    default: CATCH_UP_BYTES_MAX_DEFAULT,
    unit: 'bytes',
    description: 'largest catch-up response body (streamed; ends on a read-unit boundary)',
  }),
  sseReconnectMs: setting({
    flag: '--sse-reconnect-ms <ms>',
    env: 'CAIRN_SSE_RECONNECT_MS',
    schema: ms(1000, 3_600_000),
    default: SSE_RECONNECT_MS_DEFAULT,
    unit: 'ms',
    description: 'SSE connections are closed after this long (CDN collapsing)',
  }),
  liveReadersMax: setting({
    flag: '--live-readers-max <count>',
    env: 'CAIRN_LIVE_READERS_MAX',
    schema: int(1, 10_000_000),
    default: LIVE_READERS_MAX_DEFAULT,
    unit: 'count',
    description: 'live readers (long-poll + SSE) waiting at once; 503 above',
  }),
  checkpointWalBytes: setting({
    flag: '--checkpoint-wal-bytes <bytes>',
    env: 'CAIRN_CHECKPOINT_WAL_BYTES',
    schema: bytes(1024, MAX),
    default: CHECKPOINT_WAL_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'write a checkpoint after this many WAL bytes',
  }),
  objectStore: setting({
    flag: '--object-store <kind>',
    env: 'CAIRN_OBJECT_STORE',
    schema: z.enum(['fs', 's3'], { error: 'expected one of: fs, s3' }),
    default: 'fs',
    description: 'where segments go: fs (under <data-dir>/objects) or s3',
  }),
  s3Bucket: setting({
    flag: '--s3-bucket <name>',
    env: 'CAIRN_S3_BUCKET',
    schema: z.string().min(1, { error: 'expected a bucket name' }).optional(),
    unit: 'name',
    description: 'S3 bucket (required with --object-store s3)',
    unsetMeans: 'none',
  }),
  s3Prefix: setting({
    flag: '--s3-prefix <prefix>',
    env: 'CAIRN_S3_PREFIX',
    schema: z.string().optional(),
    unit: 'prefix',
    description: 'key prefix inside the bucket',
    unsetMeans: 'none',
  }),
  s3Endpoint: setting({
    flag: '--s3-endpoint <url>',
    env: 'CAIRN_S3_ENDPOINT',
    schema: z.url({ error: 'expected a URL such as http://127.0.0.1:9000' }).optional(),
    unit: 'url',
    description: 'endpoint of an S3-compatible store (MinIO, Ceph RGW)',
    unsetMeans: 'AWS',
  }),
  s3Region: setting({
    flag: '--s3-region <region>',
    env: 'CAIRN_S3_REGION',
    schema: z.string().min(1, { error: 'expected a region' }).optional(),
    unit: 'region',
    description: 'S3 region',
    unsetMeans: 'AWS SDK chain',
  }),
  s3ForcePathStyle: setting({
    flag: '--s3-force-path-style',
    env: 'CAIRN_S3_FORCE_PATH_STYLE',
    schema: z.boolean({ error: 'expected true or false' }).optional(),
    description: 'path-style S3 URLs (most S3-compatible stores need it)',
    unsetMeans: 'off',
  }),
  fsStoreDir: setting({
    flag: '--fs-store-dir <path>',
    env: 'CAIRN_FS_STORE_DIR',
    schema: z.string().min(1, { error: 'expected a path' }).optional(),
    unit: 'path',
    description: 'directory of the fs object store (several nodes on one machine may share one)',
    unsetMeans: '<data-dir>/objects',
  }),
  unsafeAllowOverwrites: setting({
    flag: '--unsafe-allow-overwrites',
    env: 'CAIRN_UNSAFE_ALLOW_OVERWRITES',
    schema: z.boolean({ error: 'expected true or false' }).optional(),
    description: 'start even if the object store does not refuse overwrites (If-None-Match: *)',
    unsetMeans: 'off',
  }),
  segmentSizeBytes: setting({
    flag: '--segment-size-bytes <bytes>',
    env: 'CAIRN_SEGMENT_SIZE_BYTES',
    schema: bytes(1, 1024 * 1024 * 1024),
    default: SEGMENT_SIZE_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'seal a hot tail when it reaches this size',
  }),
  sealIdleMs: setting({
    flag: '--seal-idle-ms <ms>',
    env: 'CAIRN_SEAL_IDLE_MS',
    schema: ms(0, 86_400_000),
    default: SEAL_IDLE_MS_DEFAULT,
    unit: 'ms',
    description: 'seal a hot tail idle this long (0 = at once)',
  }),
  unsealedAgeMsMax: setting({
    flag: '--unsealed-age-ms-max <ms>',
    env: 'CAIRN_UNSEALED_AGE_MS_MAX',
    formerly: { flag: '--seal-max-age-ms', env: 'CAIRN_SEAL_MAX_AGE_MS', key: 'sealMaxAgeMs' },
    schema: ms(0, 86_400_000),
    default: UNSEALED_AGE_MS_MAX_DEFAULT,
    unit: 'ms',
    description: 'seal bytes unsealed this long, even if appends continue',
  }),
  metadataFlushMs: setting({
    flag: '--metadata-flush-ms <ms>',
    env: 'CAIRN_METADATA_FLUSH_MS',
    schema: ms(0, 86_400_000),
    default: METADATA_FLUSH_MS_DEFAULT,
    unit: 'ms',
    description: 'store a changed stream metadata (create, close, delete) in the object store within this long',
  }),
  hotTailBudgetBytes: setting({
    flag: '--hot-tail-budget-bytes <bytes>',
    env: 'CAIRN_HOT_TAIL_BUDGET_BYTES',
    schema: bytes(1024, MAX),
    default: HOT_TAIL_BUDGET_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'unsealed bytes held in memory across streams; 503 above',
  }),
  segmentCacheBytes: setting({
    flag: '--segment-cache-bytes <bytes>',
    env: 'CAIRN_SEGMENT_CACHE_BYTES',
    schema: bytes(0, MAX),
    default: SEGMENT_CACHE_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'segment data cached in memory for reads',
  }),
  retentionMs: setting({
    flag: '--retention-ms <ms>',
    env: 'CAIRN_RETENTION_MS',
    schema: ms(1, MAX).optional(),
    unit: 'ms',
    description: 'drop sealed segments older than this',
    unsetMeans: 'keep',
  }),
  retentionBytes: setting({
    flag: '--retention-bytes <bytes>',
    env: 'CAIRN_RETENTION_BYTES',
    schema: bytes(1, MAX).optional(),
    unit: 'bytes',
    description: 'keep at least this many newest bytes per stream, drop older segments',
    unsetMeans: 'keep',
  }),
  allowUnauthenticated: setting({
    flag: '--allow-unauthenticated',
    env: 'CAIRN_ALLOW_UNAUTHENTICATED',
    schema: onOff(),
    description: 'listen on a non-loopback --host without authentication (only when something in front controls access)',
    unsetMeans: 'off',
  }),
  allowLocalhostWebhooks: setting({
    flag: '--allow-localhost-webhooks',
    env: 'CAIRN_ALLOW_LOCALHOST_WEBHOOKS',
    schema: onOff(),
    description: 'accept http://localhost and http://127.0.0.x webhook URLs (development only; other local targets stay refused)',
    unsetMeans: 'off',
  }),
  webhookSigningKeyRotateMs: setting({
    flag: '--webhook-signing-key-rotate-ms <ms>',
    env: 'CAIRN_WEBHOOK_SIGNING_KEY_ROTATE_MS',
    schema: ms(60_000, MAX).optional(),
    unit: 'ms',
    description: 'make a new webhook signing key active once the active one is this old (the old public key stays published for an hour)',
    unsetMeans: 'never',
  }),
  subscriptionCursorFlushMs: setting({
    flag: '--subscription-cursor-flush-ms <ms>',
    env: 'CAIRN_SUBSCRIPTION_CURSOR_FLUSH_MS',
    schema: ms(0, 86_400_000),
    default: SUBSCRIPTION_CURSOR_FLUSH_MS_DEFAULT,
    unit: 'ms',
    description: "store a subscription's changed cursors, generation and lease in the object store within this long",
  }),
  webhookSigningKeysSecret: setting({
    flag: '--webhook-signing-keys-secret <secret>',
    env: 'CAIRN_WEBHOOK_SIGNING_KEYS_SECRET',
    schema: z.string().min(16, { error: 'expected a secret of at least 16 characters' }).optional(),
    unit: 'secret',
    description: 'encrypt the webhook signing keys stored in the object store with a key derived from this secret (never logged)',
    unsetMeans: 'stored unencrypted',
    secret: true,
  }),
  publicUrl: setting({
    flag: '--public-url <url>',
    env: 'CAIRN_PUBLIC_URL',
    schema: httpUrl.optional(),
    unit: 'url',
    description: 'base URL clients reach the server at: webhook callback_url and jwks_url are built from it',
    unsetMeans: "the request's origin",
  }),
  authJwtSecret: setting({
    flag: '--auth-jwt-secret <secret>',
    env: 'CAIRN_AUTH_JWT_SECRET',
    schema: z.string().min(1, { error: 'expected a secret' }).optional(),
    unit: 'secret',
    description: 'HMAC secret of HS256/384/512 bearer JWTs (never logged)',
    unsetMeans: 'none',
    secret: true,
  }),
  authJwksUrl: setting({
    flag: '--auth-jwks-url <url>',
    env: 'CAIRN_AUTH_JWKS_URL',
    schema: httpUrl.optional(),
    unit: 'url',
    description: 'JWKS URL with the public keys of RS/PS/ES/EdDSA bearer JWTs',
    unsetMeans: 'none',
  }),
  authJwtAudience: setting({
    flag: '--auth-jwt-audience <aud>',
    env: 'CAIRN_AUTH_JWT_AUDIENCE',
    schema: z.string().min(1, { error: 'expected an audience' }).optional(),
    description: 'required JWT aud claim',
    unsetMeans: 'any',
  }),
  authJwtIssuer: setting({
    flag: '--auth-jwt-issuer <iss>',
    env: 'CAIRN_AUTH_JWT_ISSUER',
    schema: z.string().min(1, { error: 'expected an issuer' }).optional(),
    description: 'required JWT iss claim',
    unsetMeans: 'any',
  }),
  authTokensFile: setting({
    flag: '--auth-tokens-file <path>',
    env: 'CAIRN_AUTH_TOKENS_FILE',
    schema: z.string().min(1, { error: 'expected a path' }).optional(),
    unit: 'path',
    description: 'YAML or JSON file of static bearer tokens and their grants',
    unsetMeans: 'none',
  }),
  corsOrigins: setting({
    flag: '--cors-origins <list>',
    env: 'CAIRN_CORS_ORIGINS',
    schema: corsOriginsSchema,
    default: '*',
    unit: 'origins',
    description: 'origins browsers may call from: * or a comma-separated list',
  }),
  trustProxy: setting({
    flag: '--trust-proxy <list>',
    env: 'CAIRN_TRUST_PROXY',
    schema: addressListSchema.optional(),
    unit: 'IPs/CIDRs',
    description: 'proxies (comma-separated IPs/CIDRs) whose X-Forwarded-For names the client',
    unsetMeans: 'none',
  }),
  streamPathBytesMax: setting({
    flag: '--stream-path-bytes-max <bytes>',
    env: 'CAIRN_STREAM_PATH_BYTES_MAX',
    formerly: { flag: '--max-stream-path-bytes', env: 'CAIRN_MAX_STREAM_PATH_BYTES', key: 'maxStreamPathBytes' },
    schema: bytes(1, 64 * 1024),
    default: STREAM_PATH_BYTES_MAX_DEFAULT,
    unit: 'bytes',
    description: 'longest stream path (400 above)',
  }),
  headerBytesMax: setting({
    flag: '--header-bytes-max <bytes>',
    env: 'CAIRN_HEADER_BYTES_MAX',
    formerly: { flag: '--max-header-bytes', env: 'CAIRN_MAX_HEADER_BYTES', key: 'maxHeaderBytes' },
    schema: bytes(1024, 1024 * 1024),
    default: HEADER_BYTES_MAX_DEFAULT,
    unit: 'bytes',
    description: 'largest request line + headers (431 above)',
  }),
  jsonDepthMax: setting({
    flag: '--json-depth-max <levels>',
    env: 'CAIRN_JSON_DEPTH_MAX',
    formerly: { flag: '--max-json-depth', env: 'CAIRN_MAX_JSON_DEPTH', key: 'maxJsonDepth' },
    schema: int(1, 100_000),
    default: JSON_DEPTH_MAX_DEFAULT,
    unit: 'levels',
    description: 'deepest nesting of a JSON body (400 above)',
  }),
  streamsMax: setting({
    flag: '--streams-max <count>',
    env: 'CAIRN_STREAMS_MAX',
    schema: int(1, MAX),
    default: STREAMS_MAX_DEFAULT,
    unit: 'count',
    description: 'streams held at once; creates get 503 above',
  }),
  liveReadersPerClientMax: setting({
    flag: '--live-readers-per-client-max <count>',
    env: 'CAIRN_LIVE_READERS_PER_CLIENT_MAX',
    formerly: { flag: '--live-readers-per-ip-max', env: 'CAIRN_LIVE_READERS_PER_IP_MAX', key: 'liveReadersPerIpMax' },
    schema: int(1, 10_000_000),
    default: LIVE_READERS_PER_CLIENT_MAX_DEFAULT,
    unit: 'count',
    description: 'live readers per client (token, else IP) at once; 503 above',
  }),
  appendsPerSecondMax: setting({
    flag: '--appends-per-second-max <count>',
    env: 'CAIRN_APPENDS_PER_SECOND_MAX',
    schema: int(0, 10_000_000),
    default: APPENDS_PER_SECOND_MAX_DEFAULT,
    unit: 'count',
    description: 'writes (PUT, POST) per second per client (token, else IP); 429 above; 0 = off',
  }),
  tlsCertFile: setting({
    flag: '--tls-cert-file <path>',
    env: 'CAIRN_TLS_CERT_FILE',
    schema: z.string().min(1, { error: 'expected a path' }).optional(),
    unit: 'path',
    description: 'PEM certificate chain: serve HTTPS with HTTP/2 and HTTP/1.1 (ALPN); reloaded when the file changes',
    unsetMeans: 'cleartext',
  }),
  tlsKeyFile: setting({
    flag: '--tls-key-file <path>',
    env: 'CAIRN_TLS_KEY_FILE',
    schema: z.string().min(1, { error: 'expected a path' }).optional(),
    unit: 'path',
    description: 'PEM private key of --tls-cert-file; reloaded when the file changes',
    unsetMeans: 'none',
  }),
  http2Cleartext: setting({
    flag: '--http2-cleartext',
    env: 'CAIRN_HTTP2_CLEARTEXT',
    schema: onOff(),
    description: 'without TLS, speak HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1, for a proxy in front',
    unsetMeans: 'off',
  }),
  headersTimeoutMs: setting({
    flag: '--headers-timeout-ms <ms>',
    env: 'CAIRN_HEADERS_TIMEOUT_MS',
    schema: ms(1, 3_600_000),
    default: HEADERS_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'time to receive a request head (408 after)',
  }),
  requestTimeoutMs: setting({
    flag: '--request-timeout-ms <ms>',
    env: 'CAIRN_REQUEST_TIMEOUT_MS',
    schema: ms(1, 86_400_000),
    default: REQUEST_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'time to receive a whole request (408 after)',
  }),
  bodyTimeoutMs: setting({
    flag: '--body-timeout-ms <ms>',
    env: 'CAIRN_BODY_TIMEOUT_MS',
    schema: ms(1, 86_400_000),
    default: BODY_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'longest socket silence during a request (connection closed after)',
  }),
  idleTimeoutMs: setting({
    flag: '--idle-timeout-ms <ms>',
    env: 'CAIRN_IDLE_TIMEOUT_MS',
    schema: ms(1, 86_400_000),
    default: IDLE_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'keep-alive idle time between requests',
  }),
  logLevel: setting({
    flag: '--log-level <level>',
    env: 'CAIRN_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'expected one of: fatal, error, warn, info, debug, trace, silent',
    }),
    default: 'info',
    description: 'pino log level',
  }),
  logFormat: setting({
    flag: '--log-format <format>',
    env: 'CAIRN_LOG_FORMAT',
    schema: z.enum(['auto', 'pretty', 'json'], { error: 'expected one of: auto, pretty, json' }),
    default: 'auto',
    description: 'log lines: pretty (readable) on a terminal and JSON otherwise (auto), or always one of them',
  }),
  randomSeed: setting({
    flag: '--random-seed <n>',
    env: 'CAIRN_RANDOM_SEED',
    schema: int(0, 2 ** 32 - 1).optional(),
    description: 'seed of the random source (retry jitter, cursors); logged at start so a run can be replayed',
    unsetMeans: 'a fresh seed',
  }),
  // The durable proxy's settings (proxy-settings.ts).
  ...proxySettings,
  // Cluster mode's settings (cluster-settings.ts).
  ...clusterSettings,
};

/** The whole configuration, with the rules that involve more than one setting. */
export const serveConfigSchema = settingsObject(serveSettings).superRefine((config, context) => {
  if (config.objectStore === 's3' && config.s3Bucket === undefined) {
    context.addIssue({ code: 'custom', path: ['s3Bucket'], message: 'required with objectStore s3 (--s3-bucket or CAIRN_S3_BUCKET)' });
  }
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    const missing = config.tlsCertFile === undefined ? 'tlsCertFile' : 'tlsKeyFile';
    context.addIssue({ code: 'custom', path: [missing], message: 'TLS needs both --tls-cert-file and --tls-key-file' });
  }
  if (config.http2Cleartext === true && config.tlsCertFile !== undefined) {
    context.addIssue({
      code: 'custom',
      path: ['http2Cleartext'],
      message: 'not with TLS: the TLS port already offers HTTP/2 and HTTP/1.1 (ALPN); h2c is for cleartext behind a proxy',
    });
  }
  checkClusterSettings(config, context);
  if (config.durability === 'object-store' && config.workers > 1) {
    context.addIssue({
      code: 'custom',
      path: ['workers'],
      message: 'not with --durability object-store yet: the worker count is kept in the data directory, which diskless mode must not rely on; run one process per node (or --workers 1)',
    });
  }
  if (config.durability === 'object-store' && config.clusterEtcdEndpoints !== undefined && config.nodeId === undefined) {
    context.addIssue({
      code: 'custom',
      path: ['nodeId'],
      message: 'a cluster node with --durability object-store needs a stable --node-id: its write-ahead log in the object store is found by that name after a restart on an empty disk',
    });
  }
});

/** Settings of `cairn serve`, as validated by `serveConfigSchema`. */
export type ServeConfig = z.output<typeof serveConfigSchema>;

// That the schema's durability is the WAL's (`WalDurability`) is checked at compile time in
// test/unit/config-schema.test.ts: config sits below the WAL and does not import it.

/**
 * Every setting at its default (optional settings unset), validated: the base of a configuration
 * built in code (tests, the demo), so a setting added to the table needs no change there.
 */
export function serveConfigDefaults(): ServeConfig {
  const table: SettingTable = serveSettings;
  const defaults = Object.entries(table).filter(([, entry]) => entry.default !== undefined);
  return serveConfigSchema.parse(Object.fromEntries(defaults.map(([key, entry]) => [key, entry.default])));
}
