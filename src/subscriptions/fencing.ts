/**
 * The fencing rules of callbacks, acks and releases (PROTOCOL.md §7.3): the current wake's token
 * (compared by SHA-256 hash, in constant time), its `generation` and `wake_id`, and a lease still
 * running; and the offsets a worker may acknowledge (a followed stream, at most its tail).
 */
import { BadRequestError } from '../protocol/errors.ts';
import { parseOffsetToken } from '../protocol/offset.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import { FencedError, TokenInvalidError } from './errors.ts';
import { currentStream, tailOffset } from './links.ts';
import type { Subscription, Wake } from './subscription-table.ts';
import { hashToken, sameHash } from './tokens.ts';

/**
 * The current wake of `sub`, if token, generation, wake id and lease (at wall-clock `nowMs`) all match.
 * @throws TokenInvalidError (no token), FencedError
 */
export function fenceWake(sub: Subscription, token: string | undefined, wakeId: string, generation: number, nowMs: number): Wake {
  if (token === undefined) throw new TokenInvalidError('Authorization: Bearer <callback or claim token> is required');
  const wake = sub.wake;
  if (wake === null || wake.tokenHash === null || wake.leaseUntilMs === null || nowMs >= wake.leaseUntilMs) {
    throw new FencedError('no wake is in flight (finished, released, or its lease expired)');
  }
  if (!sameHash(wake.tokenHash, hashToken(token))) throw new FencedError('the token is not the current wake\'s');
  if (generation !== wake.gen || wakeId !== wake.wakeId) throw new FencedError(`stale wake: current generation is ${wake.gen}`);
  return wake;
}

/** `offset` if `sub` follows `path` and the offset is a token at most the stream's tail. @throws BadRequestError */
export function checkAckOffset(registry: StreamRegistry, sub: Subscription, path: string, offset: string): string {
  if (sub.links.get(path)?.explicit !== true && sub.glob?.test(path) !== true) throw new BadRequestError(`the subscription does not follow ${path}`);
  if (parseOffsetToken(offset) === undefined) throw new BadRequestError(`not an offset: ${offset}`);
  const stream = currentStream(registry, path);
  if (stream === undefined || offset > tailOffset(registry, stream)) throw new BadRequestError(`ack offset ${offset} is past the tail of ${path}`);
  return offset;
}
