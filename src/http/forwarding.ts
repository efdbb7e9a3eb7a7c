/**
 * Request forwarding in cluster mode (DESIGN.md "Scale-out", "Routing"; docs/cluster.md): any
 * node accepts any stream request, and one for a slot another node owns is sent on to that owner
 * before its body is read, over pooled keep-alive HTTP (undici), the body streaming both ways.
 * Every protocol header, status and SSE event passes through unchanged; hop-by-hop headers are
 * dropped; the response gains `Cairn-Node` (the node that answered). A request refused because
 * the slot moved (503 `Cairn-Slot-Owner`) or whose owner could not be reached is retried once
 * against the owner the slot table names then, when its body was small enough to keep
 * (FORWARD_RETRY_BODY_BYTES_MAX); otherwise the 503 goes to the client with its `Retry-After`.
 * A request that arrives already forwarded is never forwarded again: if this node does not own
 * its slot, the fence answers 503 (no loops while maps disagree).
 * Between the workers of `--workers`, appends take the peer channel instead (./peer-appends.ts):
 * one MessagePack call on a unix-domain socket, answered by the owner's append logic.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { CLUSTER_TAKEOVER_WAIT_MS, FORWARD_CONNECTIONS_PER_NODE_MAX, FORWARD_HOPS_MAX, FORWARD_RETRY_BODY_BYTES_MAX, FORWARD_RETRY_DELAY_MS } from '../config/limits.ts';
import type { Clock } from '../clock.ts';
import { ClusterUnavailableError, SlotNotOwnedError, slotRecoveringError } from '../cluster/errors.ts';
import type { SlotRoute } from '../cluster/slot-table.ts';
import type { HttpContext } from './context.ts';
import { STREAM_PREFIX, streamPathOf, streamPathOfHeader } from '../protocol/stream-path.ts';
import { SUBSCRIPTION_ROOT } from './routes/subscriptions.ts';
import { PeerChannelClient } from './peer-channel.ts';
import { peerAppendCall, peerAppendOutcome, type PeerAppendOutcome } from './peer-appends.ts';

/** Header naming the node that answered a stream request (every response in cluster mode). */
export const NODE_HEADER = 'cairn-node';
/** Header of a forwarded request: the ids of the nodes that forwarded it, in order, comma-separated. */
export const FORWARDED_BY_HEADER = 'cairn-forwarded-by';
/** Header of a 503 SLOT_NOT_OWNED: the owner the refusing node knows of. */
export const SLOT_OWNER_HEADER = 'cairn-slot-owner';
/** Header of a forwarded fork create that its path's hash owner sent on toward the fork's source. */
const ROUTE_HEADER = 'cairn-route';
const ROUTE_BY_FORK_SOURCE = 'fork-source';
/** Header of a fork create's answer in cluster mode: the host path (URI-encoded) the fork lives under. */
export const HOST_PATH_HEADER = 'cairn-host-path';

/** Connection-level headers (RFC 9110 §7.6.1) and HTTP/2 pseudo-headers never pass a hop. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** What forwarding needs of the cluster: this node's id and where a path's slot lives. */
export interface ClusterRouter {
  readonly nodeId: string;
  route(path: string): SlotRoute;
  /** The dead node whose log an owned slot's streams are still being recovered from (diskless takeover), or undefined. */
  recovering?(slot: number): string | undefined;
  /** Undefined when the slot is not recovering; else true once that recovery ends, false after `timeoutMs`. */
  whenRecovered?(slot: number, timeoutMs: number): Promise<boolean> | undefined;
}

/**
 * Where streams live beyond their path's slot (docs/cluster.md "Forks"): a fork lives in the slot
 * of its chain's root path, so a node asks its registry and, for paths of its own slots, the lazy
 * lookup.
 */
export interface StreamHosting {
  /** The host path of the stream held here at `path`; undefined when not held. */
  heldHostPath(path: string): string | undefined;
  /** The lazy lookup: the host path of a fork stored with its host elsewhere, else undefined. @throws object-store errors. */
  find(path: string): Promise<string | undefined>;
  /** `path` is a fork living under `hostPath` (a host's answer said so). */
  learnHost(path: string, hostPath: string): void;
  /** Drops what is cached of `path` (its host said it holds no such stream). */
  forget(path: string): void;
}

