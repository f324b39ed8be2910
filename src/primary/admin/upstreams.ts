import type { BreakerView } from '../../shared/upstream-messages.js';
import type { UpstreamRegistry } from '../upstreams/registry.js';
import type { AdminEndpoint } from './server.js';

/** One endpoint as `GET /admin/upstreams` shows it. */
export interface EndpointAdminView {
  id: string;
  state: string;
  /** Why it is in that state, in words; `''` when healthy. */
  reason: string;
  /** When it entered that state (ISO 8601). */
  since: string;
  /** Requests to it in flight, summed over the workers. */
  in_flight: number;
  weight: number;
  priority: number;
}

const BREAKER_STATES = ['closed', 'half_open', 'open'] as const;

/** An upstream's `circuit_breaker` as `GET /admin/upstreams` shows it (over all workers). */
export interface BreakerAdminView {
  /** The worst worker's: each worker has its own breaker. */
  state: (typeof BREAKER_STATES)[number];
  /** Open: seconds until the first worker lets probes through; else 0. */
  retry_after: number;
  /** Times a worker's breaker opened, summed (since the upstream's settings last changed). */
  trips: number;
  /** Requests to the upstream in flight, summed over the workers. */
  active: number;
}

/** `GET /admin/upstreams`: every pool of the config in force and how each endpoint is doing. */
export function upstreamsEndpoint(registry: UpstreamRegistry): AdminEndpoint {
  return {
    method: 'GET',
    path: '/admin/upstreams',
    async handle() {
      const load = await registry.load.collect();
      const upstreams = registry.inForce().map(({ plan, endpoints }) => ({
        name: plan.name,
        implicit: plan.implicit,
        balance: plan.balance,
        circuit_breaker: breakerView(load.breakers.get(plan.name)),
        retry: {
          retries: load.retries.get(plan.name)?.retries ?? 0,
          budget_exhausted: load.retries.get(plan.name)?.budgetRefusals ?? 0,
          in_retry: load.retries.get(plan.name)?.retrying ?? 0,
        },
        endpoints: endpoints.map((e): EndpointAdminView => ({
          id: e.id,
          state: e.state,
          reason: e.reason,
          since: new Date(e.since).toISOString(),
          in_flight: load.inFlight.get(plan.name)?.get(e.id) ?? 0,
          weight: e.weight,
          priority: e.priority,
        })),
      }));
      return { json: { upstreams } };
    },
  };
}

function breakerView(view: BreakerView | undefined): BreakerAdminView {
  if (view === undefined) return { state: 'closed', retry_after: 0, trips: 0, active: 0 };
  return {
    state: BREAKER_STATES[view.state],
    retry_after: view.retryAfter,
    trips: view.trips,
    active: view.active,
  };
}
