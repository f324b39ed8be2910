import type { Logger } from 'pino';
import { dashboardStatus } from '../../dashboard-feed.js';
import type { BlockedKeys } from './blocked-keys.js';
import { type BucketPolicy, type Decision, nextTokenInUs } from '../../../shared/ratelimit/gcra.js';
import { type MemoryBuckets, monotonicUs } from '../../../shared/ratelimit/memory-buckets.js';
import type { ObservationHooks } from '../hooks.js';
import type { LimiterStore } from './store.js';
import type { CounterStore } from './counter-store.js';

/** Which counters a quota decision uses: the shared store, or the worker's insurance ones. */
export interface CounterChoice {
  readonly store: CounterStore;
  readonly degraded: boolean;
}

/** A decision as the middleware sees it; `degraded` when the shared store could not answer. */
export interface Verdict extends Decision {
  readonly degraded: boolean;
}

/** The store failed and `on_store_error: deny`: the middleware answers 503. */
export const STORE_UNAVAILABLE = Symbol('portico.ratelimit.storeUnavailable');

export interface LimiterOptions {
  store: LimiterStore;
  storeName: 'redis' | 'embedded';
  insurance: MemoryBuckets;
  blocked: BlockedKeys;
  onStoreError: 'allow' | 'deny';
  /** While the store is down, how often one request probes it (the others skip it). */
  probeIntervalMs: number;
  logger: Logger;
  /** Told of store transitions (`gateway_ratelimit_store_up`). */
  hooks: Pick<ObservationHooks, 'rateLimitStoreUp'>;
  /** Issue 16: quota and ban counters in the shared store, and in memory for when it fails. */
  counters?: { shared: CounterStore; insurance: CounterStore };
}

/**
 * One per worker, shared by every route: the shared store, the local block cache in front
 * of it, and the insurance limiter behind it. Store health is a two-state breaker: after a
 * failure every request goes to the insurance limiter at once (no timeout paid per
 * request) and one request per `probeIntervalMs` tries the store again; the first success
 * returns to shared limiting. Transitions are logged once each, not per request.
 */
export class WorkerLimiter {
  #down = false;
  #probeAt = 0;
  readonly #shared: CounterChoice | undefined;
  readonly #local: CounterChoice | undefined;
  constructor(private readonly options: LimiterOptions) {
    const counters = options.counters;
    this.#shared = counters && { store: counters.shared, degraded: false };
    this.#local = counters && { store: counters.insurance, degraded: true };
    // The store is presumed up until a call fails; say so, so a state gauge exists from the start.
    options.hooks.rateLimitStoreUp(options.storeName, true);
    dashboardStatus.ratelimit_store_up = true;
  }

  /** The local refusal cache (the quota path also keeps bans there). */
  get blocked(): BlockedKeys {
    return this.options.blocked;
  }

  get storeDown(): boolean {
    return this.#down;
  }

  /** The store is known to be failing (e.g. Redis refused the password): go down now, not at the next request. */
  storeFailed(err: Error): void {
    if (this.#down) return;
    this.#probeAt = monotonicUs() + this.options.probeIntervalMs * 1000;
    this.#transition(true, err);
  }

  /** Lets the next request probe the store now (e.g. Redis reconnected). */
  probeSoon(): void {
    this.#probeAt = 0;
  }

  /**
   * The counters for a quota decision, behind the same breaker as the buckets: the shared
   * store while it answers; while it is down, the insurance counters (`allow`) or
   * STORE_UNAVAILABLE (`deny`). The bucket take that follows each quota decision probes.
   */
  counters(): CounterChoice | typeof STORE_UNAVAILABLE {
    const shared = this.#shared as CounterChoice;
    if (!this.#down) return shared;
    if (this.options.onStoreError === 'deny') return STORE_UNAVAILABLE;
    return this.#local as CounterChoice;
  }

  take(
    key: string,
    policy: BucketPolicy,
  ): Verdict | typeof STORE_UNAVAILABLE | Promise<Verdict | typeof STORE_UNAVAILABLE> {
    const { blocked, store } = this.options;
    const blockedFor = blocked.blockedForUs(key);
    if (blockedFor > 0) {
      // Remaining is 0 and the next token is `blockedFor` away: the GCRA state that says so.
      return {
        allowed: false,
        fullInUs: blockedFor + (policy.burst - 1) * policy.intervalUs,
        degraded: false,
      };
    }
    const now = monotonicUs();
    if (this.#down) {
      if (now < this.#probeAt) return this.#fallback(key, policy);
      this.#probeAt = now + this.options.probeIntervalMs * 1000;
    }
    return store.take(key, policy).then(
      (decision): Verdict => {
        if (this.#down) this.#transition(false);
        if (!decision.allowed) blocked.block(key, now + nextTokenInUs(decision, policy));
        return { allowed: decision.allowed, fullInUs: decision.fullInUs, degraded: false };
      },
      (err: unknown) => {
        if (!this.#down) {
          this.#probeAt = monotonicUs() + this.options.probeIntervalMs * 1000;
          this.#transition(true, err);
        }
        return this.#fallback(key, policy);
      },
    );
  }

  #fallback(key: string, policy: BucketPolicy): Verdict | typeof STORE_UNAVAILABLE {
    if (this.options.onStoreError === 'deny') return STORE_UNAVAILABLE;
    const decision = this.options.insurance.take(key, policy);
    return { allowed: decision.allowed, fullInUs: decision.fullInUs, degraded: true };
  }

  #transition(down: boolean, err?: unknown): void {
    this.#down = down;
    const { logger, storeName, onStoreError } = this.options;
    if (down) {
      // Error, not warning: configured shared limiting has stopped working (per worker now).
      logger.error(
        { store: storeName, err: (err as Error | undefined)?.message, on_store_error: onStoreError },
        onStoreError === 'allow'
          ? 'rate-limit store unavailable: limiting per worker until it returns'
          : 'rate-limit store unavailable: refusing rate-limited routes until it returns',
      );
    } else {
      logger.info({ store: storeName }, 'rate-limit store available again: shared limiting resumed');
    }
    this.options.hooks.rateLimitStoreUp(storeName, !down);
    dashboardStatus.ratelimit_store_up = !down;
  }
}
