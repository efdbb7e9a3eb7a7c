/**
 * An `ObjectStore` decorator for fault tests: rules chosen by predicate make calls fail, fail
 * after taking effect (a lost response), wait, or hang. Each call is matched against the rules
 * in the order they were added; the first matching rule with hits left applies, and only it.
 * Calls matching no rule pass straight through.
 *
 *   const faults = new FaultInjectingObjectStore(new MemoryObjectStore());
 *   faults.inject({ when: (c) => c.operation === 'put', action: { kind: 'fail', error: injectedUnavailable }, times: 2 });
 */
import { systemClock } from '../clock.ts';
import {
  ObjectStoreUnavailableError,
  type ByteRange,
  type GetResult,
  type ListOptions,
  type ListPage,
  type ObjectInfo,
  type ObjectStore,
  type ObjectStoreOperation,
  type PutOptions,
} from './object-store.ts';

/** One call as a rule sees it. */
export interface ObjectStoreCall {
  operation: ObjectStoreOperation;
  /** The key, the list prefix, or '' for `deleteMany`. */
  key: string;
  /** `deleteMany` only. */
  keys?: readonly string[];
  /** `put` only. */
  body?: Uint8Array;
  /** `get` only. */
  range?: ByteRange;
}

export type FaultAction =
  /**
   * Throw `error(call)`. `phase: 'before'` (default) fails without calling the inner store;
   * `'after'` calls it, lets it take effect, then throws — a response lost on the way back.
   */
  | { kind: 'fail'; error: (call: ObjectStoreCall) => Error; phase?: 'before' | 'after' }
  /** Wait `delayMs` (with the store's sleep), then proceed. */
  | { kind: 'delay'; delayMs: number }
  /** Wait until `releaseHung()`, then proceed. Models a request that never answers. */
  | { kind: 'hang' };

export interface FaultRule {
  when: (call: ObjectStoreCall) => boolean;
  action: FaultAction;
  /** How many matching calls the rule applies to; default unlimited. */
  times?: number;
}

export interface FaultHandle {
  /** Matching calls the rule has applied to so far. */
  readonly hitCount: number;
  /** Stops the rule from applying to later calls. */
  remove(): void;
}

/** A ready-made `error` for `fail` rules: a retryable `ObjectStoreUnavailableError`. */
export function injectedUnavailable(call: ObjectStoreCall): Error {
  return new ObjectStoreUnavailableError(call.operation, call.key, `injected fault: ${call.operation} ${call.key}`);
}

interface ActiveRule {
  rule: FaultRule;
  hitCount: number;
}


export class FaultInjectingObjectStore implements ObjectStore {
  readonly description: string;
  readonly #inner: ObjectStore;
  readonly #sleep: (delayMs: number) => Promise<void>;
  #rules: ActiveRule[] = [];
  #hung: (() => void)[] = [];

  /** `sleep` serves `delay` actions; default a `setTimeout` sleep. */
  constructor(inner: ObjectStore, options: { sleep?: (delayMs: number) => Promise<void> } = {}) {
    this.#inner = inner;
    this.description = inner.description;
    this.#sleep = options.sleep ?? systemClock.sleep;
  }

  inject(rule: FaultRule): FaultHandle {
    const active: ActiveRule = { rule, hitCount: 0 };
    this.#rules.push(active);
    return {
      get hitCount() {
        return active.hitCount;
      },
      remove: () => {
        this.#rules = this.#rules.filter((r) => r !== active);
      },
    };
  }

  /** Removes every rule (hung calls stay hung until `releaseHung`). */
  clearFaults(): void {
    this.#rules = [];
  }

  /** Calls currently hanging. */
  get hungCount(): number {
    return this.#hung.length;
  }

  /** Lets every hanging call proceed to the inner store. */
  releaseHung(): void {
    const hung = this.#hung;
    this.#hung = [];
    for (const release of hung) release();
  }

  put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    return this.#call({ operation: 'put', key, body }, () => this.#inner.put(key, body, options));
  }

  get(key: string, range?: ByteRange): Promise<GetResult> {
    return this.#call({ operation: 'get', key, range }, () => this.#inner.get(key, range));
  }

  head(key: string): Promise<ObjectInfo> {
    return this.#call({ operation: 'head', key }, () => this.#inner.head(key));
  }

  list(options: ListOptions): Promise<ListPage> {
    return this.#call({ operation: 'list', key: options.prefix }, () => this.#inner.list(options));
  }

  delete(key: string): Promise<void> {
    return this.#call({ operation: 'delete', key }, () => this.#inner.delete(key));
  }

  deleteMany(keys: readonly string[]): Promise<void> {
    return this.#call({ operation: 'deleteMany', key: '', keys }, () => this.#inner.deleteMany(keys));
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  async #call<T>(call: ObjectStoreCall, proceed: () => Promise<T>): Promise<T> {
    const active = this.#rules.find((r) => (r.rule.times === undefined || r.hitCount < r.rule.times) && r.rule.when(call));
    if (!active) return proceed();
    active.hitCount++;
    const { action } = active.rule;
    switch (action.kind) {
      case 'fail':
        if (action.phase === 'after') await proceed();
        throw action.error(call);
      case 'delay':
        await this.#sleep(action.delayMs);
        return proceed();
      case 'hang':
        await new Promise<void>((resolve) => this.#hung.push(resolve));
        return proceed();
    }
  }
}
