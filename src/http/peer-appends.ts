/**
 * Appends between the workers of `cairn serve --workers` (DESIGN.md "One machine, many cores"):
 * a POST that reaches a worker not owning its stream's slot goes to the owner as one call on the
 * peer channel (./peer-channel.ts) instead of a forwarded HTTP request, and the owner runs the
 * append route's own logic (routes/append.ts `appendAnswer`) on it: the lazy lookup, then the
 * registry's append with its write fence asked before logging and again before acknowledging.
 * The answer carries the route's status and headers, or the error it raised (code, message,
 * headers, details), which the receiving worker answers through its own error handler: the client
 * gets the bytes the owner's HTTP route would have sent. Whatever the owner cannot answer as its
 * own local append (the stream lives elsewhere, a fork hosted by a third worker, the owner shutting
 * down) it answers `elsewhere`, and the request is forwarded over HTTP as before (nothing was done).
 */
import { CairnError, type ErrorCode } from '../protocol/error-table.ts';
import { streamPathOf } from '../protocol/stream-path.ts';
import { SlotNotOwnedError } from '../cluster/errors.ts';
import { appendAnswer, APPEND_REQUEST_HEADERS, type AppendRequestHeaders } from './routes/append.ts';
import type { HttpContext } from './context.ts';

/** A forwarded append: the receiving worker's request id (for logs), the URL, the headers an append reads, the body. */
export type PeerAppendCall = [requestId: string, url: string, headers: AppendRequestHeaders, body: Buffer];

const ANSWERED = 0;
const FAILED = 1;
const ELSEWHERE = 2;
const CAIRN_ERROR = 0;
const OTHER_ERROR = 1;

/** The owner's answer to a forwarded append. */
export type PeerAppendAnswer =
  /** The route's answer: status (no body) and headers, from the owner `nodeId`. */
  | [kind: typeof ANSWERED, nodeId: string, status: number, headers: Record<string, string>]
  /** A typed error of the error table, as the route raised it. */
  | [kind: typeof FAILED, nodeId: string, error: typeof CAIRN_ERROR, code: string, message: string, headers: Record<string, string>, details: Record<string, unknown> | null]
  /** Anything else thrown (a bug, logged by the owner): its 4xx status if it had one, else 500. */
  | [kind: typeof FAILED, nodeId: string, error: typeof OTHER_ERROR, statusCode: number, message: string]
  /** Not this owner's own local append: forward it over HTTP instead. */
  | [kind: typeof ELSEWHERE];

/** The call for a forwarded append: only the headers an append reads travel. */
export function peerAppendCall(requestId: string, url: string, headers: Record<string, string | string[] | undefined>, body: Buffer): PeerAppendCall {
  const picked: AppendRequestHeaders = {};
  for (const name of APPEND_REQUEST_HEADERS) {
    const value = headers[name];
    if (value !== undefined) picked[name] = value;
  }
  return [requestId, url, picked, body];
}

/** What the receiving worker does with an answer. */
export type PeerAppendOutcome =
  | { kind: 'answered'; nodeId: string; status: number; headers: Record<string, string> }
  | { kind: 'failed'; nodeId: string; error: Error }
  | { kind: 'elsewhere' };

/** Reads the owner's answer. @throws Error on an answer of no known shape (a bug). */
export function peerAppendOutcome(answer: unknown): PeerAppendOutcome {
  const fields = answer as PeerAppendAnswer;
  switch (fields[0]) {
    case ANSWERED:
      return { kind: 'answered', nodeId: fields[1], status: fields[2], headers: fields[3] };
    case FAILED:
      if (fields[2] === CAIRN_ERROR) {
        const [, nodeId, , code, message, headers, details] = fields;
        return { kind: 'failed', nodeId, error: new CairnError(code as ErrorCode, message, { headers, ...(details === null ? {} : { details }) }) };
      } else {
        const [, nodeId, , statusCode, message] = fields;
        return { kind: 'failed', nodeId, error: Object.assign(new Error(message), { statusCode }) };
      }
    case ELSEWHERE:
      return { kind: 'elsewhere' };
    default:
      throw new Error(`peer append answer of unknown kind ${String(fields[0])}`);
  }
}

export interface PeerAppendHandlerOptions {
  nodeId: string;
  context: HttpContext;
  /** Where the stream at `path` lives now (forwarding.ts `locate`): `local` when this node holds it or its slot's owner finds it here. @throws object-store errors. */
  isLocal(path: string): Promise<boolean>;
  /** The lazy lookup of the append route (stream-lookup-hook.ts): a host path when the stream is served by another node now. @throws object-store errors. */
  find(path: string): Promise<string | undefined>;
  /** True once the node is shutting down: new calls go over HTTP, which answers as a closing server does. */
  closing(): boolean;
  /** Logs an error that is a bug (not a typed error), as the error handler would. */
  logUnhandled(error: unknown, requestId: string, url: string): void;
}

/** The owner's side: answers a forwarded append as its POST route would. Never rejects. */
export function peerAppendHandler(options: PeerAppendHandlerOptions): (payload: unknown) => Promise<PeerAppendAnswer> {
  const { nodeId, context } = options;
  return async (payload) => {
    const [requestId, url, headers, body] = payload as PeerAppendCall;
    if (options.closing()) return [ELSEWHERE];
    try {
      const path = streamPathOf(url, context.limits.streamPathBytesMax);
      if (!(await options.isLocal(path))) return [ELSEWHERE];
      if ((await options.find(path)) !== undefined) throw new SlotNotOwnedError(undefined, undefined, `stream ${path} is served by another node now`);
      const answer = await appendAnswer(context, path, headers, body);
      return [ANSWERED, nodeId, answer.status, answer.headers];
    } catch (error) {
      if (error instanceof CairnError) return [FAILED, nodeId, CAIRN_ERROR, error.code, error.message, { ...error.headers }, error.details === undefined ? null : { ...error.details }];
      const statusCode = (error as { statusCode?: unknown }).statusCode;
      if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) return [FAILED, nodeId, OTHER_ERROR, statusCode, (error as Error).message];
      options.logUnhandled(error, requestId, url);
      return [FAILED, nodeId, OTHER_ERROR, 500, 'internal server error'];
    }
  };
}
