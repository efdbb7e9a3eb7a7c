/**
 * Request ids (issue 6): an incoming `X-Request-Id` is kept when it is sane (1–128 characters of
 * letters, digits and `-_.:`), so ids travel across proxies; otherwise the server makes one: a
 * random per-process prefix and a counter (no per-request randomness or UUID). The id is echoed
 * in the `X-Request-Id` response header and logged as `reqId` with every log line of the request.
 */
import type { IncomingMessage } from 'node:http';
import type { RandomSource } from '../clock.ts';

export const REQUEST_ID_HEADER = 'x-request-id';

const SANE_REQUEST_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** A Fastify `genReqId`: the client's sane `X-Request-Id`, else `<prefix>-<counter, base 36>`. */
export function requestIdGenerator(random: RandomSource): (request: IncomingMessage) => string {
  const prefix = Math.floor(random.next() * 36 ** 8)
    .toString(36)
    .padStart(8, '0');
  let counter = 0;
  return (request) => {
    const incoming = request.headers[REQUEST_ID_HEADER];
    if (typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming)) return incoming;
    counter++;
    return `${prefix}-${counter.toString(36)}`;
  };
}
