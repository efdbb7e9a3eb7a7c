/**
 * The upstream conformance suite over HTTPS and HTTP/2 (`--tls-cert-file`, `--tls-key-file`): a
 * self-signed certificate made for the run, and a global `fetch` dispatcher (undici, `allowH2`)
 * that trusts it and negotiates h2 by ALPN. The last test checks that every request the suite
 * made arrived over HTTP/2, so a server that fell back to HTTP/1.1 fails the file.
 * Subscriptions are on, as in the other configurations.
 */
import { afterAll, expect, test } from 'vitest';
import { setGlobalDispatcher } from 'undici';
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_LONG_POLL_TIMEOUT_MS, CONFORMANCE_SUBSCRIPTIONS } from '../support/conformance.ts';
import { startTestServer } from '../support/server.ts';
import { selfSignedCertificate, trustingAgent } from '../support/tls.ts';

const certificate = await selfSignedCertificate();
setGlobalDispatcher(trustingAgent(certificate.cert));
const server = await startTestServer({
  ...CONFORMANCE_SUBSCRIPTIONS,
  durability: 'wal',
  longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS,
  tlsCertFile: certificate.certFile,
  tlsKeyFile: certificate.keyFile,
});
const requestsByHttpVersion = new Map<string, number>();
server.app.server.on('request', (request: { httpVersion: string }) => {
  requestsByHttpVersion.set(request.httpVersion, (requestsByHttpVersion.get(request.httpVersion) ?? 0) + 1);
});
afterAll(async () => {
  await server.stop();
  await certificate.remove();
});

test('the server speaks HTTPS', () => {
  expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
});

runConformanceTests({ baseUrl: server.url, longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS, subscriptions: true });

test('every request of the suite arrived over HTTP/2', () => {
  expect(requestsByHttpVersion.get('2.0') ?? 0).toBeGreaterThan(100);
  expect([...requestsByHttpVersion.keys()]).toEqual(['2.0']);
});
