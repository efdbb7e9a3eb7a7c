/**
 * Which kind of address an IP literal is, for the server-side request forgery rules of the
 * durable proxy (Proxy Protocol §6, §12.1) and of webhooks (PROTOCOL.md §6.2, §12.8): loopback,
 * any other non-public range (RFC 1918, CGNAT, link-local incl. cloud metadata, unique-local,
 * multicast, unspecified, documentation, reserved), or public. IPv4 addresses embedded in IPv6
 * (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, dotted or hex) are judged as IPv4.
 * Pure: no name resolution here; callers check every address a name resolves to.
 */
import { BlockList, isIP } from 'node:net';

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
export function embeddedIpv4(address: string): string | undefined {
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

