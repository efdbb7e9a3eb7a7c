/**
 * The durable proxy's allowlist and address checks (src/proxy/allowlist.ts; the Proxy Protocol
 * v0.1 §6, §12.1) and its header filtering (src/proxy/upstream.ts, §5).
 */
import { describe, expect, test } from 'vitest';
import { addressKind } from '../../src/protocol/ip-address.ts';
import { UpstreamAllowlist } from '../../src/proxy/allowlist.ts';
import { UpstreamNotAllowedError } from '../../src/proxy/errors.ts';
import { upstreamHeaders } from '../../src/proxy/upstream-request.ts';

describe('addressKind', () => {
  test.each([
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'private'],
    ['100.64.0.1', 'private'],
    ['0.0.0.0', 'private'],
    ['224.0.0.1', 'private'],
    ['255.255.255.255', 'private'],
    ['198.18.0.1', 'private'],
    ['fd00::1', 'private'],
    ['fe80::1', 'private'],
    ['ff02::1', 'private'],
    ['::', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:a00:1', 'private'],
    ['64:ff9b::a9fe:a9fe', 'private'],
    ['64:ff9b::8.8.8.8', 'public'],
    ['not an address', 'private'],
  ])('%s is %s', (address, kind) => {
    expect(addressKind(address)).toBe(kind);
  });
});

describe('UpstreamAllowlist', () => {
  const list = new UpstreamAllowlist({
    patterns: ['https://api.example.com/*', 'https://*.models.example/v1/chat', 'http://127.0.0.1:8787/*'],
    allowLocalhost: true,
  });

  test('* matches any run of characters; the whole normalised URL must match', () => {
    expect(list.checkUrl('https://api.example.com/v1/chat?x=1').url.href).toBe('https://api.example.com/v1/chat?x=1');
    expect(list.checkUrl('HTTPS://API.EXAMPLE.COM:443/v1').url.host).toBe('api.example.com');
    expect(() => list.checkUrl('https://api.example.com.evil.test/v1')).toThrow(UpstreamNotAllowedError);
    expect(() => list.checkUrl('http://api.example.com/v1')).toThrow(UpstreamNotAllowedError);
    expect(list.checkUrl('https://eu.models.example/v1/chat').url.hostname).toBe('eu.models.example');
    expect(() => list.checkUrl('https://eu.models.example/v1/chat/other')).toThrow(UpstreamNotAllowedError);
    expect(() => list.checkUrl('https://user:pw@api.example.com/v1')).toThrow(UpstreamNotAllowedError);
    expect(() => list.checkUrl('file:///etc/passwd')).toThrow(UpstreamNotAllowedError);
  });

  test('loopback only through a pattern naming it, with allowLocalhost', () => {
    const named = list.checkUrl('http://127.0.0.1:8787/x');
    expect(named.loopbackAllowed).toBe(true);
    expect(() => list.checkAddresses(named, ['127.0.0.1'])).not.toThrow();
    const publicName = list.checkUrl('https://api.example.com/v1');
    expect(publicName.loopbackAllowed).toBe(false);
    expect(() => list.checkAddresses(publicName, ['93.184.216.34', '127.0.0.1'])).toThrow(UpstreamNotAllowedError);
    expect(() => list.checkAddresses(publicName, ['93.184.216.34'])).not.toThrow();
    expect(() => list.checkAddresses(publicName, [])).toThrow(UpstreamNotAllowedError);
    const off = new UpstreamAllowlist({ patterns: ['http://127.0.0.1:8787/*'], allowLocalhost: false });
    expect(() => off.checkAddresses(off.checkUrl('http://127.0.0.1:8787/x'), ['127.0.0.1'])).toThrow(UpstreamNotAllowedError);
    // Private ranges are refused even through a literal pattern.
    const privateList = new UpstreamAllowlist({ patterns: ['http://10.0.0.1/*'], allowLocalhost: true });
    expect(() => privateList.checkAddresses(privateList.checkUrl('http://10.0.0.1/x'), ['10.0.0.1'])).toThrow(UpstreamNotAllowedError);
  });

  test('an empty allowlist refuses everything', () => {
    const empty = new UpstreamAllowlist({ patterns: [], allowLocalhost: true });
    expect(() => empty.checkUrl('https://api.example.com/')).toThrow(UpstreamNotAllowedError);
  });
});

describe('upstreamHeaders', () => {
  test('strips hop-by-hop, proxy and connection-named headers; Upstream-Authorization becomes Authorization', () => {
    expect(
      upstreamHeaders({
        host: 'cairn:4437',
        authorization: 'Bearer cairn',
        'upstream-authorization': 'Bearer upstream',
        'upstream-url': 'https://x',
        'upstream-method': 'POST',
        connection: 'keep-alive, X-Secret',
        'x-secret': 's',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        'transfer-encoding': 'chunked',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic x',
        'content-length': '10',
        'accept-encoding': 'gzip',
        cookie: 'cairn-session=1',
        'content-type': 'application/json',
        'x-request-id': 'r1',
        accept: ['text/event-stream', 'application/json'],
      }),
    ).toEqual({ authorization: 'Bearer upstream', 'content-type': 'application/json', 'x-request-id': 'r1', accept: ['text/event-stream', 'application/json'] });
    expect(upstreamHeaders({ authorization: 'Bearer cairn' })).toEqual({});
  });
});
