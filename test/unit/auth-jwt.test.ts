/**
 * JWT checks (src/auth/jwt.ts) and the token cache (src/auth/authenticator.ts): signature, exp,
 * nbf, aud, iss, wrong key, alg none, the `cairn` grants claim, and a JWKS served by a real
 * node:http server on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { checkGrants } from '../../src/auth/grants.ts';
import { JwtRejectedError, JwtVerifier } from '../../src/auth/jwt.ts';
import { ServiceUnavailableError, UnauthorizedError } from '../../src/protocol/errors.ts';

const SECRET = 'a-test-secret-of-at-least-32-bytes!!';
const NOW_MS = Date.UTC(2026, 10, 21, 12, 0, 0);
const nowS = NOW_MS / 1000;
const clock = { nowMs: () => NOW_MS };
const grants = [{ paths: ['tenant-a/**'], operations: ['read', 'write'] }];

function hs256(claims: Record<string, unknown>, secret = SECRET, alg = 'HS256'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg }).sign(new TextEncoder().encode(secret));
}

/** A compact JWT with `alg: none` and no signature. */
function unsigned(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

describe('HS256 with --auth-jwt-secret', () => {
  const verifier = new JwtVerifier({ secret: SECRET, audience: 'cairn', issuer: 'https://issuer.test', clock });
  const valid = { sub: 'user-1', aud: 'cairn', iss: 'https://issuer.test', exp: nowS + 60, cairn: { grants } };

  test('a valid token yields its grants, key and expiry', async () => {
    const verified = await verifier.verify(await hs256(valid));
    expect(verified.key).toBe('jwt:https://issuer.test|user-1');
    expect(verified.expiresAtMs).toBe((nowS + 60) * 1000);
    expect(checkGrants(verified.grants, 'tenant-a/x', 'write')).toEqual({ publicRead: false });
    expect(checkGrants(verified.grants, 'tenant-b/x', 'read')).toBeUndefined();
  });

  const rejected: [string, () => Promise<string>, RegExp][] = [
    ['expired', () => hs256({ ...valid, exp: nowS - 1 }), /expired/],
    ['not yet valid (nbf)', () => hs256({ ...valid, nbf: nowS + 60 }), /nbf/],
    ['wrong audience', () => hs256({ ...valid, aud: 'other' }), /aud/],
    ['missing audience', () => hs256({ ...valid, aud: undefined }), /aud/],
    ['wrong issuer', () => hs256({ ...valid, iss: 'https://evil.test' }), /iss/],
    ['wrong key', () => hs256(valid, 'another-secret-of-at-least-32-bytes'), /signature/],
    ['alg none', async () => unsigned(valid), /not accepted|malformed/],
    ['an asymmetric alg without a JWKS', async () => unsigned({ ...valid }).replace(/^[^.]+/, Buffer.from('{"alg":"RS256"}').toString('base64url')) + 'x', /not accepted/],
    ['garbage', async () => 'a.b.c', /malformed/],
    ['an invalid cairn claim', () => hs256({ ...valid, cairn: { grants: [{ paths: ['a'], operations: ['admin'] }] } }), /cairn claim/],
  ];
  for (const [name, make, message] of rejected) {
    test(`refused: ${name}`, async () => {
      const token = await make();
      await expect(verifier.verify(token)).rejects.toThrow(JwtRejectedError);
      await expect(verifier.verify(token)).rejects.toThrow(message);
    });
  }

  test('a token without the cairn claim is valid but grants nothing', async () => {
    const verified = await verifier.verify(await hs256({ ...valid, cairn: undefined }));
    expect(verified.grants).toEqual([]);
  });
});

describe('JWKS from a local HTTP server (--auth-jwks-url)', () => {
  let server: http.Server;
  let jwksUrl: string;
  let fetches = 0;
  let signingKey: CryptoKey;
  let otherKey: CryptoKey;
  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    signingKey = pair.privateKey;
    otherKey = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = http.createServer((_request, response) => {
      fetches++;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const rs256 = (key: CryptoKey, claims: Record<string, unknown>, kid = 'k1') =>
    new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid }).sign(key);

  test('RS256 tokens verify against the served keys; other keys and HS tokens are refused', async () => {
    const verifier = new JwtVerifier({ jwksUrl, clock });
    const verified = await verifier.verify(await rs256(signingKey, { sub: 's', exp: nowS + 60, cairn: { grants } }));
    expect(checkGrants(verified.grants, 'tenant-a/1', 'read')).toBeDefined();
    expect(fetches).toBeGreaterThan(0);
    await expect(verifier.verify(await rs256(otherKey, { sub: 's', exp: nowS + 60 }))).rejects.toThrow(/signature/);
    await expect(verifier.verify(await rs256(signingKey, { sub: 's', exp: nowS - 10 }))).rejects.toThrow(/expired/);
    await expect(verifier.verify(await hs256({ sub: 's' }))).rejects.toThrow(/not accepted/);
  });

  test('the authenticator caches a verified JWT: a repeat costs no verification, until its exp', async () => {
    let nowMs = NOW_MS;
    const movingClock = { nowMs: () => nowMs };
    const authenticator = await Authenticator.open({ authJwksUrl: jwksUrl }, movingClock);
    if (authenticator === undefined) throw new Error('auth should be on');
    const token = await rs256(signingKey, { sub: 'cached', exp: nowS + 30, cairn: { grants } });
    const first = await authenticator.authenticate(`Bearer ${token}`);
    const second = await authenticator.authenticate(`Bearer ${token}`);
    expect(second).toBe(first); // the same object: served from the cache
    nowMs = NOW_MS + 31_000; // past exp: the cached entry must not be used, and jose refuses the token
    await expect(authenticator.authenticate(`Bearer ${token}`)).rejects.toThrow(UnauthorizedError);
    await expect(authenticator.authenticate(`Bearer ${token}`)).rejects.toThrow(/expired/);
  });
});

describe('Authenticator header handling', () => {
  test('absent, non-Bearer and unknown tokens are 401 with the right WWW-Authenticate', async () => {
    const authenticator = await Authenticator.open({ authJwtSecret: SECRET }, clock);
    if (authenticator === undefined) throw new Error('auth should be on');
    const absent = await authenticator.authenticate(undefined).catch((error: unknown) => error);
    expect(absent).toBeInstanceOf(UnauthorizedError);
    expect((absent as UnauthorizedError).headers['www-authenticate']).toBe('Bearer realm="cairn"');
    const basic = await authenticator.authenticate('Basic dXNlcjpwYXNz').catch((error: unknown) => error);
    expect((basic as UnauthorizedError).statusCode).toBe(401);
    const unknown = await authenticator.authenticate('Bearer not-a-known-token').catch((error: unknown) => error);
    expect((unknown as UnauthorizedError).headers['www-authenticate']).toBe('Bearer realm="cairn", error="invalid_token"');
    const ok = await authenticator.authenticate(`bearer ${await hs256({ sub: 'u', exp: nowS + 5, cairn: { grants } })}`);
    expect(ok.key).toBe('jwt:|u');
  });

  test('a JWKS that cannot be fetched is 503 (not the token\'s fault), not 401', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve())); // nothing listens there now
    const authenticator = await Authenticator.open({ authJwksUrl: `http://127.0.0.1:${port}/jwks.json` }, clock);
    if (authenticator === undefined) throw new Error('auth should be on');
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT({ sub: 's' }).setProtectedHeader({ alg: 'ES256', kid: 'k' }).sign(privateKey);
    const failure = await authenticator.authenticate(`Bearer ${token}`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ServiceUnavailableError);
    expect((failure as ServiceUnavailableError).headers['retry-after']).toBe('1');
  });

  test('auth is off when nothing is configured', async () => {
    expect(await Authenticator.open({}, clock)).toBeUndefined();
  });
});
