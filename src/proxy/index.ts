/**
 * The durable proxy, assembled from its settings (README "Durable proxy"): the allowlist, the
 * upstream client, the URL signer and the service. Off (undefined) until `--proxy-signing-secret`
 * is set; the server imports this module (and with it undici) only then. The HTTP routes import
 * the light modules (errors, proxy-streams, upstream-request) directly and this one for types.
 */
import type { Clock } from '../clock.ts';
import type { ReadPath } from '../read-path/read-path.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { UpstreamAllowlist } from './allowlist.ts';
import { ProxyService, type ProxyServiceOptions } from './proxy-service.ts';
import { UrlSigner } from './signing.ts';
import { UpstreamClient } from './upstream.ts';

export type { CreateResult } from './proxy-service.ts';

/** The proxy's settings, as in `ServeConfig` (src/config/proxy-settings.ts). */
export interface ProxyConfig {
  proxySigningSecret?: string;
  proxySigningSecretPrevious?: string;
  proxyAllowUpstream?: string[];
  proxyAllowLocalhost?: boolean;
  proxyConnectTimeoutMs: number;
  proxyFirstByteTimeoutMs: number;
  proxyIdleTimeoutMs: number;
  proxyTotalTimeoutMs: number;
  proxyUpstreamsMax: number;
  proxyUpstreamsPerClientMax: number;
  proxyUrlExpirySeconds: number;
}

/** What the HTTP routes need. */
export interface Proxy {
  service: ProxyService;
  signer: UrlSigner;
  /** Lifetime of new capability URLs, seconds. */
  urlExpirySeconds: number;
}

export function openProxy(
  config: ProxyConfig,
  parts: { registry: StreamRegistry; reads: ReadPath; clock: Clock; onEvent?: ProxyServiceOptions['onEvent'] },
): Proxy | undefined {
  if (config.proxySigningSecret === undefined) return undefined;
  const allowlist = new UpstreamAllowlist({ patterns: config.proxyAllowUpstream ?? [], allowLocalhost: config.proxyAllowLocalhost === true });
  const upstream = new UpstreamClient(
    allowlist,
    {
      connectTimeoutMs: config.proxyConnectTimeoutMs,
      firstByteTimeoutMs: config.proxyFirstByteTimeoutMs,
      idleTimeoutMs: config.proxyIdleTimeoutMs,
      totalTimeoutMs: config.proxyTotalTimeoutMs,
    },
    parts.clock,
  );
  const service = new ProxyService({
    registry: parts.registry,
    reads: parts.reads,
    clock: parts.clock,
    upstream,
    upstreamsMax: config.proxyUpstreamsMax,
    upstreamsPerClientMax: config.proxyUpstreamsPerClientMax,
    streamLifetimeSeconds: config.proxyUrlExpirySeconds,
    onEvent: parts.onEvent,
  });
  const signer = new UrlSigner({ current: config.proxySigningSecret, previous: config.proxySigningSecretPrevious }, parts.clock);
  return { service, signer, urlExpirySeconds: config.proxyUrlExpirySeconds };
}
