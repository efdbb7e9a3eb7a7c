/**
 * The settings of the durable proxy (README "Durable proxy"), one table spread into
 * `serveSettings` (serve-config.ts) so they share its flags, `CAIRN_*` variables, validation and
 * `cairn config print` (the signing secrets are redacted there). The proxy is off until
 * `--proxy-signing-secret` is set; every upstream is refused until `--proxy-allow-upstream`
 * names it (the spec's §6: an empty allowlist rejects all).
 */
import { z } from 'zod';
import {
  PROXY_CONNECT_TIMEOUT_MS_DEFAULT,
  PROXY_FIRST_BYTE_TIMEOUT_MS_DEFAULT,
  PROXY_IDLE_TIMEOUT_MS_DEFAULT,
  PROXY_TOTAL_TIMEOUT_MS_DEFAULT,
  PROXY_UPSTREAMS_MAX_DEFAULT,
  PROXY_UPSTREAMS_PER_CLIENT_MAX_DEFAULT,
  PROXY_URL_EXPIRY_SECONDS_DEFAULT,
} from './limits.ts';
import { setting } from './settings.ts';

const whole = (min: number, max: number) => {
  const message = `expected a whole number from ${min} to ${max}`;
  return z.int({ error: message }).min(min, { error: message }).max(max, { error: message });
};

/** A signing secret: at least 32 characters, so HMAC-SHA256 gets enough entropy (§12.2). */
const signingSecret = z.string().min(32, { error: 'expected a secret of at least 32 characters' });

/**
 * `--proxy-allow-upstream`: comma-separated URL patterns (text or, from a file, a list), each an
 * absolute http(s) URL in which `*` matches any run of characters. Output: the trimmed patterns.
 */
export const upstreamPatternsSchema = z
  .union([z.string(), z.array(z.string())], { error: 'expected a comma-separated list of URL patterns' })
  .transform((value, context): string[] => {
    const items = (typeof value === 'string' ? value.split(',') : value).map((item) => item.trim()).filter((item) => item.length > 0);
    for (const item of items) {
      if (!/^https?:\/\/[^/]/i.test(item)) {
        context.issues.push({ code: 'custom', input: value, message: `"${item}" is not an http:// or https:// URL pattern` });
        return z.NEVER;
      }
    }
    return items;
  });

export const proxySettings = {
  proxySigningSecret: setting({
    flag: '--proxy-signing-secret <secret>',
    env: 'CAIRN_PROXY_SIGNING_SECRET',
    schema: signingSecret.optional(),
    unit: 'secret',
    description: 'HMAC-SHA256 key of the proxy capability URLs (≥ 32 characters); turns the durable proxy on',
    unsetMeans: 'proxy off',
    secret: true,
  }),
  proxySigningSecretPrevious: setting({
    flag: '--proxy-signing-secret-previous <secret>',
    env: 'CAIRN_PROXY_SIGNING_SECRET_PREVIOUS',
    schema: signingSecret.optional(),
    unit: 'secret',
    description: 'the signing secret before a rotation: capability URLs it signed stay valid until they expire',
    unsetMeans: 'none',
    secret: true,
  }),
  proxyAllowUpstream: setting({
    flag: '--proxy-allow-upstream <patterns>',
    env: 'CAIRN_PROXY_ALLOW_UPSTREAM',
    schema: upstreamPatternsSchema.optional(),
    unit: 'URL patterns',
    description: 'upstream URLs the proxy may call, comma-separated; * matches any run of characters',
    unsetMeans: 'none (every upstream refused)',
  }),
  proxyAllowLocalhost: setting({
    flag: '--proxy-allow-localhost',
    env: 'CAIRN_PROXY_ALLOW_LOCALHOST',
    schema: z.boolean({ error: 'expected true or false' }).optional(),
    description: 'allow loopback upstreams that an allowlist pattern names literally (development, tests)',
    unsetMeans: 'off',
  }),
  proxyConnectTimeoutMs: setting({
    flag: '--proxy-connect-timeout-ms <ms>',
    env: 'CAIRN_PROXY_CONNECT_TIMEOUT_MS',
    schema: whole(1, 600_000),
    default: PROXY_CONNECT_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'time to connect to the upstream (504 after)',
  }),
  proxyFirstByteTimeoutMs: setting({
    flag: '--proxy-first-byte-timeout-ms <ms>',
    env: 'CAIRN_PROXY_FIRST_BYTE_TIMEOUT_MS',
    schema: whole(1, 3_600_000),
    default: PROXY_FIRST_BYTE_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: "time to the upstream's response head (504 UPSTREAM_TIMEOUT after)",
  }),
  proxyIdleTimeoutMs: setting({
    flag: '--proxy-idle-timeout-ms <ms>',
    env: 'CAIRN_PROXY_IDLE_TIMEOUT_MS',
    schema: whole(1, 86_400_000),
    default: PROXY_IDLE_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'longest silence between upstream body chunks (stream closed, outcome timed-out, after)',
  }),
  proxyTotalTimeoutMs: setting({
    flag: '--proxy-total-timeout-ms <ms>',
    env: 'CAIRN_PROXY_TOTAL_TIMEOUT_MS',
    schema: whole(1, 7 * 86_400_000),
    default: PROXY_TOTAL_TIMEOUT_MS_DEFAULT,
    unit: 'ms',
    description: 'longest whole upstream exchange (stream closed, outcome timed-out, after)',
  }),
  proxyUpstreamsMax: setting({
    flag: '--proxy-upstreams-max <count>',
    env: 'CAIRN_PROXY_UPSTREAMS_MAX',
    schema: whole(1, 1_000_000),
    default: PROXY_UPSTREAMS_MAX_DEFAULT,
    unit: 'count',
    description: 'upstream requests in flight, all callers; 503 above',
  }),
  proxyUpstreamsPerClientMax: setting({
    flag: '--proxy-upstreams-per-client-max <count>',
    env: 'CAIRN_PROXY_UPSTREAMS_PER_CLIENT_MAX',
    schema: whole(1, 1_000_000),
    default: PROXY_UPSTREAMS_PER_CLIENT_MAX_DEFAULT,
    unit: 'count',
    description: 'upstream requests in flight per caller (token, else IP); 429 above',
  }),
  proxyUrlExpirySeconds: setting({
    flag: '--proxy-url-expiry-seconds <seconds>',
    env: 'CAIRN_PROXY_URL_EXPIRY_SECONDS',
    schema: whole(1, 365 * 86_400),
    default: PROXY_URL_EXPIRY_SECONDS_DEFAULT,
    unit: 'seconds',
    description: 'lifetime of a capability URL; its streams expire at the same time',
  }),
};
