/**
 * The durable proxy's errors (the Proxy Protocol v0.1 §11), one class per code of the spec's
 * table; status, headers and the JSON body `{"error":{"code","message"}}` come from the one error
 * table (src/protocol/error-table.ts) and src/http/error-handler.ts.
 */
import { CairnError, type ErrorCode } from '../protocol/error-table.ts';

/** Base of the proxy's errors. */
export class ProxyError extends CairnError {
  constructor(code: ErrorCode, message: string, options?: ErrorOptions & { headers?: Record<string, string> }) {
    super(code, message, options);
  }
}

/** 400 `MISSING_UPSTREAM_URL`, `MISSING_UPSTREAM_METHOD`, `INVALID_UPSTREAM_METHOD` or `INVALID_ACTION` (§11.1). */
export class ProxyRequestError extends ProxyError {
  constructor(code: 'MISSING_UPSTREAM_URL' | 'MISSING_UPSTREAM_METHOD' | 'INVALID_UPSTREAM_METHOD' | 'INVALID_ACTION', message: string) {
    super(code, message);
  }
}

/** 400 `REDIRECT_NOT_ALLOWED`: the upstream answered 3xx, which the proxy never follows (§6.1). */
export class RedirectNotAllowedError extends ProxyError {
  constructor(status: number) {
    super('REDIRECT_NOT_ALLOWED', `Proxy cannot follow redirects (upstream answered ${status})`);
  }
}

/** 401 `MISSING_SIGNATURE`, `SIGNATURE_EXPIRED` or `SIGNATURE_INVALID` (§7.2, §11.2). */
export class SignatureError extends ProxyError {
  constructor(code: 'MISSING_SIGNATURE' | 'SIGNATURE_EXPIRED' | 'SIGNATURE_INVALID', message: string) {
    super(code, message);
  }
}

/** 403 `UPSTREAM_NOT_ALLOWED`: not on the allowlist, or resolving to a private or local address (§6, §12.1). */
export class UpstreamNotAllowedError extends ProxyError {
  constructor(message: string) {
    super('UPSTREAM_NOT_ALLOWED', message);
  }
}

/** 502 `UPSTREAM_ERROR` + Retry-After: the upstream could not be reached or failed before its response head. */
export class UpstreamUnreachableError extends ProxyError {
  constructor(message: string, cause?: unknown) {
    super('UPSTREAM_ERROR', message, { cause });
  }
}

/** 504 `UPSTREAM_TIMEOUT` + Retry-After: no connection or no response head in time (§8.1). */
export class UpstreamTimeoutError extends ProxyError {
  constructor(message: string) {
    super('UPSTREAM_TIMEOUT', message);
  }
}

/** 404 `STREAM_NOT_FOUND` (§11.5): no proxy stream with this id, or it is gone (expired, deleted). */
export class ProxyStreamNotFoundError extends ProxyError {
  constructor(id: string) {
    super('PROXY_STREAM_NOT_FOUND', `proxy stream not found: ${id}`);
  }
}
