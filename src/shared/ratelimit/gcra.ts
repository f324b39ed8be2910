/*
 * The token bucket, as GCRA (generic cell rate algorithm): one number per key, the
 * "theoretical arrival time" (TAT), instead of a token count plus a timestamp. A bucket of
 * capacity `burst` refilled at `requests_per_second` admits a request at `now` when
 * `max(tat, now) + interval - now <= burst * interval`; an admitted request moves TAT on by
 * one interval, a refused one changes nothing. Times are integer microseconds so the
 * JavaScript stores and the Redis Lua script (lua.ts) compute bit-identical answers.
 */

/** A compiled bucket shape. `intervalUs` is the time one token takes to refill. */
export interface BucketPolicy {
  /** 1e6 / requests_per_second, rounded to the microsecond (at least 1). */
  readonly intervalUs: number;
  /** Bucket capacity: requests admitted at once from a full bucket. */
  readonly burst: number;
}

/** What a store answers for one request. */
export interface Decision {
  readonly allowed: boolean;
  /** Microseconds until the bucket is full again (0: full; the key can be forgotten). */
  readonly fullInUs: number;
}

export function compilePolicy(requestsPerSecond: number, burst: number): BucketPolicy {
  return { intervalUs: Math.max(1, Math.round(1e6 / requestsPerSecond)), burst };
}

/**
 * One GCRA step. `tat` is the stored value (undefined: no entry, i.e. a full bucket).
 * Returns the decision and the TAT to store (unchanged when refused).
 */
export function gcraTake(
  tat: number | undefined,
  nowUs: number,
  policy: BucketPolicy,
): { allowed: boolean; tat: number; fullInUs: number } {
  const base = tat === undefined || tat < nowUs ? nowUs : tat;
  const next = base + policy.intervalUs;
  if (next - nowUs > policy.burst * policy.intervalUs) {
    return { allowed: false, tat: base, fullInUs: base - nowUs };
  }
  return { allowed: true, tat: next, fullInUs: next - nowUs };
}

/**
 * Requests the bucket would still admit right now, after `decision`. Zero exactly when the
 * next request at the same instant would be refused.
 */
export function remainingOf(decision: Decision, policy: BucketPolicy): number {
  const free = policy.burst * policy.intervalUs - decision.fullInUs;
  return free <= 0 ? 0 : Math.floor(free / policy.intervalUs);
}

/** Microseconds until one more request would be admitted (> 0 whenever remaining is 0). */
export function nextTokenInUs(decision: Decision, policy: BucketPolicy): number {
  const remaining = remainingOf(decision, policy);
  if (remaining >= policy.burst) return 0;
  return decision.fullInUs - (policy.burst - remaining - 1) * policy.intervalUs;
}
