/**
 * `cairn serve`: flags, their `CAIRN_*` environment twins, validation, and signal handling.
 */
import { isIP } from 'node:net';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  APPENDS_PER_SECOND_MAX_DEFAULT,
  BODY_TIMEOUT_MS_DEFAULT,
  HEADER_BYTES_MAX_DEFAULT,
  HEADERS_TIMEOUT_MS_DEFAULT,
  IDLE_TIMEOUT_MS_DEFAULT,
  JSON_DEPTH_MAX_DEFAULT,
  LIVE_READERS_PER_CLIENT_MAX_DEFAULT,
  REQUEST_TIMEOUT_MS_DEFAULT,
  STREAM_PATH_BYTES_MAX_DEFAULT,
  STREAMS_MAX_DEFAULT,
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
} from '../config/limits.ts';
import type { ServeConfig } from '../config/serve-config.ts';
import { startServer } from '../server.ts';

/** An integer argument in [min, max]; commander reports the error and the command exits 2. */
export function integer(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidArgumentError(`expected a whole number, got "${text}"`);
    const value = Number(text.trim());
    if (value < min || value > max) throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${value}`);
    return value;
  };
}

/** `*` or a comma-separated list of origins (`https://app.example.com`). */
export function corsOrigins(text: string): '*' | string[] {
  if (text.trim() === '*') return '*';
  const origins = text.split(',').map((origin) => origin.trim()).filter((origin) => origin.length > 0);
  if (origins.length === 0) throw new InvalidArgumentError('expected * or a comma-separated list of origins');
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      throw new InvalidArgumentError(`"${origin}" is not an origin (scheme://host[:port], no path or trailing slash)`);
    }
  }
  return origins;
}

/** A comma-separated list of IP addresses or CIDR ranges. */
export function addressList(text: string): string[] {
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry.length > 0);
  for (const entry of entries) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address);
    const bitsOk = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (family === 0 || !bitsOk || extra !== undefined) throw new InvalidArgumentError(`"${entry}" is not an IP address or CIDR range`);
  }
  return entries;
}

