import type { WorkerResources } from '../../resources.js';

/**
 * The hook metrics (issue 5) subscribe to, instead of this middleware depending on a
 * metrics library. Subscribe from any middleware factory, in any order:
 *
 * @example
 * observeRateLimit(env.resources, {
 *   decision: (route, outcome) => decisions.inc({ route, outcome }),
 *   storeState: (store, state) => storeUp.set({ store }, state === 'up' ? 1 : 0),
 * });
 *
 * `decision` runs on every request through `ratelimit` (keep it cheap): `limited` is a
 * 429 from the shared store or the local block cache; `store_error` means the store could
 * not answer and `on_store_error` decided (the insurance limiter's verdict is `allowed`).
 * `storeState` runs once per transition per worker, never per request.
 */
export interface RateLimitObserver {
  decision?(route: string, outcome: 'allowed' | 'limited' | 'store_error', allowed: boolean): void;
  storeState?(store: 'redis' | 'embedded', state: 'up' | 'down'): void;
}

const OBSERVERS = 'portico.ratelimit.observers';

/** The worker's observer list (shared by every route's ratelimit instance). */
export function rateLimitObservers(resources: WorkerResources): RateLimitObserver[] {
  return resources.shared<RateLimitObserver[]>(OBSERVERS, () => []);
}

export function observeRateLimit(resources: WorkerResources, observer: RateLimitObserver): void {
  rateLimitObservers(resources).push(observer);
}
