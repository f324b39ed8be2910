import type { ServerResponse } from 'node:http';
import {
  type BucketPolicy,
  type Decision,
  nextTokenInUs,
  remainingOf,
} from '../../../shared/ratelimit/gcra.js';

/*
 * Response fields of draft-ietf-httpapi-ratelimit-headers-10 (structured-field lists whose
 * items are sf-strings naming the policy):
 *   RateLimit-Policy: "burst";q=<burst>;w=<seconds to refill an empty bucket>
 *   RateLimit:        "burst";r=<remaining>;t=<seconds until one more request is admitted>
 * A token bucket has no fixed window; q/w state its capacity and full-refill time, which
 * also gives the sustained rate q/w (rounded up to whole seconds as the draft requires, so
 * it is never more generous than the truth). Retry-After on a 429 equals t, as the draft
 * asks it never be earlier. Legacy X-RateLimit-* fields are opt-in; their Reset is the
 * Unix time (seconds) when the bucket is full again, the GitHub convention.
 */

export interface HeaderPlan {
  readonly policy: BucketPolicy;
  /** The sf-string, quotes included. */
  readonly name: string;
  readonly policyField: string;
  readonly legacy: boolean;
  readonly limit: string;
}

export function planHeaders(policyName: string, policy: BucketPolicy, legacy: boolean): HeaderPlan {
  const name = `"${policyName.replace(/[\\"]/g, '\\$&')}"`;
  const window = Math.max(1, Math.ceil((policy.burst * policy.intervalUs) / 1e6));
  return {
    policy,
    name,
    policyField: `${name};q=${policy.burst};w=${window}`,
    legacy,
    limit: String(policy.burst),
  };
}

/** Whole seconds, rounded up: a client waiting this long is never early. */
export const ceilSeconds = (us: number): number => Math.ceil(us / 1e6);

/** The bucket's `RateLimit` item for `decision` (see quotas.ts, which lists it beside the quotas'). */
export function bucketItem(plan: HeaderPlan, decision: Decision): string {
  const reset = ceilSeconds(nextTokenInUs(decision, plan.policy));
  return `${plan.name};r=${remainingOf(decision, plan.policy)};t=${reset}`;
}

/** Sets the fields for `decision`; returns seconds until the next token (Retry-After). */
export function writeRateLimitHeaders(res: ServerResponse, plan: HeaderPlan, decision: Decision): number {
  const remaining = remainingOf(decision, plan.policy);
  const reset = ceilSeconds(nextTokenInUs(decision, plan.policy));
  res.setHeader('ratelimit-policy', plan.policyField);
  res.setHeader('ratelimit', `${plan.name};r=${remaining};t=${reset}`);
  if (plan.legacy) writeLegacyHeaders(res, plan, decision, remaining);
  return reset;
}

/** `X-RateLimit-*`, which describe the bucket only (quotas have no legacy fields). */
export function writeLegacyHeaders(
  res: ServerResponse,
  plan: HeaderPlan,
  decision: Decision,
  remaining = remainingOf(decision, plan.policy),
): void {
  res.setHeader('x-ratelimit-limit', plan.limit);
  res.setHeader('x-ratelimit-remaining', String(remaining));
  res.setHeader('x-ratelimit-reset', String(Math.ceil(Date.now() / 1000 + decision.fullInUs / 1e6)));
}