/** Forwarded requests by outcome, for metrics. */
export interface ForwardCounts {
  /** Answered by the owner (any status), passed to the client. */
  answered: number;
  /** Sent a second time (to the new owner, or to this node's own route) after the first owner refused (slot moved) or did not answer. */
  retried: number;
  /** Answered 503 here: no owner could be reached. */
  failed: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Cluster mode: a catch-up read answered here from a read-only view of another node's stream (./sealed-views.ts). */
    cairnView: HttpContext | undefined;
  }
}

export interface ForwardingOptions {
  router: ClusterRouter;
  /** The pool of connections to peers (`peerAgent()`; the cluster listing shares it); closed by `close()`. */
  agent: Agent;
  hosting: StreamHosting;
  /**
   * The context to answer a catch-up read (GET without `live`) of another node's stream here,
   * from its sealed history; undefined: forward it. Absent: every such read is forwarded.
   */
  sealedView?: (path: string, offsetText: string | undefined) => Promise<HttpContext | undefined>;
  clock: Clock;
  streamPathBytesMax: number;
  /**
   * Appends (POST with a body of at most `appendBytesMax`, kept whole) to an owner that has a peer
   * socket go over the peer channel (./peer-appends.ts) instead of HTTP; absent: all over HTTP.
   */
  peerAppends?: { appendBytesMax: number };
  /** Longest wait for an owner's response head, in ms (the long-poll timeout + FORWARD_ANSWER_MARGIN_MS). */
  answerTimeoutMs: number;
}

/** The pooled keep-alive HTTP client a node reaches its peers with: forwarding, and the cluster listing (./cluster-listing.ts). */
export function peerAgent(): Agent {
  return new Agent({ connections: FORWARD_CONNECTIONS_PER_NODE_MAX, pipelining: 1 });
}

/** A request's destination: this node, or a peer. */
export type Destination = { local: true } | { local: false; route: SlotRoute; byForkSource: boolean };
const LOCAL: Destination = { local: true };

/**
 * Installs forwarding as an `onRequest` hook of stream requests, and `Cairn-Node` on every
 * response. @returns the counts by outcome, and a function closing the connection pools (server shutdown).
 */
export function installForwarding(app: FastifyInstance, options: ForwardingOptions): { counts: ForwardCounts; close(): Promise<void> } {
  const { router, hosting } = options;
  const counts: ForwardCounts = { answered: 0, retried: 0, failed: 0 };
  app.decorateRequest('cairnView', undefined);
  const { agent } = options;
  const peers = options.peerAppends === undefined ? undefined : new PeerChannelClient();
  app.addHook('onRequest', async (request, reply) => {
    reply.header(NODE_HEADER, router.nodeId);
    const path = forwardablePath(request, options.streamPathBytesMax);
    if (path === undefined) return undefined;
    const destination = await destinationOf(options, request, path);
    if (destination.local) return undefined;
    if (options.sealedView !== undefined && request.method === 'GET') {
      const query = request.query as Record<string, unknown>;
      const offset = query['offset'];
      if (query['live'] === undefined && (offset === undefined || typeof offset === 'string')) {
        request.cairnView = await options.sealedView(path, offset);
        if (request.cairnView !== undefined) return undefined;
      }
    }
    // Returning the reply tells Fastify the hook answered: the local route does not run.
    try {
      return (await forward({ agent, peers }, options, request, reply, path, destination, counts)) ? reply : undefined;
    } catch (error) {
      counts.failed++;
      throw error;
    }
  });
  // A fork create answered here tells the forwarding nodes where the fork lives.
  // (A callback hook, not an async one: it runs on every response, and does nothing on most.)
  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.method === 'PUT' && request.headers['stream-forked-from'] !== undefined && reply.statusCode < 300) {
      const path = forwardablePath(request, options.streamPathBytesMax);
      const hostPath = path === undefined ? undefined : hosting.heldHostPath(path);
      if (hostPath !== undefined && reply.getHeader(HOST_PATH_HEADER) === undefined) reply.header(HOST_PATH_HEADER, encodeURIComponent(hostPath));
    }
    done(null, payload);
  });
  return {
    counts,
    close: () => {
      peers?.close();
      return agent.close();
    },
  };
}

