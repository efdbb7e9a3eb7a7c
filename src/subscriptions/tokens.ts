/**
 * Wake ids and callback/claim tokens (PROTOCOL.md §7.3, §12.9): 32 random bytes from node:crypto
 * (unguessable, so not the seeded test random source), kept only as a SHA-256 hash in state and in
 * the WAL, compared in constant time. A token is bound to one wake: the hash is replaced with the
 * wake, so an old token is fenced as soon as its wake ends.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

export function newWakeId(): string {
  return `w_${randomBytes(12).toString('base64url')}`;
}

/** SHA-256 of a token, hex. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Constant-time equality of two hex hashes. */
export function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
