/**
 * Renders infra/local-cdn/nginx.conf.template into an nginx configuration for one Cairn upstream.
 *
 *   node infra/local-cdn/render.ts --upstream 127.0.0.1:4437 --listen 127.0.0.1:8080 > cdn/nginx.conf
 *   nginx -p cdn -c nginx.conf -g 'daemon off; pid nginx.pid;'
 *
 * Relative paths (cache, temp, log) are relative to nginx's prefix (`-p`). The timeouts derive from
 * Cairn's long-poll timeout and SSE reconnect interval (src/config/limits.ts defaults).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LONG_POLL_TIMEOUT_MS_DEFAULT, SSE_RECONNECT_MS_DEFAULT } from '../../src/config/limits.ts';

export const TEMPLATE_PATH = path.join(import.meta.dirname, 'nginx.conf.template');

/**
 * Seconds the cache lock outlasts a long-poll: the first request of a key holds the lock until
 * Cairn answers, at the latest at its long-poll timeout; waiters must not give up (and go to
 * Cairn one by one) before that.
 */
export const CACHE_LOCK_MARGIN_SECONDS = 5;
/** Seconds nginx waits for Cairn beyond the long-poll timeout (or an SSE connection's life). */
export const READ_TIMEOUT_MARGIN_SECONDS = 10;

export interface LocalCdnOptions {
  /** Cairn's address, `host:port`. */
  upstream: string;
  /** nginx's `listen` value, e.g. `127.0.0.1:8080`. Default `127.0.0.1:8080`. */
  listen?: string;
  /** Cache directory. Default `cache` (under the prefix). */
  cacheDir?: string;
  /** Directory for nginx's temporary files. Default `temp` (under the prefix). */
  tempDir?: string;
  /** Largest cache size, nginx syntax. Default `1g`. */
  cacheMaxSize?: string;
  /** Access log: `off`, or a path (logged in the `cdn` format with the cache status). Default `off`. */
  accessLog?: string;
  /** Cairn's `--long-poll-timeout-ms`. Default LONG_POLL_TIMEOUT_MS_DEFAULT. */
  longPollTimeoutMs?: number;
  /** Cairn's `--sse-reconnect-ms`. Default SSE_RECONNECT_MS_DEFAULT. */
  sseReconnectMs?: number;
  /** User the worker processes run as when nginx starts as root (e.g. `www-data`). Default: none. */
  user?: string;
}

/** The nginx configuration text. Throws on a value that would break the configuration's syntax. */
export function renderLocalCdnConfig(options: LocalCdnOptions): string {
  const longPollSeconds = Math.ceil((options.longPollTimeoutMs ?? LONG_POLL_TIMEOUT_MS_DEFAULT) / 1000);
  const sseSeconds = Math.ceil((options.sseReconnectMs ?? SSE_RECONNECT_MS_DEFAULT) / 1000);
  const values: Record<string, string> = {
    USER_DIRECTIVE: options.user === undefined ? '' : `user ${options.user};`,
    UPSTREAM: options.upstream,
    LISTEN: options.listen ?? '127.0.0.1:8080',
    CACHE_DIR: options.cacheDir ?? 'cache',
    TEMP_DIR: options.tempDir ?? 'temp',
    CACHE_MAX_SIZE: options.cacheMaxSize ?? '1g',
    ACCESS_LOG: options.accessLog === undefined || options.accessLog === 'off' ? 'off' : `${options.accessLog} cdn`,
    CACHE_LOCK_TIMEOUT_S: String(longPollSeconds + CACHE_LOCK_MARGIN_SECONDS),
    READ_TIMEOUT_S: String(longPollSeconds + READ_TIMEOUT_MARGIN_SECONDS),
    SSE_READ_TIMEOUT_S: String(sseSeconds + READ_TIMEOUT_MARGIN_SECONDS),
  };
  for (const [name, value] of Object.entries(values)) {
    if (/[;{}\s'"]/.test(value) && name !== 'USER_DIRECTIVE' && name !== 'ACCESS_LOG') throw new Error(`local CDN: ${name} "${value}" is not a plain nginx value`);
  }
  const template = readFileSync(TEMPLATE_PATH, 'utf8');
  const text = template.replace(/\{\{([A-Z_]+)\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`local CDN template: unknown placeholder {{${name}}}`);
    return value;
  });
  return text;
}

/** The configuration docker-compose.yml mounts (nginx in its own container, Cairn at cairn:4437). */
export const COMPOSE_OPTIONS: LocalCdnOptions = {
  upstream: 'cairn:4437',
  listen: '8080',
  cacheDir: '/var/cache/cairn-cdn',
  tempDir: '/var/cache/cairn-cdn-temp',
  accessLog: '/dev/stdout',
  user: 'www-data',
};
export const COMPOSE_CONFIG_PATH = path.join(import.meta.dirname, 'compose.nginx.conf');

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      upstream: { type: 'string' },
      listen: { type: 'string' },
      'cache-dir': { type: 'string' },
      'temp-dir': { type: 'string' },
      'cache-max-size': { type: 'string' },
      'access-log': { type: 'string' },
      'long-poll-timeout-ms': { type: 'string' },
      'sse-reconnect-ms': { type: 'string' },
      user: { type: 'string' },
      compose: { type: 'boolean' },
    },
  });
  const positive = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text)) {
      process.stderr.write(`render: ${flag} expects a whole number of milliseconds, got "${text}"\n`);
      process.exit(2);
    }
    return Number(text);
  };
  if (values.compose) {
    process.stdout.write(renderLocalCdnConfig(COMPOSE_OPTIONS));
  } else {
    if (values.upstream === undefined) {
      process.stderr.write('render: --upstream host:port is required (or --compose for docker-compose.yml)\n');
      process.exit(2);
    }
    const options: LocalCdnOptions = { upstream: values.upstream };
    if (values.listen !== undefined) options.listen = values.listen;
    if (values['cache-dir'] !== undefined) options.cacheDir = values['cache-dir'];
    if (values['temp-dir'] !== undefined) options.tempDir = values['temp-dir'];
    if (values['cache-max-size'] !== undefined) options.cacheMaxSize = values['cache-max-size'];
    if (values['access-log'] !== undefined) options.accessLog = values['access-log'];
    const longPoll = positive(values['long-poll-timeout-ms'], '--long-poll-timeout-ms');
    if (longPoll !== undefined) options.longPollTimeoutMs = longPoll;
    const sse = positive(values['sse-reconnect-ms'], '--sse-reconnect-ms');
    if (sse !== undefined) options.sseReconnectMs = sse;
    if (values.user !== undefined) options.user = values.user;
    process.stdout.write(renderLocalCdnConfig(options));
  }
}
