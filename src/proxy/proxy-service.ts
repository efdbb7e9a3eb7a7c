/**
 * The durable proxy (the Proxy Protocol v0.1; README "Durable proxy"): create (upstream request,
 * streams, background pipe), abort, delete, what readers learn (upstream content type, outcome),
 * the concurrency bounds, and the restart rule (./proxy-streams.ts). The HTTP side is
 * src/http/routes/proxy*.ts.
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.ts';
import { PROXY_ERROR_BODY_BYTES_MAX, PROXY_OUTCOMES_CACHED_MAX, PROXY_UPSTREAMS_RETRY_AFTER_SECONDS } from '../config/limits.ts';
import { CairnError } from '../protocol/error-table.ts';
import { ServiceUnavailableError, TooManyRequestsError } from '../protocol/errors.ts';
import type { ReadPath } from '../read-path/read-path.ts';
import type { StreamRegistry } from '../stream/registry.ts';
import type { StreamState } from '../stream/stream-state.ts';
import { RedirectNotAllowedError } from './errors.ts';
import { appendRetrying, pipeBody } from './pipe.ts';
import { BODY_CONTENT_TYPE, bodyPath, idOfBodyPath, idOfMetaPath, metaPath, type ProxyInfo, type ProxyOutcome } from './proxy-streams.ts';
import { readTruncated, type UpstreamClient, type UpstreamRequest, type UpstreamResponse } from './upstream.ts';

export interface ProxyServiceOptions {
  registry: StreamRegistry;
  reads: ReadPath;
  clock: Clock;
  upstream: UpstreamClient;
  /** Upstream requests in flight, all callers (`--proxy-upstreams-max`); 503 above. */
  upstreamsMax: number;
  /** Upstream requests in flight per caller (`--proxy-upstreams-per-client-max`); 429 above. */
  upstreamsPerClientMax: number;
  /**
   * Lifetime of the streams (`--proxy-url-expiry-seconds`): both expire together, at a fixed time
   * (`Stream-Expires-At`, not a sliding TTL), with the capability URL.
   */
  streamLifetimeSeconds: number;
  /** Hears of every pipe's end (with its outcome) and of streams closed as interrupted at start; for logging. */
  onEvent?: (event: { kind: 'pipe-ended'; id: string; outcome: ProxyOutcome | 'deleted'; upstreamBytes: number } | { kind: 'interrupted'; id: string }) => void;
}

/** What a create produced. */
export type CreateResult =
  | { kind: 'created'; id: string; upstreamContentType: string }
  /** The upstream answered 4xx/5xx: no stream; its status, type and (truncated) body for the 502. */
  | { kind: 'upstream-error'; status: number; contentType: string | undefined; body: Buffer };

interface ActivePipe {
  response: UpstreamResponse;
  upstreamContentType: string;
  /** Resolves when the pipe has written its outcome and closed its streams. */
  done: Promise<void>;
  deleting: boolean;
}

export class ProxyService {
  readonly #o: ProxyServiceOptions;
  readonly #active = new Map<string, ActivePipe>();
  readonly #perClient = new Map<string, number>();
  readonly #infos = new LRUCache<string, ProxyInfo>({ max: PROXY_OUTCOMES_CACHED_MAX });
  #inFlight = 0;
  #closing = false;

  constructor(options: ProxyServiceOptions) {
    this.#o = options;
  }

  /** Upstream requests in flight now (metrics, tests). */
  get upstreamsInFlight(): number {
    return this.#inFlight;
  }

