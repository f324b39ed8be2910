import type { RetryPlan } from '../../shared/plan/types.js';

/** Why a try is tried again: a failure before the response headers, or the status answered. */
export type RetryReason = 'connect_failure' | 'reset_before_response' | 'timeout' | number;

/** A `RetryReason` as the `reason` label and log lines show it. */
export const reasonLabel = (reason: RetryReason): string =>
  typeof reason === 'number' ? String(reason) : reason;

/**
 * An upstream's `retry` settings, worked out once per pool: lookups the request path makes
 * only when a try failed, and the backoff.
 */
export class RetryPolicy {
  readonly attempts: number;
  readonly bufferBytes: number;
  readonly budget: number;
  readonly #onConnect: boolean;
  readonly #onReset: boolean;
  readonly #onTimeout: boolean;
  /** By status code: retried on it. */
  readonly #statuses = new Uint8Array(600);
  readonly #methods: ReadonlySet<string>;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #random: () => number;

  constructor(plan: RetryPlan, random: () => number = Math.random) {
    this.attempts = plan.attempts;
    this.bufferBytes = plan.bufferBytes;
    this.budget = plan.budget;
    this.#onConnect = plan.on.includes('connect_failure');
    this.#onReset = plan.on.includes('reset_before_response');
    this.#onTimeout = plan.on.includes('timeout');
    for (const c of plan.on) if (typeof c === 'number') this.#statuses[c] = 1;
    this.#methods = new Set(plan.methods);
    this.#baseMs = plan.backoff.baseMs;
    this.#maxMs = plan.backoff.maxMs;
    this.#random = random;
  }

  /** A response with this status may be retried (the method still has to allow it). */
  onStatus(status: number): boolean {
    return this.#statuses[status] === 1;
  }

  /**
   * `reason` is retried for `method`: a connect failure for every method (the request never
   * left), anything else only for the methods listed.
   */
  allows(reason: RetryReason, method: string): boolean {
    switch (reason) {
      case 'connect_failure':
        return this.#onConnect;
      case 'reset_before_response':
        return this.#onReset && this.#methods.has(method);
      case 'timeout':
        return this.#onTimeout && this.#methods.has(method);
      default:
        return this.#statuses[reason] === 1 && this.#methods.has(method);
    }
  }

  /**
   * The wait before retry number `retry` (1 for the first): full jitter over base × 2^(retry−1),
   * capped at max; a 503's `Retry-After` replaces it, up to max.
   */
  backoffMs(retry: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return Math.min(retryAfterMs, this.#maxMs);
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(retry - 1, 30));
    return Math.floor(this.#random() * ceiling);
  }
}

/** `Retry-After` (delay-seconds or an HTTP date) in milliseconds from `now`, or undefined. */
export function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  if (typeof header !== 'string') return undefined;
  if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