/** The stream path a request acts on, or undefined for requests every node answers itself. */
function forwardablePath(request: FastifyRequest, streamPathBytesMax: number): string | undefined {
  if (!request.url.startsWith(STREAM_PREFIX) || request.url.startsWith(SUBSCRIPTION_ROOT)) return undefined;
  try {
    return streamPathOf(request.url, streamPathBytesMax);
  } catch {
    return undefined; // malformed: the route answers 400 here
  }
}

/** Where the stream at `path` lives: held here, else its path's slot owner, which alone looks it up. */
export async function locate(options: Pick<ForwardingOptions, 'router' | 'hosting'>, path: string): Promise<Destination> {
  const { router, hosting } = options;
  const held = hosting.heldHostPath(path);
  // A slot whose dead owner's log is being replayed here (diskless takeover): its requests wait
  // for it (bounded), and nothing is looked up before (the store lacks the unsealed tail).
  const own = router.route(held ?? path);
  const recovering = own.self ? router.whenRecovered?.(own.slot, CLUSTER_TAKEOVER_WAIT_MS) : undefined;
  if (recovering !== undefined) {
    if (!(await recovering)) {
      throw slotRecoveringError(own.slot, router.recovering?.(own.slot));
    }
    return locate(options, path);
  }
  if (held !== undefined && router.route(held).self) return LOCAL;
  const byHash = router.route(path);
  if (!byHash.self) return { local: false, route: byHash, byForkSource: false };
  const hostPath = await hosting.find(path);
  if (hostPath === undefined) return LOCAL;
  const host = router.route(hostPath);
  return host.self ? LOCAL : { local: false, route: host, byForkSource: false };
}

/**
 * Where a request goes. A fork create goes where its path's slot owner finds no stream at the
 * path: to wherever its source lives (forks live with their sources).
 */
async function destinationOf(options: ForwardingOptions, request: FastifyRequest, path: string): Promise<Destination> {
  const source = request.method === 'PUT' ? request.headers['stream-forked-from'] : undefined;
  let sourcePath: string | undefined;
  try {
    sourcePath = typeof source === 'string' ? streamPathOfHeader(source, options.streamPathBytesMax) : undefined;
  } catch {
    sourcePath = undefined; // malformed: the route answers 400
  }
  if (sourcePath === undefined) return locate(options, path);
  if (request.headers[ROUTE_HEADER] !== ROUTE_BY_FORK_SOURCE) {
    const existing = await locate(options, path);
    if (!existing.local || options.hosting.heldHostPath(path) !== undefined) return existing;
  }
  const atSource = await locate(options, sourcePath);
  return atSource.local ? LOCAL : { ...atSource, byForkSource: true };
}

/** What forwarding sends with: the HTTP pool, and the peer channel when appends may take it. */
interface Senders {
  agent: Dispatcher;
  peers: PeerChannelClient | undefined;
}

/** An owner's answer: an HTTP response, or a peer append's outcome. */
type OwnerAnswer = { http: Dispatcher.ResponseData; peer?: undefined } | { http?: undefined; peer: PeerAppendOutcome & { kind: 'answered' | 'failed' } };