  /**
   * Sends the upstream request; on 2xx creates the streams and starts the pipe in the background.
   * @param clientKey the caller's key for the per-caller bound (token, else IP).
   * @throws TooManyRequestsError (429), ServiceUnavailableError (503) past the concurrency bounds;
   *   the upstream client's errors (403, 502, 504); RedirectNotAllowedError (400) on 3xx; the
   *   registry's errors when the streams cannot be created (the upstream request is then cancelled).
   */
  async create(upstreamRequest: UpstreamRequest, clientKey: string): Promise<CreateResult> {
    if (this.#closing) throw new ServiceUnavailableError('the server is shutting down; retry against the next process');
    const release = this.#admit(clientKey);
    let response: UpstreamResponse;
    try {
      response = await this.#o.upstream.send(upstreamRequest);
    } catch (error) {
      release();
      throw error;
    }
    if (response.status < 200 || response.status >= 300) {
      try {
        if (response.status >= 300 && response.status < 400) throw new RedirectNotAllowedError(response.status);
        return { kind: 'upstream-error', status: response.status, contentType: response.contentType, body: await readTruncated(response.body, PROXY_ERROR_BODY_BYTES_MAX) };
      } finally {
        response.body.destroy();
        response.close();
        release();
      }
    }
    const id = randomUUID();
    const upstreamContentType = response.contentType ?? 'application/octet-stream';
    const contentType = BODY_CONTENT_TYPE;
    const { registry, streamLifetimeSeconds, clock } = this.#o;
    try {
      const base = { ttlSeconds: undefined, expiresAtMs: clock.nowMs() + streamLifetimeSeconds * 1000, closed: false };
      await registry.create({ ...base, path: metaPath(id), contentType: 'application/json', body: Buffer.from(JSON.stringify([{ upstreamContentType }])) });
      await registry.create({ ...base, path: bodyPath(id), contentType, body: Buffer.alloc(0) });
    } catch (error) {
      response.abort('aborted');
      response.close();
      release();
      throw error;
    }
    const active: ActivePipe = { response, upstreamContentType, deleting: false, done: Promise.resolve() };
    active.done = this.#pipe(id, contentType, active).finally(() => {
      this.#active.delete(id);
      response.close();
      release();
    });
    this.#active.set(id, active);
    return { kind: 'created', id, upstreamContentType };
  }

  async #pipe(id: string, contentType: string, active: ActivePipe): Promise<void> {
    const { registry, clock } = this.#o;
    const end = await pipeBody(registry, clock, bodyPath(id), contentType, active.response);
    let outcome = end.outcome;
    if (active.deleting) outcome = 'deleted';
    if (outcome !== 'deleted') {
      try {
        await this.#finish(id, contentType, outcome, end.upstreamBytes);
      } catch {
        // The streams are gone or storage is down: the next start closes them (`interrupted`).
        // Nobody awaits a pipe's failure (abort and delete only wait for its end), so it ends here.
      }
    }
    this.#o.onEvent?.({ kind: 'pipe-ended', id, outcome, upstreamBytes: end.upstreamBytes });
  }

  /** Records the outcome in the meta stream and closes it, then closes the body stream. */
  async #finish(id: string, contentType: string, outcome: ProxyOutcome, upstreamBytes: number | undefined): Promise<void> {
    const { registry, clock } = this.#o;
    const record = Buffer.from(JSON.stringify(upstreamBytes === undefined ? { outcome } : { outcome, upstreamBytes }));
    const meta = this.#lookup(metaPath(id));
    if (meta !== undefined && !meta.closed) await appendRetrying(registry, clock, metaPath(id), 'application/json', record, true);
    const cached = this.#infos.get(id);
    if (cached !== undefined) this.#infos.set(id, { ...cached, outcome });
    if (this.#lookup(bodyPath(id)) !== undefined) await appendRetrying(registry, clock, bodyPath(id), contentType, Buffer.alloc(0), true);
  }

  /**
   * Aborts the upstream request of `id` (§4.3) and resolves once the bytes received are written
   * and the stream is closed (outcome `aborted`). Idempotent: a finished or unknown pipe is a no-op.
   */
  async abort(id: string): Promise<void> {
    const active = this.#active.get(id);
    if (active === undefined) return;
    active.response.abort('aborted');
    await active.done;
  }

  /** Aborts any pipe of `id`, then deletes its streams (§4.5). Idempotent. @throws the registry's errors but not-found. */
  async delete(id: string): Promise<void> {
    const active = this.#active.get(id);
    if (active !== undefined) {
      active.deleting = true;
      active.response.abort('aborted');
      await active.done;
    }
    this.#infos.delete(id);
    for (const path of [bodyPath(id), metaPath(id)]) {
      try {
        await this.#o.registry.delete(path);
      } catch (error) {
        if (!(error instanceof CairnError) || (error.code !== 'STREAM_NOT_FOUND' && error.code !== 'GONE')) throw error;
      }
    }
  }

  /** The upstream content type and (once ended) outcome of `id`; undefined when it has no meta stream. */
  async info(id: string): Promise<ProxyInfo | undefined> {
    const cached = this.#infos.get(id);
    if (cached?.outcome !== undefined) return cached;
    const active = this.#active.get(id);
    if (active !== undefined) return { upstreamContentType: active.upstreamContentType };
    const meta = this.#lookup(metaPath(id));
    if (meta === undefined) return undefined;
    const { body } = await this.#o.reads.read(meta, this.#o.registry.earliestPosition(meta));
    const info: ProxyInfo = { upstreamContentType: 'application/octet-stream' };
    for (const message of JSON.parse(Buffer.concat(body).toString('utf8')) as Record<string, unknown>[]) {
      if (typeof message.upstreamContentType === 'string') info.upstreamContentType = message.upstreamContentType;
      if (typeof message.outcome === 'string') info.outcome = message.outcome as ProxyOutcome;
    }
    if (info.outcome !== undefined) this.#infos.set(id, info);
    return info;
  }

  /**
   * Closes every proxy stream a previous process left open (crash, kill -9): outcome
   * `interrupted`; nothing is requested upstream again. Call once after recovery, before serving.
   * @returns the ids closed.
   */
  async closeInterrupted(): Promise<string[]> {
    const ids = new Set<string>();
    for (const stream of this.#o.registry.allStreams()) {
      const id = idOfBodyPath(stream.path) ?? idOfMetaPath(stream.path);
      if (id !== undefined && !stream.closed && !stream.softDeleted && this.#o.registry.isCurrent(stream) && !this.#active.has(id)) ids.add(id);
    }
    for (const id of ids) {
      const body = this.#lookup(bodyPath(id));
      await this.#finish(id, body?.contentType ?? 'application/octet-stream', 'interrupted', undefined);
      this.#o.onEvent?.({ kind: 'interrupted', id });
    }
    return [...ids];
  }

  /** The live stream at `path`, or undefined (absent, expired, deleted). */
  #lookup(path: string): StreamState | undefined {
    try {
      return this.#o.registry.get(path, { touch: false });
    } catch {
      return undefined;
    }
  }

  /** Takes a slot of the concurrency bounds; the returned function gives it back (once). */
  #admit(clientKey: string): () => void {
    const { upstreamsMax, upstreamsPerClientMax } = this.#o;
    const mine = this.#perClient.get(clientKey) ?? 0;
    if (mine >= upstreamsPerClientMax) {
      throw new TooManyRequestsError(`this caller has ${mine} upstream requests in flight, the most allowed; retry later`, PROXY_UPSTREAMS_RETRY_AFTER_SECONDS);
    }
    if (this.#inFlight >= upstreamsMax) {
      throw new ServiceUnavailableError(`the proxy runs its maximum of ${upstreamsMax} upstream requests; retry later`, PROXY_UPSTREAMS_RETRY_AFTER_SECONDS);
    }
    this.#inFlight++;
    this.#perClient.set(clientKey, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
      const left = (this.#perClient.get(clientKey) ?? 1) - 1;
      if (left === 0) this.#perClient.delete(clientKey);
      else this.#perClient.set(clientKey, left);
    };
  }

  /**
   * Graceful shutdown: cancels every upstream request, writes what each received and closes its
   * streams with outcome `interrupted` (the WAL must still be open). Resolves when all are done.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const pipes = [...this.#active.values()];
    for (const active of pipes) active.response.abort('interrupted');
    await Promise.allSettled(pipes.map((active) => active.done));
  }
}
