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
import { addressKind } from '../protocol/ip-address.ts';
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