/** @returns true when the request was answered (forwarded), false when it goes on to this node's route. */
async function forward(
  senders: Senders,
  options: ForwardingOptions,
  request: FastifyRequest,
  reply: FastifyReply,
  path: string,
  first: Destination & { local: false },
  counts: ForwardCounts,
): Promise<boolean> {
  const retryBody = await retainableBody(request);
  const byPeerChannel = senders.peers !== undefined && peerAppendable(request, retryBody, options.peerAppends?.appendBytesMax ?? 0);
  // Only a client gone before its answer ends aborts a forwarded HTTP request (an abort after a
  // finished response would build an error for nothing: measurable on every forwarded request).
  // A call on the peer channel cannot be taken back: the owner answers it whatever the client does
  // (and its rare HTTP fallback, a small POST the owner answers at once, goes without one too).
  const abort = new AbortController();
  if (!byPeerChannel) {
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
  }
  let destination = first;
  for (let attempt = 1; ; attempt++) {
    const { route } = destination;
    const retryable = retryBody !== undefined && attempt === 1;
    const seen = forwardedBy(request);
    let answer: OwnerAnswer | undefined;
    let failure: unknown;
    if (seen.length >= FORWARD_HOPS_MAX) {
      // Nodes' maps or caches disagree: the first node retries once, then the client.
      throw new SlotNotOwnedError(route.slot, route.owner.nodeId, `forwarded ${seen.length} times (${[...seen, options.router.nodeId].join(' → ')}) without reaching the stream`);
    } else if (route.url === undefined) {
      failure = new ClusterUnavailableError(`slot ${route.slot}: its owner ${route.owner.nodeId || '(none)'} is not live`);
    } else {
      try {
        if (byPeerChannel && retryBody !== undefined && route.peerSocketPath !== undefined && !destination.byForkSource) {
          const outcome = peerAppendOutcome(await (senders.peers as PeerChannelClient).call(route.peerSocketPath, peerAppendCall(request.id, request.url, request.headers, retryBody)));
          if (outcome.kind !== 'elsewhere') answer = { peer: outcome };
        }
        answer ??= {
          http: await senders.agent.request({
            origin: route.url,
            path: request.url,
            method: request.method as Dispatcher.HttpMethod,
            headers: forwardedHeaders(request, options.router.nodeId, destination.byForkSource),
            body: retryBody ?? (hasBody(request) ? (request.raw as unknown as Readable) : undefined),
            signal: abort.signal,
            // Live reads wait upstream as long as they would here (the owner bounds them), and no
            // longer: a paused or unreachable owner answers nothing. SSE bodies run for minutes.
            headersTimeout: options.answerTimeoutMs,
            bodyTimeout: 0,
          }),
        };
      } catch (error) {
        failure = error;
      }
    }
    const unanswered = (failure as { code?: unknown } | undefined)?.code === 'UND_ERR_HEADERS_TIMEOUT';
    if ((failure !== undefined || (answer !== undefined && slotMoved(answer))) && retryable && !unanswered && !abort.signal.aborted) {
      if (answer?.http !== undefined) discard(answer.http.body);
      options.hosting.forget(path);
      await options.clock.sleep(FORWARD_RETRY_DELAY_MS);
      const next = await destinationOf(options, request, path);
      counts.retried++;
      if (next.local) {
        // The stream turned out to live here: a request without a body goes on to this node's
        // route; one whose body was read here is answered 503 (its client retries, to this node).
        if (retryBody.length === 0) return false;
        throw new SlotNotOwnedError(route.slot, options.router.nodeId, 'the stream turned out to live on this node while the request was forwarded');
      }
      destination = next;
      continue;
    }
    if (answer === undefined) {
      if (failure instanceof ClusterUnavailableError) throw failure;
      if (unanswered) {
        throw new ClusterUnavailableError(`slot ${route.slot}: owner ${route.owner.nodeId} at ${route.url ?? '?'} did not answer within ${options.answerTimeoutMs} ms; the request may or may not have taken effect`, { cause: failure });
      }
      throw new ClusterUnavailableError(`slot ${route.slot}: owner ${route.owner.nodeId} at ${route.url ?? '?'} did not answer: ${(failure as Error).message}`, { cause: failure });
    }
    counts.answered++;
    if (answer.peer !== undefined) {
      sendPeerAnswer(reply, answer.peer);
      return true;
    }
    const hostPath = answer.http.headers[HOST_PATH_HEADER];
    if (typeof hostPath === 'string' && answer.http.statusCode < 300) options.hosting.learnHost(path, decodeURIComponent(hostPath));
    sendAnswer(reply, answer.http, request.method);
    return true;
  }
}

/**
 * An append the owner's route would get as it is: a POST whose body was read whole here, within
 * the body limit (413 comes from the owner's HTTP server), whose Content-Type, if any, Fastify
 * parses (its 415 for a malformed one comes from the owner's HTTP server too).
 */