/** An http(s) URL. */
function httpUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(`"${text}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InvalidArgumentError(`"${text}" is not an http(s) URL`);
  return text;
}

function option(flags: string, description: string, env: string): Option {
  return new Option(flags, description).env(env);
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Run the Cairn Durable Streams server (streams under /v1/stream/<path>)')
    .addOption(option('--host <address>', 'address to listen on', 'CAIRN_HOST').default('127.0.0.1'))
    .addOption(option('--port <number>', 'TCP port (0 = any free port)', 'CAIRN_PORT').argParser(integer(0, 65_535)).default(PORT_DEFAULT))
    .addOption(option('--data-dir <path>', 'directory for the write-ahead log and checkpoints', 'CAIRN_DATA_DIR').default('./data'))
    .addOption(
      option('--durability <mode>', 'wal: acknowledge after fsync; memory: no fsync (development only)', 'CAIRN_DURABILITY')
        .choices(['wal', 'memory'])
        .default('wal'),
    )
    .addOption(
      option('--long-poll-timeout-ms <ms>', 'long-poll wait before 204, in milliseconds', 'CAIRN_LONG_POLL_TIMEOUT_MS')
        .argParser(integer(1, 3_600_000))
        .default(LONG_POLL_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--max-append-bytes <bytes>', 'largest request body accepted (413 above), in bytes', 'CAIRN_MAX_APPEND_BYTES')
        .argParser(integer(1, MAX_APPEND_BYTES_LIMIT))
        .default(MAX_APPEND_BYTES_DEFAULT),
    )
    .addOption(
      option('--max-chunk-bytes <bytes>', 'largest catch-up response body, in bytes', 'CAIRN_MAX_CHUNK_BYTES')
        .argParser(integer(1024, 256 * 1024 * 1024))
        .default(MAX_CHUNK_BYTES_DEFAULT),
    )
    .addOption(
      option('--sse-reconnect-ms <ms>', 'SSE connections are closed after this long, in milliseconds', 'CAIRN_SSE_RECONNECT_MS')
        .argParser(integer(1000, 3_600_000))
        .default(SSE_RECONNECT_MS_DEFAULT),
    )
    .addOption(
      option('--live-readers-max <count>', 'live readers (long-poll + SSE) waiting at once; 503 above', 'CAIRN_LIVE_READERS_MAX')
        .argParser(integer(1, 10_000_000))
        .default(LIVE_READERS_MAX_DEFAULT),
    )
    .addOption(
      option('--checkpoint-wal-bytes <bytes>', 'write a checkpoint after this many WAL bytes', 'CAIRN_CHECKPOINT_WAL_BYTES')
        .argParser(integer(1024, Number.MAX_SAFE_INTEGER))
        .default(CHECKPOINT_WAL_BYTES_DEFAULT),
    )
    .addOption(
      option('--object-store <kind>', 'where segments go: fs (under --data-dir/objects) or s3', 'CAIRN_OBJECT_STORE')
        .choices(['fs', 's3'])
        .default('fs'),
    )
    .addOption(option('--s3-bucket <name>', 'S3 bucket (with --object-store s3)', 'CAIRN_S3_BUCKET'))
    .addOption(option('--s3-prefix <prefix>', 'key prefix inside the bucket', 'CAIRN_S3_PREFIX'))
    .addOption(option('--s3-endpoint <url>', 'endpoint of an S3-compatible store (MinIO, Ceph); default AWS', 'CAIRN_S3_ENDPOINT'))
    .addOption(option('--s3-region <region>', 'S3 region; default from the AWS SDK chain', 'CAIRN_S3_REGION'))
    .addOption(option('--s3-force-path-style', 'path-style S3 URLs (most S3-compatible stores need it)', 'CAIRN_S3_FORCE_PATH_STYLE'))
    .addOption(
      option(
        '--unsafe-allow-overwrites',
        'start even if the object store does not refuse overwrites (If-None-Match: *)',
        'CAIRN_UNSAFE_ALLOW_OVERWRITES',
      ),
    )
    .addOption(
      option('--segment-size-bytes <bytes>', 'seal a hot tail when it reaches this size, in bytes', 'CAIRN_SEGMENT_SIZE_BYTES')
        .argParser(integer(1, 1024 * 1024 * 1024))
        .default(SEGMENT_SIZE_BYTES_DEFAULT),
    )
    .addOption(
      option('--seal-idle-ms <ms>', 'seal a hot tail idle this long, in milliseconds (0 = at once)', 'CAIRN_SEAL_IDLE_MS')
        .argParser(integer(0, 86_400_000))
        .default(SEAL_IDLE_MS_DEFAULT),
    )
    .addOption(
      option('--seal-max-age-ms <ms>', 'seal bytes unsealed this long, in milliseconds', 'CAIRN_SEAL_MAX_AGE_MS')
        .argParser(integer(0, 86_400_000))
        .default(SEAL_MAX_AGE_MS_DEFAULT),
    )
    .addOption(
      option('--hot-tail-budget-bytes <bytes>', 'unsealed bytes held in memory across streams; 503 above', 'CAIRN_HOT_TAIL_BUDGET_BYTES')
        .argParser(integer(1024, Number.MAX_SAFE_INTEGER))
        .default(HOT_TAIL_BUDGET_BYTES_DEFAULT),
    )
    .addOption(
      option('--segment-cache-bytes <bytes>', 'segment data cached in memory for reads, in bytes', 'CAIRN_SEGMENT_CACHE_BYTES')
        .argParser(integer(0, Number.MAX_SAFE_INTEGER))
        .default(SEGMENT_CACHE_BYTES_DEFAULT),
    )
    .addOption(
      option('--retention-ms <ms>', 'drop sealed segments older than this, in milliseconds (default: keep)', 'CAIRN_RETENTION_MS').argParser(
        integer(1, Number.MAX_SAFE_INTEGER),
      ),
    )
    .addOption(
      option('--retention-bytes <bytes>', 'keep at least this many newest bytes per stream, drop older segments', 'CAIRN_RETENTION_BYTES').argParser(
        integer(1, Number.MAX_SAFE_INTEGER),
      ),
    )
    .addOption(
      option(
        '--allow-unauthenticated',
        'listen on a non-loopback --host without authentication (only when something in front controls access)',
        'CAIRN_ALLOW_UNAUTHENTICATED',
      ),
    )
    .addOption(option('--auth-jwt-secret <secret>', 'HMAC secret of HS256/384/512 bearer JWTs (never logged)', 'CAIRN_AUTH_JWT_SECRET'))
    .addOption(option('--auth-jwks-url <url>', 'JWKS URL with the public keys of RS/PS/ES/EdDSA bearer JWTs', 'CAIRN_AUTH_JWKS_URL').argParser(httpUrl))
    .addOption(option('--auth-jwt-audience <aud>', 'required JWT aud claim', 'CAIRN_AUTH_JWT_AUDIENCE'))
    .addOption(option('--auth-jwt-issuer <iss>', 'required JWT iss claim', 'CAIRN_AUTH_JWT_ISSUER'))
    .addOption(option('--auth-tokens-file <path>', 'YAML or JSON file of static bearer tokens and their grants', 'CAIRN_AUTH_TOKENS_FILE'))
    .addOption(
      option('--cors-origins <list>', 'origins browsers may call from: * or a comma-separated list', 'CAIRN_CORS_ORIGINS')
        .argParser(corsOrigins)
        .default('*'),
    )
    .addOption(
      option('--trust-proxy <list>', "proxies (IPs/CIDRs) whose X-Forwarded-For names the client; default none", 'CAIRN_TRUST_PROXY').argParser(
        addressList,
      ),
    )
    .addOption(
      option('--max-stream-path-bytes <bytes>', 'longest stream path, in bytes (400 above)', 'CAIRN_MAX_STREAM_PATH_BYTES')
        .argParser(integer(1, 64 * 1024))
        .default(STREAM_PATH_BYTES_MAX_DEFAULT),
    )
    .addOption(
      option('--max-header-bytes <bytes>', 'largest request line + headers, in bytes (431 above)', 'CAIRN_MAX_HEADER_BYTES')
        .argParser(integer(1024, 1024 * 1024))
        .default(HEADER_BYTES_MAX_DEFAULT),
    )
    .addOption(
      option('--max-json-depth <levels>', 'deepest nesting of a JSON body (400 above)', 'CAIRN_MAX_JSON_DEPTH')
        .argParser(integer(1, 100_000))
        .default(JSON_DEPTH_MAX_DEFAULT),
    )
    .addOption(
      option('--streams-max <count>', 'streams held at once; creates get 503 above', 'CAIRN_STREAMS_MAX')
        .argParser(integer(1, Number.MAX_SAFE_INTEGER))
        .default(STREAMS_MAX_DEFAULT),
    )
    .addOption(
      option('--live-readers-per-ip-max <count>', 'live readers per client (token, else IP) at once; 503 above', 'CAIRN_LIVE_READERS_PER_IP_MAX')
        .argParser(integer(1, 10_000_000))
        .default(LIVE_READERS_PER_CLIENT_MAX_DEFAULT),
    )
    .addOption(
      option('--appends-per-second-max <count>', 'writes (PUT, POST) per second per client (token, else IP); 429 above; 0 = off', 'CAIRN_APPENDS_PER_SECOND_MAX')
        .argParser(integer(0, 10_000_000))
        .default(APPENDS_PER_SECOND_MAX_DEFAULT),
    )
    .addOption(
      option('--headers-timeout-ms <ms>', 'time to receive a request head, in milliseconds (408 after)', 'CAIRN_HEADERS_TIMEOUT_MS')
        .argParser(integer(1, 3_600_000))
        .default(HEADERS_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--request-timeout-ms <ms>', 'time to receive a whole request, in milliseconds (408 after)', 'CAIRN_REQUEST_TIMEOUT_MS')
        .argParser(integer(1, 86_400_000))
        .default(REQUEST_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--body-timeout-ms <ms>', 'longest socket silence during a request, in milliseconds (closed after)', 'CAIRN_BODY_TIMEOUT_MS')
        .argParser(integer(1, 86_400_000))
        .default(BODY_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--idle-timeout-ms <ms>', 'keep-alive idle time between requests, in milliseconds', 'CAIRN_IDLE_TIMEOUT_MS')
        .argParser(integer(1, 86_400_000))
        .default(IDLE_TIMEOUT_MS_DEFAULT),
    )
    .addOption(
      option('--log-level <level>', 'log level', 'CAIRN_LOG_LEVEL')
        .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
        .default('info'),
    )
    .action(async (flags: Omit<ServeConfig, 'durability' | 'logLevel' | 'objectStore'> & { durability: string; logLevel: string; objectStore: string }) => {
      const config: ServeConfig = {
        ...flags,
        durability: flags.durability as ServeConfig['durability'],
        logLevel: flags.logLevel as ServeConfig['logLevel'],
        objectStore: flags.objectStore as ServeConfig['objectStore'],
      };
      if (config.objectStore === 's3' && config.s3Bucket === undefined) {
        process.stderr.write('cairn: --object-store s3 needs --s3-bucket (or CAIRN_S3_BUCKET)\n');
        process.exit(2);
      }
      const server = await startServer(config);
      const stop = (signal: string) => {
        process.stderr.write(`cairn: ${signal} received, shutting down\n`);
        server.close().then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`cairn: shutdown failed: ${(error as Error).stack}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}
