/**
 * Webhook URL rules against server-side request forgery (PROTOCOL.md §6.2, §12.8): `https://`
 * only; no private (RFC 1918, CGNAT, unique-local), loopback, link-local (cloud metadata
 * 169.254.169.254), multicast, unspecified or documentation targets — checked on the literal
 * address, on every address a name resolves to (at create time and again at connect time, so a
 * name cannot be re-pointed after the check), and never bypassed by a redirect (redirects are not
 * followed). The development exception (`--allow-localhost-webhooks`) admits `http://localhost`
 * and `http://127.0.0.x` and nothing else.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { addressKind, embeddedIpv4 } from '../protocol/ip-address.ts';
import { WebhookUrlRejectedError } from './errors.ts';

function isLoopbackAddress(address: string): boolean {
  const v4 = embeddedIpv4(address) ?? address;
  return /^127\.0\.0\.\d+$/.test(v4) || address === '::1';
}

/**
 * Why `address` (an IP literal) may not receive webhooks, or undefined when it may.
 * `allowLoopback` admits 127.0.0.x and ::1 (what `localhost` resolves to) and nothing else.
 */
export function addressRefusal(address: string, allowLoopback: boolean): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '');
  if (allowLoopback && isLoopbackAddress(bare)) return undefined;
  if (addressKind(bare) !== 'public') return `${bare} is a private, loopback, link-local or reserved address`;
  return undefined;
}

/**
 * Checks a webhook URL without resolving names.
 * @throws WebhookUrlRejectedError naming the rule it breaks.
 */
export function checkWebhookUrl(raw: string, allowLocalhost: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookUrlRejectedError('webhook.url is not a valid URL');
  }
  if (url.username !== '' || url.password !== '') throw new WebhookUrlRejectedError('webhook.url must not carry credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const localhostName = host === 'localhost';
  // The development exception names exactly `localhost` and 127.0.0.x (§6.2).
  const development = allowLocalhost && (localhostName || /^127\.0\.0\.\d+$/.test(host));
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && development)) {
    throw new WebhookUrlRejectedError(
      allowLocalhost ? 'webhook.url must use https:// (http:// only for localhost and 127.0.0.x)' : 'webhook.url must use https://',
    );
  }
  if (localhostName && !allowLocalhost) throw new WebhookUrlRejectedError('localhost webhooks need --allow-localhost-webhooks (development only)');
  if (isIP(host) !== 0) {
    const refusal = addressRefusal(host, development);
    if (refusal !== undefined) throw new WebhookUrlRejectedError(`webhook.url target refused: ${refusal}`);
  }
  return url;
}

/**
 * Resolves `hostname` (all addresses) and refuses it if any address is refused; loopback
 * addresses pass only for the name `localhost` under the development exception.
 */
export async function checkResolvedHost(hostname: string, allowLocalhost: boolean): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return;
  const allowLoopback = allowLocalhost && host.toLowerCase() === 'localhost';
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    dnsLookup(host, { all: true }, (error, found) => (error === null ? resolve(found) : reject(error))),
  ).catch((error: NodeJS.ErrnoException) => {
    throw new WebhookUrlRejectedError(`webhook.url host ${host} does not resolve (${error.code ?? error.message})`);
  });
  for (const { address } of addresses) {
    const refusal = addressRefusal(address, allowLoopback);
    if (refusal !== undefined) throw new WebhookUrlRejectedError(`webhook.url host ${host} resolves to a refused address: ${refusal}`);
  }
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for node:http(s) requests that refuses a name if any of its addresses is refused, so
 * the check holds at connect time (DNS rebinding) and not only when the subscription was created.
 */
export function guardedLookup(allowLocalhost: boolean) {
  return (hostname: string, options: { all?: boolean; family?: number }, callback: LookupCallback): void => {
    const allowLoopback = allowLocalhost && hostname.toLowerCase() === 'localhost';
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, []);
      for (const { address } of addresses) {
        const refusal = addressRefusal(address, allowLoopback);
        if (refusal !== undefined) {
          return callback(Object.assign(new Error(`webhook target refused: ${hostname} → ${refusal}`), { code: 'EWEBHOOKREFUSED' }), []);
        }
      }
      if (options.all === true) return callback(null, addresses);
      const first = addresses[0];
      return first === undefined ? callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []) : callback(null, first.address, first.family);
    });
  };
}