function peerAppendable(request: FastifyRequest, body: Buffer | undefined, appendBytesMax: number): body is Buffer {
  return request.method === 'POST' && body !== undefined && body.length <= appendBytesMax && (request.headers['content-type'] === undefined || request.mediaType !== undefined);
}

/** The owner refused because the slot is not (or no longer) its: a 503 naming an owner. */
function slotMoved(answer: OwnerAnswer): boolean {
  if (answer.peer !== undefined) return answer.peer.kind === 'failed' && (answer.peer.error as { code?: unknown }).code === 'SLOT_NOT_OWNED';
  return answer.http.statusCode === 503 && answer.http.headers[SLOT_OWNER_HEADER] !== undefined;
}

/**
 * Answers the client as the owner's append route did: its status and headers, or its error through
 * this node's error handler (same table, same bytes); `Cairn-Node` names the owner.
 */
function sendPeerAnswer(reply: FastifyReply, outcome: PeerAppendOutcome & { kind: 'answered' | 'failed' }): void {
  reply.header(NODE_HEADER, outcome.nodeId);
  if (outcome.kind === 'failed') {
    void reply.send(outcome.error);
    return;
  }
  void reply.headers(outcome.headers).code(outcome.status).send();
}

/** Reads and drops a response body not passed on (cheaper than destroying it, which builds an error). */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.dump().catch(() => undefined);
}

/** The nodes a request was forwarded by, from its header. */
function forwardedBy(request: FastifyRequest): string[] {
  const value = request.headers[FORWARDED_BY_HEADER];
  return typeof value === 'string' ? value.split(',').map((id) => id.trim()) : [];
}

/** Copies the owner's answer to the client: status, end-to-end headers, body streamed. */
function sendAnswer(reply: FastifyReply, answer: Dispatcher.ResponseData, method: string): void {
  reply.code(answer.statusCode);
  for (const [name, value] of Object.entries(answer.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name === 'content-length' && method === 'HEAD') continue;
    reply.header(name, value);
  }
  if (method === 'HEAD' || answer.statusCode === 204 || answer.statusCode === 304) {
    discard(answer.body);
    if (method === 'HEAD' && answer.headers['content-length'] !== undefined) reply.header('content-length', answer.headers['content-length']);
    void reply.send();
    return;
  }
  void reply.send(answer.body);
}

/** The client's end-to-end headers, plus who forwarded it and for whom. */
function forwardedHeaders(request: FastifyRequest, nodeId: string, byForkSource: boolean): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(request.headers as IncomingHttpHeaders)) {
    if (value === undefined || name.startsWith(':') || HOP_BY_HOP.has(name)) continue;
    headers[name] = value;
  }
  headers[FORWARDED_BY_HEADER] = [...forwardedBy(request), nodeId].join(',');
  if (byForkSource) headers[ROUTE_HEADER] = ROUTE_BY_FORK_SOURCE;
  const prior = request.headers['x-forwarded-for'];
  headers['x-forwarded-for'] = prior === undefined ? request.ip : `${String(prior)}, ${request.ip}`;
  return headers;
}

function hasBody(request: FastifyRequest): boolean {
  return request.headers['content-length'] !== undefined ? request.headers['content-length'] !== '0' : request.headers['transfer-encoding'] !== undefined;
}

/**
 * The body, read whole when it is small enough to send twice (a retry after a slot move); undefined
 * for a larger or unsized body, which streams instead (and is not retried).
 */
async function retainableBody(request: FastifyRequest): Promise<Buffer | undefined> {
  if (!hasBody(request)) return Buffer.alloc(0);
  const length = Number(request.headers['content-length']);
  if (!Number.isSafeInteger(length) || length > FORWARD_RETRY_BODY_BYTES_MAX) return undefined;
  // Events, not `for await`: the async iterator costs a promise per chunk and destroys the request at its end.
  const raw = request.raw as unknown as Readable;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    raw.on('data', (chunk: Buffer) => chunks.push(chunk));
    raw.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    raw.once('error', reject);
    raw.once('close', () => {
      if (!raw.readableEnded) reject(new Error('the client closed the request before its body ended'));
    });
  });
}
