/**
 * The reserved subscription APIs under `/v1/stream/__ds` (PROTOCOL.md §6–7), registered before
 * the stream routes' wildcard so no control path is taken for a stream: the signing keys
 * (`jwks.json`, §6.5), create/re-confirm, read and delete (§6.2–6.3), explicit membership (§6.4),
 * webhook callback (§7.1), pull-wake claim, ack and release (§7.2). Any other path under `__ds`
 * is 404.
 *
 * With auth on, the control operations and claim need a bearer token whose grants give
 * `subscribe` and `read` on every stream the subscription covers (and `write` on a pull-wake
 * wake stream); callback, ack and release need the wake's own token instead (§12.9).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Authenticator } from '../../auth/authenticator.ts';
import { checkGrants, grantsCoverGlob } from '../../auth/grants.ts';
import { BadRequestError, ForbiddenError } from '../../protocol/errors.ts';
import { checkSubscriptionId, parseJsonBody, parseSubscriptionConfig, type SubscriptionConfig } from '../../subscriptions/subscription-config.ts';
import type { Subscription } from '../../subscriptions/subscription-table.ts';
import type { Subscriptions } from '../../subscriptions/subscriptions.ts';

export const SUBSCRIPTION_ROOT = '/v1/stream/__ds';

const ackSchema = z.object({
  wake_id: z.string().min(1).max(200),
  generation: z.number().int().min(0),
  acks: z.array(z.object({ stream: z.string().min(1).max(4096), offset: z.string().min(1).max(64) })).max(10_000).optional(),
  done: z.boolean().optional(),
});
const releaseSchema = z.object({ wake_id: z.string().min(1).max(200), generation: z.number().int().min(0) });
const claimSchema = z.object({ worker: z.string().min(1).max(200) });
const streamsSchema = z.object({ streams: z.array(z.string().min(1).max(4096)).min(1).max(10_000) });

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(parseJsonBody(body as Buffer | undefined));
  if (!result.success) throw new BadRequestError(`invalid request body: ${result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  return result.data;
}

function bearer(request: FastifyRequest): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
  return match?.[1];
}

function originOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export function installSubscriptionRoutes(app: FastifyInstance, subscriptions: Subscriptions, authenticator: Authenticator | undefined): void {
  /** With auth on: the token must cover the subscription's streams. @throws UnauthorizedError, ForbiddenError */
  const authorize = async (request: FastifyRequest, config: SubscriptionConfig, extraStreams: readonly string[] = []): Promise<void> => {
    if (authenticator === undefined) return;
    const { grants } = await authenticator.authenticate(request.headers.authorization);
    const explicit = [...config.streams, ...extraStreams];
    const allowed =
      (config.pattern === null || grantsCoverGlob(grants, config.pattern)) &&
      explicit.every((path) => checkGrants(grants, path, 'subscribe') !== undefined && checkGrants(grants, path, 'read') !== undefined) &&
      (config.wakeStream === null || checkGrants(grants, config.wakeStream, 'write') !== undefined);
    if (!allowed) throw new ForbiddenError('the token does not grant subscribe and read on every stream this subscription covers');
  };
  const id = (request: FastifyRequest): string => checkSubscriptionId((request.params as { id: string }).id);

  const view = (request: FastifyRequest, sub: Subscription) => ({
    id: sub.id,
    subscription_id: sub.id,
    type: sub.config.type,
    pattern: sub.config.pattern,
    streams: subscriptions.links(sub).map(({ path, link_type, acked_offset }) => ({ path, link_type, acked_offset })),
    webhook:
      sub.config.webhookUrl === null
        ? null
        : { url: sub.config.webhookUrl, signing: { alg: 'ed25519', kid: subscriptions.keys.activeKid, jwks_url: `${subscriptions.publicOrigin ?? originOf(request)}${SUBSCRIPTION_ROOT}/jwks.json` } },
    wake_stream: sub.config.wakeStream,
    lease_ttl_ms: sub.config.leaseTtlMs,
    created_at: new Date(sub.createdAtMs).toISOString(),
    status: subscriptions.failing(sub) ? 'failed' : 'active',
    description: sub.config.description,
  });
  const json = (reply: FastifyReply, status: number, body: unknown): void => {
    reply.code(status).header('cache-control', 'no-store').type('application/json').send(body);
  };

  app.get(`${SUBSCRIPTION_ROOT}/jwks.json`, (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300').type('application/jwk-set+json').send(subscriptions.keys.jwks());
  });

  app.put(`${SUBSCRIPTION_ROOT}/subscriptions/:id`, async (request, reply) => {
    const subscriptionId = id(request);
    const config = parseSubscriptionConfig(request.body as Buffer);
    await authorize(request, config);
    const { created, sub } = await subscriptions.put(subscriptionId, config, originOf(request));
    json(reply, created ? 201 : 200, view(request, sub));
  });
  app.get(`${SUBSCRIPTION_ROOT}/subscriptions/:id`, async (request, reply) => {
    const sub = subscriptions.get(id(request));
    await authorize(request, sub.config);
    json(reply, 200, view(request, sub));
  });
  app.delete(`${SUBSCRIPTION_ROOT}/subscriptions/:id`, async (request, reply) => {
    const subscriptionId = id(request);
    try {
      await authorize(request, subscriptions.get(subscriptionId).config);
    } catch (error) {
      if ((error as { code?: string }).code !== 'SUBSCRIPTION_NOT_FOUND') throw error;
    }
    await subscriptions.delete(subscriptionId);
    reply.code(204).send();
  });
  app.post(`${SUBSCRIPTION_ROOT}/subscriptions/:id/streams`, async (request, reply) => {
    const sub = subscriptions.get(id(request));
    const { streams } = parse(streamsSchema, request.body);
    await authorize(request, sub.config, streams);
    await subscriptions.addStreams(sub.id, streams);
    reply.code(204).send();
  });
  app.delete(`${SUBSCRIPTION_ROOT}/subscriptions/:id/streams/*`, async (request, reply) => {
    const sub = subscriptions.get(id(request));
    const raw = (request.params as { '*': string })['*'];
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      throw new BadRequestError('stream path is not valid percent-encoding');
    }
    await authorize(request, sub.config);
    await subscriptions.removeStream(sub.id, path);
    reply.code(204).send();
  });

  app.post(`${SUBSCRIPTION_ROOT}/subscriptions/:id/claim`, async (request, reply) => {
    const sub = subscriptions.get(id(request));
    const { worker } = parse(claimSchema, request.body);
    await authorize(request, sub.config);
    const claimed = await subscriptions.claim(sub.id, worker);
    json(reply, 200, { wake_id: claimed.wake.wakeId, generation: claimed.wake.gen, token: claimed.token, streams: claimed.streams, lease_ttl_ms: claimed.leaseTtlMs });
  });
  const ack = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const body = parse(ackSchema, request.body);
    const { nextWake } = await subscriptions.ack(id(request), bearer(request), {
      wakeId: body.wake_id,
      generation: body.generation,
      acks: body.acks ?? [],
      done: body.done === true,
    });
    json(reply, 200, { ok: true, next_wake: nextWake });
  };
  app.post(`${SUBSCRIPTION_ROOT}/subscriptions/:id/callback`, ack);
  app.post(`${SUBSCRIPTION_ROOT}/subscriptions/:id/ack`, ack);
  app.post(`${SUBSCRIPTION_ROOT}/subscriptions/:id/release`, async (request, reply) => {
    const body = parse(releaseSchema, request.body);
    await subscriptions.release(id(request), bearer(request), body.wake_id, body.generation);
    reply.code(204).send();
  });

  // Everything else under the reserved prefix is no stream and no API.
  app.all(`${SUBSCRIPTION_ROOT}/*`, (_request, reply) => {
    json(reply, 404, { error: { code: 'NOT_FOUND', message: 'no such control API under __ds' } });
  });
  app.all(SUBSCRIPTION_ROOT, (_request, reply) => {
    json(reply, 404, { error: { code: 'NOT_FOUND', message: 'no such control API under __ds' } });
  });
}
