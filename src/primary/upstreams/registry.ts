import type { Logger } from 'pino';
import type { Plan, UpstreamPlan } from '../../shared/plan/types.js';
import {
  type EndpointView,
  endpointId,
  type UpstreamPrimaryToWorker,
  type UpstreamWorkerToPrimary,
} from '../../shared/upstream-messages.js';
import { createDiscovery, type DiscoveredEndpoint, type Discovery } from './discovery.js';

/*
 * The instance's view of every upstream pool: which endpoints exist (discovery.ts) and how
 * each is doing. It runs in the primary, once per instance, and broadcasts each pool's
 * endpoint list to the workers, which balance over it with no per-request IPC.
 *
 * A pool is keyed by its name and settings fingerprint: a reload that leaves an upstream's
 * settings alone keeps its pool (endpoints, health, ejections) as it is; a changed one gets a
 * fresh pool beside the old, and the old stops once the reload settled.
 *
 * SKELETON (issue 13): active health checks and ejections are not done yet; an endpoint of a
 * pool without `health_check` is healthy from the start, one with it stays `unknown`.
 */

type Broadcast = (message: UpstreamPrimaryToWorker) => void;

interface Pool {
  readonly plan: UpstreamPlan;
  readonly discovery: Discovery;
  /** By endpoint id, in discovery order. */
  endpoints: Map<string, EndpointView>;
}

const keyOf = (upstream: UpstreamPlan) => `${upstream.name}\u0000${upstream.fingerprint}`;

export class UpstreamRegistry {
  readonly #pools = new Map<string, Pool>();
  readonly #logger: Logger;
  readonly #broadcast: Broadcast;
  /** Keys of the plan in force: what `settle` keeps. */
  #active = new Set<string>();

  constructor(logger: Logger, broadcast: Broadcast) {
    this.#logger = logger;
    this.#broadcast = broadcast;
  }

  /**
   * Starts every pool of `plan` that does not run yet (same name and settings) and resolves
   * once each has its first endpoint list, so that the workers' first request has one.
   */
  async prepare(plan: Plan): Promise<void> {
    await Promise.all(
      plan.upstreams.map(async (upstream) => {
        const key = keyOf(upstream);
        if (this.#pools.has(key)) return;
        const discovery = createDiscovery(upstream, this.#logger.child({ upstream: upstream.name }));
        const pool: Pool = { plan: upstream, discovery, endpoints: new Map() };
        this.#pools.set(key, pool);
        const first = await discovery.start((endpoints) => this.#discovered(pool, endpoints));
        this.#discovered(pool, first, false);
      }),
    );
  }

  /** `plan` is in force (start, or a reload that settled either way): stop pools it does not use. */
  settle(plan: Plan): void {
    this.#active = new Set(plan.upstreams.map(keyOf));
    for (const [key, pool] of this.#pools) {
      if (this.#active.has(key)) continue;
      pool.discovery.close();
      this.#pools.delete(key);
    }
  }

  /** Every pool of `plan` as it is now: sent to a worker before it gets that plan. */
  snapshot(plan: Plan): UpstreamPrimaryToWorker[] {
    const messages: UpstreamPrimaryToWorker[] = [];
    for (const upstream of plan.upstreams) {
      const pool = this.#pools.get(keyOf(upstream));
      if (pool !== undefined) messages.push(this.#message(pool));
    }
    return messages;
  }

  /** A message from a worker about upstreams. */
  handle(message: UpstreamWorkerToPrimary): void {
    if (message.type === 'portico:outlier') {
      this.#logger.debug(message, 'outlier report (not acted on yet)');
    }
  }

  close(): void {
    for (const pool of this.#pools.values()) pool.discovery.close();
    this.#pools.clear();
  }

  #discovered(pool: Pool, found: DiscoveredEndpoint[], announce = true): void {
    const now = Date.now();
    const next = new Map<string, EndpointView>();
    for (const endpoint of found) {
      const id = endpointId(endpoint.host, endpoint.port);
      const known = pool.endpoints.get(id);
      next.set(
        id,
        known ?? {
          id,
          host: endpoint.host,
          port: endpoint.port,
          protocol: endpoint.protocol,
          ...(endpoint.servername === undefined ? {} : { servername: endpoint.servername }),
          weight: endpoint.weight,
          priority: endpoint.priority,
          state: pool.plan.healthCheck === null ? 'healthy' : 'unknown',
          reason: pool.plan.healthCheck === null ? '' : 'not checked yet',
          since: now,
        },
      );
    }
    pool.endpoints = next;
    if (announce) this.#broadcast(this.#message(pool));
  }

  #message(pool: Pool): UpstreamPrimaryToWorker {
    return {
      type: 'portico:endpoints',
      upstream: pool.plan.name,
      fingerprint: pool.plan.fingerprint,
      endpoints: [...pool.endpoints.values()],
    };
  }
}
