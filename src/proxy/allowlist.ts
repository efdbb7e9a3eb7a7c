/**
 * Which upstream URLs the proxy may call (the Proxy Protocol v0.1 §6, §12.1), before and after
 * DNS resolution.
 *
 * Syntax of `--proxy-allow-upstream`: each pattern is matched against the whole upstream URL as
 * the WHATWG URL parser normalises it (`https://api.example.com/v1/chat`: lower-case scheme and
 * host, default port dropped, path always present); `*` matches any run of characters (including
 * `/`), everything else matches itself. `https://api.example.com/*` allows every path of that
 * origin; `https://*.example.com/*` every subdomain. An empty allowlist refuses everything.
 *
 * Addresses: every address the host resolves to must be public. Private, loopback, link-local,
 * carrier-grade NAT, multicast, reserved and documentation ranges are refused (IPv4-mapped and
 * NAT64 IPv6 forms too). Loopback is allowed only with `--proxy-allow-localhost` AND when a
 * pattern that matches the URL names a loopback host literally (`http://127.0.0.1:8080/*`,
 * `http://localhost:*`), so a wildcard pattern or a public name resolving to 127.0.0.1 (DNS
 * rebinding) never reaches this machine.
 */
import { BlockList, isIP } from 'node:net';
import { UpstreamNotAllowedError } from './errors.ts';

/** Compiles one pattern to an anchored regular expression. */
function compile(pattern: string): RegExp {
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${source}$`, 's');
}

/** A pattern naming a loopback host literally: `http(s)://localhost`, `127.x.y.z`, `[::1]`. */
function namesLoopback(pattern: string): boolean {
  return /^https?:\/\/(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:|\/|$)/i.test(pattern);
}

const NON_PUBLIC = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv6');
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const match = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (match === null) return undefined;
  if (match[1] !== undefined) return match[1];
  const high = Number.parseInt(match[2] ?? '0', 16);
  const low = Number.parseInt(match[3] ?? '0', 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** `loopback`, `private` (any other non-public range) or `public`. */
export function addressKind(address: string): 'loopback' | 'private' | 'public' {
  const family = isIP(address);
  if (family === 0) return 'private';
  const v4 = family === 6 ? embeddedIpv4(address) : address;
  const [checked, type] = v4 === undefined ? [address, 'ipv6' as const] : [v4, 'ipv4' as const];
  if (LOOPBACK.check(checked, type)) return 'loopback';
  return NON_PUBLIC.check(checked, type) ? 'private' : 'public';
}

export interface AllowlistOptions {
  /** `--proxy-allow-upstream`; empty or absent refuses every upstream. */
  patterns: readonly string[];
  /** `--proxy-allow-localhost`. */
  allowLocalhost: boolean;
}

/** What the check of a URL decided: whether its addresses may be loopback. */
export interface UpstreamPermit {
  url: URL;
  loopbackAllowed: boolean;
}

export class UpstreamAllowlist {
  readonly #patterns: { regex: RegExp; loopback: boolean }[];
  readonly #allowLocalhost: boolean;

  constructor(options: AllowlistOptions) {
    this.#patterns = options.patterns.map((pattern) => ({ regex: compile(pattern), loopback: namesLoopback(pattern) }));
    this.#allowLocalhost = options.allowLocalhost;
  }

  /**
   * Checks an `Upstream-URL` before anything is sent.
   * @throws UpstreamNotAllowedError (403) when the URL is not absolute http(s), has credentials,
   *   or no pattern matches it.
   */
  checkUrl(text: string): UpstreamPermit {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new UpstreamNotAllowedError('Upstream-URL is not an absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UpstreamNotAllowedError('Upstream-URL must be http or https');
    if (url.username !== '' || url.password !== '') throw new UpstreamNotAllowedError('Upstream-URL must not carry credentials (use Upstream-Authorization)');
    const matching = this.#patterns.filter((pattern) => pattern.regex.test(url.href));
    if (matching.length === 0) throw new UpstreamNotAllowedError('Upstream-URL does not match any allowed upstream pattern');
    return { url, loopbackAllowed: this.#allowLocalhost && matching.some((pattern) => pattern.loopback) };
  }

  /**
   * Checks every address the upstream's host resolved to.
   * @throws UpstreamNotAllowedError (403) when one is private, or loopback without permission.
   */
  checkAddresses(permit: UpstreamPermit, addresses: readonly string[]): void {
    if (addresses.length === 0) throw new UpstreamNotAllowedError('the upstream host has no address');
    for (const address of addresses) {
      const kind = addressKind(address);
      if (kind === 'public' || (kind === 'loopback' && permit.loopbackAllowed)) continue;
      throw new UpstreamNotAllowedError(
        kind === 'loopback'
          ? 'the upstream resolves to a loopback address (allowed only with --proxy-allow-localhost and a pattern naming that host)'
          : 'the upstream resolves to a private or reserved address',
      );
    }
  }
}
