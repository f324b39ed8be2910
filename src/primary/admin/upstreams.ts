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
        endpoints: endpoints.map((e): EndpointAdminView => ({
          id: e.id,
          state: e.state,
          reason: e.reason,
          since: new Date(e.since).toISOString(),
          in_flight: load.get(plan.name)?.get(e.id) ?? 0,
          weight: e.weight,
          priority: e.priority,
        })),
      }));
      return { json: { upstreams } };
    },
  };
}
