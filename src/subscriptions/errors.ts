/**
 * Failures of the subscription APIs (PROTOCOL.md §6–7). Status and JSON body shape come from the
 * one error table (src/protocol/error-table.ts); `details` adds the fields a code carries.
 */
import { CairnError } from '../protocol/errors.ts';

/** 400 `WEBHOOK_URL_REJECTED`: not https, or a private/loopback/link-local target (§6.2, §12.8). */
export class WebhookUrlRejectedError extends CairnError {
  constructor(message: string) {
    super('WEBHOOK_URL_REJECTED', message);
  }
}

/** 401 `TOKEN_INVALID`: no bearer token, or not the current wake's (§12.9). */
export class TokenInvalidError extends CairnError {
  constructor(message: string) {
    super('TOKEN_INVALID', message);
  }
}

/** 404 `SUBSCRIPTION_NOT_FOUND`. */
export class SubscriptionNotFoundError extends CairnError {
  constructor(id: string) {
    super('SUBSCRIPTION_NOT_FOUND', `subscription not found: ${id}`);
  }
}

/** 409 `SUBSCRIPTION_CONFLICT`: the id exists with another configuration (§6.2). */
export class SubscriptionConflictError extends CairnError {
  constructor(id: string) {
    super('SUBSCRIPTION_CONFLICT', `subscription ${id} exists with a different configuration`);
  }
}

/** 409 `FENCED`: stale generation or wake id, or the lease expired (§7.3). */
export class FencedError extends CairnError {
  constructor(message: string) {
    super('FENCED', message);
  }
}

/** 409 `ALREADY_CLAIMED` with `current_holder` and `generation` (§7.2). */
export class AlreadyClaimedError extends CairnError {
  constructor(holder: string, generation: number) {
    super('ALREADY_CLAIMED', `worker ${holder} holds the lease of generation ${generation}`, {
      details: { current_holder: holder, generation },
    });
  }
}

/** 409 `NO_PENDING_WORK`: nothing to claim. */
export class NoPendingWorkError extends CairnError {
  constructor(id: string) {
    super('NO_PENDING_WORK', `subscription ${id} has no pending work`);
  }
}

/**
 * 501 `SUBSCRIPTIONS_NOT_IN_CLUSTER`: every subscription API in cluster mode and under
 * `--workers` (README "Subscriptions"). A node follows only the streams it owns, so a
 * subscription served by one would silently miss the other nodes' streams.
 */
export class SubscriptionsNotInClusterError extends CairnError {
  constructor() {
    super('SUBSCRIPTIONS_NOT_IN_CLUSTER', 'subscriptions are not available in cluster mode or with --workers yet: each node sees only its own streams; serve them from a single node');
  }
}
