/**
 * Pure pieces of access control and limits: JSON depth, live readers per client, loopback hosts,
 * and the settings schemas of `--cors-origins` and `--trust-proxy`.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import type { z } from 'zod';
import { addressListSchema, corsOriginsSchema } from '../../src/config/serve-config.ts';
import { LiveClients } from '../../src/http/live-clients.ts';
import { jsonDepthExceeds } from '../../src/protocol/json-depth.ts';
import { ServiceUnavailableError } from '../../src/protocol/errors.ts';
import { isLoopbackHost } from '../../src/server.ts';

const bytes = (text: string) => Buffer.from(text);

/** Depth of a JSON value, counted the way the limit counts (a scalar is 0, `[]` is 1). */
function depthOf(value: unknown): number {
  if (Array.isArray(value)) return 1 + Math.max(0, ...value.map(depthOf));
  if (value !== null && typeof value === 'object') return 1 + Math.max(0, ...Object.values(value).map(depthOf));
  return 0;
}

describe('jsonDepthExceeds', () => {
  test('counts arrays and objects, not brackets inside strings or after escapes', () => {
    expect(jsonDepthExceeds(bytes('[[[1]]]'), 3)).toBe(false);
    expect(jsonDepthExceeds(bytes('[[[1]]]'), 2)).toBe(true);
    expect(jsonDepthExceeds(bytes('{"a":{"b":[1]}}'), 2)).toBe(true);
    expect(jsonDepthExceeds(bytes('["[[[[[[[[[["]'), 1)).toBe(false);
    expect(jsonDepthExceeds(bytes('["\\"[[[[[[[[["]'), 1)).toBe(false);
    expect(jsonDepthExceeds(bytes('[1],[2],[3],[4]'), 1)).toBe(false); // siblings do not add up
  });

  test('agrees with the depth of any JSON value', () => {
    fc.assert(
      fc.property(fc.json({ depthSize: 'medium' }), fc.integer({ min: 1, max: 12 }), (text, max) => {
        expect(jsonDepthExceeds(bytes(text), max)).toBe(depthOf(JSON.parse(text)) > max);
      }),
      { numRuns: 500, seed: 5 },
    );
  });
});

describe('LiveClients', () => {
  test('counts per key, refuses past the maximum with 503, and a release frees exactly one slot', () => {
    const clients = new LiveClients(2);
    const a1 = clients.acquire('a');
    clients.acquire('a');
    expect(() => clients.acquire('a')).toThrow(ServiceUnavailableError);
    const b = clients.acquire('b'); // other keys are independent
    a1();
    a1(); // a second call of the same release is a no-op
    expect(clients.countOf('a')).toBe(1);
    clients.acquire('a');
    expect(() => clients.acquire('a')).toThrow(/limit 2/);
    b();
    expect(clients.countOf('b')).toBe(0);
  });
});

describe('isLoopbackHost', () => {
  test('only addresses this machine alone can reach', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(host)).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '128.0.0.1', '127.0.0.1.example.com']) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });
});

/** Parses text as the setting would; throws with the schema's message when it is refused. */
function parser<T>(schema: z.ZodType<T>) {
  return (text: string): T => {
    const result = schema.safeParse(text);
    if (!result.success) throw new Error(result.error.issues.map((issue) => issue.message).join('; '));
    return result.data;
  };
}
const corsOrigins = parser(corsOriginsSchema);
const addressList = parser(addressListSchema);

describe('settings schemas', () => {
  test('--cors-origins: * or a list of origins', () => {
    expect(corsOrigins('*')).toBe('*');
    expect(corsOrigins('https://a.example, http://localhost:5173')).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(() => corsOrigins('https://a.example/')).toThrow(/not an origin/);
    expect(() => corsOrigins('a.example')).toThrow(/not an origin/);
    expect(() => corsOrigins(' , ')).toThrow(/expected \*/);
    expect(() => corsOrigins('*, https://a.example')).toThrow(/not an origin/);
    // A list from a config file, and an already validated value, parse to themselves.
    expect(corsOriginsSchema.parse(['https://a.example'])).toEqual(['https://a.example']);
    expect(corsOriginsSchema.parse(corsOrigins('*'))).toBe('*');
  });

  test('--trust-proxy: IP addresses and CIDR ranges', () => {
    expect(addressList('10.0.0.0/8, 127.0.0.1,::1,fd00::/8')).toEqual(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8']);
    expect(() => addressList('10.0.0.0/33')).toThrow(/not an IP address or CIDR/);
    expect(() => addressList('proxy.example')).toThrow(/not an IP address or CIDR/);
    expect(() => addressList('10.0.0.1/8/1')).toThrow(/not an IP address or CIDR/);
    expect(addressListSchema.parse(['10.0.0.0/8'])).toEqual(['10.0.0.0/8']);
  });
});
