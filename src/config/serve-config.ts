/**
 * Every setting of `cairn serve`, described once. From this table come the command-line flags,
 * their `CAIRN_*` environment twins, the config-file keys (camelCase, the keys below), `--help`,
 * `cairn config print`, the validation of every source, and the `ServeConfig` type.
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
 * Porting an old commander option `option('--x <ms>', 'desc', 'CAIRN_X').argParser(integer(1, 10)).default(D)`
 * is: flag `'--x <ms>'`, env `'CAIRN_X'`, schema `ms(1, 10)`, default `D`, unit `'ms'`, description `'desc'`.
 * `.choices([...])` becomes `z.enum([...])`. A rule between settings goes into `serveConfigSchema`'s
 * `superRefine` below, with `path: [<the key to blame>]`. The README table is checked against this
 * table by test/unit/config-readme.test.ts.
 */
import { z } from 'zod';
import type { WalDurability } from '../wal/index.ts';
import {
  CHECKPOINT_WAL_BYTES_DEFAULT,
  HOT_TAIL_BUDGET_BYTES_DEFAULT,
  LIVE_READERS_MAX_DEFAULT,
  LONG_POLL_TIMEOUT_MS_DEFAULT,
  MAX_APPEND_BYTES_DEFAULT,
  MAX_APPEND_BYTES_LIMIT,
  MAX_CHUNK_BYTES_DEFAULT,
  PORT_DEFAULT,
  SEAL_IDLE_MS_DEFAULT,
  SEAL_MAX_AGE_MS_DEFAULT,
  SEGMENT_CACHE_BYTES_DEFAULT,
  SEGMENT_SIZE_BYTES_DEFAULT,
  SSE_RECONNECT_MS_DEFAULT,
} from './limits.ts';
import { setting, settingsObject } from './settings.ts';

/** A whole number in [min, max], with a message that says so. */
export function int(min: number, max: number) {
  const message = `expected a whole number from ${min} to ${max}`;
  return z.int({ error: message }).min(min, { error: message }).max(max, { error: message });
}
const bytes = int;
const ms = int;
const MAX = Number.MAX_SAFE_INTEGER;

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
  durability: setting({
    flag: '--durability <mode>',
    env: 'CAIRN_DURABILITY',
    schema: z.enum(['wal', 'memory'], { error: 'expected one of: wal, memory' }),
    default: 'wal',
    description: 'wal: acknowledge after fsync; memory: no fsync (development only)',
  }),
  longPollTimeoutMs: setting({
    flag: '--long-poll-timeout-ms <ms>',
    env: 'CAIRN_LONG_POLL_TIMEOUT_MS',
    schema: ms(1, 3_600_000),
    default: LONG_POLL_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'long-poll wait before 204',
  }),
  maxAppendBytes: setting({
    flag: '--max-append-bytes <bytes>',
    env: 'CAIRN_MAX_APPEND_BYTES',
    schema: bytes(1, MAX_APPEND_BYTES_LIMIT),
    default: MAX_APPEND_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'largest request body accepted (413 above)',
  }),
  maxChunkBytes: setting({
    flag: '--max-chunk-bytes <bytes>',
    env: 'CAIRN_MAX_CHUNK_BYTES',
    schema: bytes(1024, 256 * 1024 * 1024),
    default: MAX_CHUNK_BYTES_DEFAULT,
    unit: 'bytes',
    description: 'largest catch-up response body',
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
  sealMaxAgeMs: setting({
    flag: '--seal-max-age-ms <ms>',
    env: 'CAIRN_SEAL_MAX_AGE_MS',
    schema: ms(0, 86_400_000),
    default: SEAL_MAX_AGE_MS_DEFAULT,
    unit: 'ms',
    description: 'seal bytes unsealed this long, even if appends continue',
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
  logLevel: setting({
    flag: '--log-level <level>',
    env: 'CAIRN_LOG_LEVEL',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'expected one of: fatal, error, warn, info, debug, trace, silent',
    }),
    default: 'info',
    description: 'pino log level',
  }),
};

/** The whole configuration, with the rules that involve more than one setting. */
export const serveConfigSchema = settingsObject(serveSettings).superRefine((config, context) => {
  if (config.objectStore === 's3' && config.s3Bucket === undefined) {
    context.addIssue({ code: 'custom', path: ['s3Bucket'], message: 'required with objectStore s3 (--s3-bucket or CAIRN_S3_BUCKET)' });
  }
});

/** Settings of `cairn serve`, as validated by `serveConfigSchema`. */
export type ServeConfig = z.output<typeof serveConfigSchema>;

// Compile-time check that the schema's durability is the WAL's.
const durabilityMatchesWal: WalDurability extends ServeConfig['durability'] ? (ServeConfig['durability'] extends WalDurability ? true : never) : never = true;
void durabilityMatchesWal;
