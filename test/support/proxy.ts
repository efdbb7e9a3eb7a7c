/**
 * Helpers of the durable proxy's tests: a server configured for a loopback mock upstream, and
 * create / read calls with fetch.
 */
import type { ServeConfig } from '../../src/config/serve-config.ts';
import type { MockUpstream } from './mock-upstream.ts';
import { startTestServer, type TestServer } from './server.ts';

export const PROXY_SECRET = 'proxy-signing-secret-for-tests-0123456789';
export const PROXY_SECRET_PREVIOUS = 'previous-proxy-signing-secret-0123456789';

/** A server whose proxy may call `upstream` (loopback, named literally, --proxy-allow-localhost). */
export function startProxyServer(upstream: MockUpstream, overrides: Partial<ServeConfig> = {}): Promise<TestServer> {
  return startTestServer({
    proxySigningSecret: PROXY_SECRET,
    proxySigningSecretPrevious: PROXY_SECRET_PREVIOUS,
    proxyAllowUpstream: [`${upstream.origin}/*`],
    proxyAllowLocalhost: true,
    ...overrides,
  });
}

/** POST /v1/proxy. */
export function createProxy(
  serverUrl: string,
  upstreamUrl: string | undefined,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...options.headers };
  if (upstreamUrl !== undefined) headers['upstream-url'] = upstreamUrl;
  if (options.method !== '') headers['upstream-method'] = options.method ?? 'GET';
  return fetch(`${serverUrl}/v1/proxy`, { method: 'POST', headers, body: options.body });
}

/** Creates and expects 201; returns the absolute capability URL. */
export async function createProxyOk(serverUrl: string, upstreamUrl: string, options: Parameters<typeof createProxy>[2] = {}): Promise<string> {
  const response = await createProxy(serverUrl, upstreamUrl, options);
  if (response.status !== 201) throw new Error(`create answered ${response.status}: ${await response.text()}`);
  const location = response.headers.get('location');
  if (location === null) throw new Error('no Location');
  return location;
}

/** The capability URL with more query parameters. */
export function withQuery(capability: string, params: Record<string, string>): string {
  const url = new URL(capability);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.href;
}

/** Reads the whole stream with long-polls until it is closed: its text and the last response's headers. */
export async function readToClose(capability: string): Promise<{ text: string; headers: Headers }> {
  let offset = '-1';
  let text = '';
  for (;;) {
    const response = await fetch(withQuery(capability, offset === '-1' ? { offset } : { offset, live: 'long-poll' }));
    if (response.status !== 200 && response.status !== 204) throw new Error(`read answered ${response.status}: ${await response.text()}`);
    text += await response.text();
    offset = response.headers.get('stream-next-offset') ?? offset;
    if (response.headers.get('stream-closed') === 'true') return { text, headers: response.headers };
  }
}
