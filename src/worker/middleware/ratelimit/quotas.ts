import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, writeError } from '../../../shared/errors.js';
import type { QuotaPlan, RouteRateLimitPlan } from '../../../shared/plan/types.js';
import { type BucketPolicy, type Decision, nextTokenInUs } from '../../../shared/ratelimit/gcra.js';
import { monotonicUs } from '../../../shared/ratelimit/memory-buckets.js';
import type { CounterState } from '../../../shared/ratelimit/window-counters.js';
import type { ObservationHooks } from '../hooks.js';
import type { Middleware } from '../types.js';
import type { CounterStore } from './counter-store.js';
import { bucketItem, ceilSeconds, type HeaderPlan, writeLegacyHeaders } from './headers.js';
import { STORE_UNAVAILABLE, type Verdict, type WorkerLimiter } from './limiter.js';
import { type QuotaWindow, WindowClock } from './quota-window.js';

const UNAVAILABLE = new GatewayError('PORTICO_ERR_RATE_LIMIT_UNAVAILABLE');
const BANNED = new GatewayError('PORTICO_ERR_BANNED');
const BURST_REFUSED = new GatewayError('PORTICO_ERR_RATE_LIMITED', { message: 'rate limit exceeded: burst' });
/** Local ban entries share the block cache with the buckets' refusals, under their own prefix. */
const BAN = 'ban|';

interface Quota {
  readonly name: QuotaPlan['per'];
  readonly limit: number;
  readonly clock: WindowClock;
  readonly refused: GatewayError;
  readonly limited: () => void;
}

export interface QuotaMiddlewareOptions {
  settings: RouteRateLimitPlan;
  policy: BucketPolicy;
  plan: HeaderPlan;
  keyOf: (req: IncomingMessage) => string;
  limiter: WorkerLimiter;
  hooks: ObservationHooks;
}

/** What phase one of a decision found: each quota's window, key and count, and the ban. */
interface Counted {
  windows: QuotaWindow[];
  keys: string[];
  ttls: number[];
  counts: CounterState[];
  /** Milliseconds the key stays banned (0: not banned). */
  bannedMs: number;
}

/**
 * `ratelimit` with quotas and/or a ban (issue 16). Every policy must admit a request, and a
 * refused request consumes nothing from any of them:
 *
 * 1. A ban or a bucket refusal this worker already knows of is answered at once, locally.
 * 2. Every quota's counter of the current UTC window is incremented (and the ban read), in
 *    parallel: one round trip, as the commands share a pipeline (or an IPC batch).
 * 3. If a quota is exceeded, or the key is banned, every increment of step 2 is refunded.
 * 4. Else the token bucket is asked last: its refusal takes nothing, and the quotas are refunded.
 *
 * Under concurrency the counts never admit more than a quota's limit (an increment is atomic
 * and only a refused request is refunded); between a refused request's increment and its
 * refund (one round trip), a concurrent request at the very edge of a quota may be refused
 * too. So a quota errs towards refusing, by at most the requests in flight, never towards
 * admitting; once refunds land, counts equal the admitted requests exactly.
 */
