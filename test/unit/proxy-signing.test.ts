/**
 * Capability URL signatures (src/proxy/signing.ts; the Proxy Protocol v0.1 §7): bound to the
 * stream id and expiry, checked against the current and the previous key, expiry after the
 * signature.
 */
import { describe, expect, test } from 'vitest';
import { manualClock } from '../../src/clock.ts';
import { SignatureError } from '../../src/proxy/errors.ts';
import { UrlSigner } from '../../src/proxy/signing.ts';

const ID = '0b0e4a3c-1f2d-4c5b-8a9e-112233445566';
const CURRENT = 'current-secret-0123456789abcdef0123456789';
const PREVIOUS = 'previous-secret-0123456789abcdef012345678';

function codeOf(run: () => void): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(SignatureError);
    return (error as SignatureError).code;
  }
}

describe('UrlSigner', () => {
  test('a signed URL verifies until it expires, then SIGNATURE_EXPIRED', () => {
    const clock = manualClock(1_700_000_000_000);
    const signer = new UrlSigner({ current: CURRENT }, clock);
    const { expires, signature } = signer.sign(ID, 60);
    expect(expires).toBe(1_700_000_060);
    expect(signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(codeOf(() => signer.verify(ID, String(expires), signature))).toBeUndefined();
    clock.advance(59_999);
    expect(codeOf(() => signer.verify(ID, String(expires), signature))).toBeUndefined();
    clock.advance(1);
    expect(codeOf(() => signer.verify(ID, String(expires), signature))).toBe('SIGNATURE_EXPIRED');
  });

  test('another id, another expiry, another key, or a malformed value is SIGNATURE_INVALID; absent is MISSING_SIGNATURE', () => {
    const clock = manualClock(1_700_000_000_000);
    const signer = new UrlSigner({ current: CURRENT }, clock);
    const { expires, signature } = signer.sign(ID, 60);
    expect(codeOf(() => signer.verify(ID.replace('0b', '0c'), String(expires), signature))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(ID, String(expires + 1), signature))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => new UrlSigner({ current: PREVIOUS }, clock).verify(ID, String(expires), signature))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(ID, String(expires), `${signature}=`))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(ID, '-1', signature))).toBe('SIGNATURE_INVALID');
    expect(codeOf(() => signer.verify(ID, undefined, signature))).toBe('MISSING_SIGNATURE');
    expect(codeOf(() => signer.verify(ID, String(expires), undefined))).toBe('MISSING_SIGNATURE');
  });

  test('a URL signed with the previous key is accepted during a rotation, and only then', () => {
    const clock = manualClock(1_700_000_000_000);
    const old = new UrlSigner({ current: PREVIOUS }, clock).sign(ID, 60);
    const rotated = new UrlSigner({ current: CURRENT, previous: PREVIOUS }, clock);
    expect(codeOf(() => rotated.verify(ID, String(old.expires), old.signature))).toBeUndefined();
    const fresh = rotated.sign(ID, 60);
    expect(codeOf(() => new UrlSigner({ current: CURRENT }, clock).verify(ID, String(fresh.expires), fresh.signature))).toBeUndefined();
    expect(codeOf(() => new UrlSigner({ current: CURRENT }, clock).verify(ID, String(old.expires), old.signature))).toBe('SIGNATURE_INVALID');
  });
});

describe('loggableUrl', () => {
  test('replaces a capability URL signature and leaves other URLs alone', async () => {
    const { loggableUrl } = await import('../../src/observability/log-url.ts');
    expect(loggableUrl(`/v1/proxy/${ID}?expires=1&signature=abc_DEF-123&offset=-1`)).toBe(`/v1/proxy/${ID}?expires=1&signature=<redacted>&offset=-1`);
    expect(loggableUrl('/v1/stream/a?offset=-1')).toBe('/v1/stream/a?offset=-1');
  });
});