export function quotaMiddleware({
  settings,
  policy,
  plan,
  keyOf,
  limiter,
  hooks,
}: QuotaMiddlewareOptions): Middleware {
  const quotas: Quota[] = settings.quotas.map(({ per, limit }) => ({
    name: per,
    limit,
    clock: new WindowClock(per),
    refused: new GatewayError('PORTICO_ERR_QUOTA_EXCEEDED', { message: `quota exceeded: ${per}` }),
    limited: hooks.rateLimitCounter('limited', per),
  }));
  const allowed = hooks.rateLimitCounter('allowed', 'all');
  const storeError = hooks.rateLimitCounter('store_error', 'all');
  const burstLimited = hooks.rateLimitCounter('limited', 'burst');
  const banLimited = hooks.rateLimitCounter('limited', 'ban');
  const ban = settings.ban;
  const blocked = limiter.blocked;

  // RateLimit-Policy changes only when a window does (a month's length): remade then, not per request.
  let policyField = '';
  let policyUntil = 0;
  const policyHeader = (nowMs: number): string => {
    if (nowMs < policyUntil && policyField !== '') return policyField;
    const parts = [plan.policyField];
    policyUntil = Infinity;
    for (const quota of quotas) {
      const window = quota.clock.at(nowMs);
      parts.push(`"${quota.name}";q=${quota.limit};w=${(window.endMs - window.startMs) / 1000}`);
      policyUntil = Math.min(policyUntil, window.endMs);
    }
    return (policyField = parts.join(', '));
  };

  /** Increments every quota's counter (and reads the ban) in one go. */
  const count = async (store: CounterStore, key: string, nowMs: number): Promise<Counted> => {
    const windows = quotas.map((quota) => quota.clock.at(nowMs));
    const keys = quotas.map((quota, i) => `${key}|${quota.name}:${(windows[i] as QuotaWindow).label}`);
    // The key names its window; the TTL only lets Redis forget it (at least 1 s: 0 would never expire).
    const ttls = windows.map((window) => Math.ceil((window.endMs - nowMs) / 1000) + 1);
    const [counts, state] = await Promise.all([
      Promise.all(keys.map((k, i) => store.add(k, 1, ttls[i] as number))),
      ban === null ? undefined : store.get(`${key}|ban`),
    ]);
    return { windows, keys, ttls, counts, bannedMs: state === undefined ? 0 : state[1] };
  };

  const refund = (store: CounterStore, counted: Counted): void => {
    counted.keys.forEach((k, i) => {
      // A refund that fails leaves the count high: stricter, never more lenient.
      store.add(k, -1, counted.ttls[i] as number).catch(() => {});
    });
  };

  /**
   * Counts a refusal towards the ban, in the store so that every worker and instance counts
   * together (also a refusal the block cache answered: with a ban configured, each refusal
   * costs one counter command, sent after the answer). The answer does not wait for it.
   */
  const refused = (key: string): void => {
    if (ban === null) return;
    const choice = limiter.counters();
    if (choice === STORE_UNAVAILABLE) return;
    const store = choice.store;
    store.add(`${key}|refusals`, 1, ban.withinSec).then(
      ([refusals]) => {
        if (refusals < ban.after) return;
        blocked.block(BAN + key, monotonicUs() + ban.forSec * 1e6);
        return store.set(`${key}|ban`, 1, ban.forSec);
      },
      () => {}, // the store failed: the next decision notices and falls back
    );
  };

  /** `RateLimit` items of the quotas, from the counts of phase two (refunded ones less one). */
  const quotaItems = (counted: Counted, nowMs: number, refundedToo: boolean): string => {
    let items = '';
    quotas.forEach((quota, i) => {
      const used = (counted.counts[i] as CounterState)[0] - (refundedToo ? 1 : 0);
      const window = counted.windows[i] as QuotaWindow;
      const t = Math.max(1, Math.ceil((window.endMs - nowMs) / 1000));
      items += `, "${quota.name}";r=${Math.max(0, quota.limit - used)};t=${t}`;
    });
    return items;
  };

  function refuse(
    res: ServerResponse,
    error: GatewayError,
    retryAfterSec: number,
    degraded: boolean,
    limited: () => void,
  ) {
    (degraded ? storeError : limited)();
    res.setHeader('retry-after', String(Math.max(1, retryAfterSec)));
    writeError(res, error);
  }

  function unavailable(res: ServerResponse) {
    storeError();
    res.setHeader('retry-after', '1');
    writeError(res, UNAVAILABLE);
  }

  function bucketRefused(res: ServerResponse, decision: Decision & { degraded: boolean }, items: string) {
    res.setHeader('ratelimit', bucketItem(plan, decision) + items);
    if (plan.legacy) writeLegacyHeaders(res, plan, decision);
    const next = ceilSeconds(nextTokenInUs(decision, policy));
    refuse(res, BURST_REFUSED, next, decision.degraded, burstLimited);
  }

  return (next) =>
    async function ratelimitQuotas(req: IncomingMessage, res: ServerResponse) {
      const key = keyOf(req);
      const nowMs = Date.now();
      res.setHeader('ratelimit-policy', policyHeader(nowMs));
      if (ban !== null) {
        const bannedUs = blocked.blockedForUs(BAN + key);
        if (bannedUs > 0) return refuse(res, BANNED, ceilSeconds(bannedUs), false, banLimited);
      }
      if (blocked.blockedForUs(key) > 0) {
        // The bucket refused this key until its next token: exact, and answered locally.
        refused(key);
        return bucketRefused(res, limiter.take(key, policy) as Verdict, '');
      }
      let choice = limiter.counters();
      if (choice === STORE_UNAVAILABLE) return unavailable(res);
      let counted: Counted;
      try {
        counted = await count(choice.store, key, nowMs);
      } catch (err) {
        limiter.storeFailed(err as Error);
        choice = limiter.counters();
        if (choice === STORE_UNAVAILABLE) return unavailable(res);
        counted = await count(choice.store, key, nowMs);
      }
      const store = choice.store;
      if (counted.bannedMs > 0) {
        refund(store, counted);
        blocked.block(BAN + key, monotonicUs() + counted.bannedMs * 1000);
        return refuse(res, BANNED, Math.ceil(counted.bannedMs / 1000), choice.degraded, banLimited);
      }
      // The refusing quota is the one that admits again last (the request needs them all).
      let refusing = -1;
      quotas.forEach((quota, i) => {
        if ((counted.counts[i] as CounterState)[0] <= quota.limit) return;
        const end = (counted.windows[i] as QuotaWindow).endMs;
        if (refusing === -1 || end > (counted.windows[refusing] as QuotaWindow).endMs) refusing = i;
      });
      if (refusing !== -1) {
        refund(store, counted);
        refused(key);
        res.setHeader('ratelimit', quotaItems(counted, nowMs, true).slice(2));
        const quota = quotas[refusing] as Quota;
        const end = (counted.windows[refusing] as QuotaWindow).endMs;
        return refuse(
          res,
          quota.refused,
          Math.ceil((end - Date.now()) / 1000),
          choice.degraded,
          quota.limited,
        );
      }
      const taken = limiter.take(key, policy);
      const verdict = taken instanceof Promise ? await taken : taken;
      if (verdict === STORE_UNAVAILABLE) {
        refund(store, counted);
        return unavailable(res);
      }
      if (!verdict.allowed) {
        refund(store, counted);
        refused(key);
        return bucketRefused(res, verdict, quotaItems(counted, nowMs, true));
      }
      res.setHeader('ratelimit', bucketItem(plan, verdict) + quotaItems(counted, nowMs, false));
      if (plan.legacy) writeLegacyHeaders(res, plan, verdict);
      const degraded = verdict.degraded || choice.degraded;
      (degraded ? storeError : allowed)();
      return next(req, res);
    };
}
