import type { Logger } from 'pino';
import type { Plan, UpstreamPlan } from '../../shared/plan/types.js';
import {
  type EndpointView,
  endpointId,
  type FailureKind,
  type UpstreamPrimaryToWorker,
  type UpstreamWorkerToPrimary,
} from '../../shared/upstream-messages.js';
import { createDiscovery, type DiscoveredEndpoint, type Discovery } from './discovery.js';
import { EndpointHealth } from './endpoint-health.js';
import { probe as httpProbe, type Probe } from './health-check.js';
import { warnInsecureUpstreams } from './insecure-tls.js';
import { LoadCollector } from './load.js';

/*
 * The instance's view of every upstream pool: which endpoints exist (discovery.ts) and how
 * each is doing (active checks, ejections from the workers' outlier reports). It runs in the
 * primary, once per instance, and broadcasts each pool's endpoint list to the workers, which
 * balance over it with no per-request IPC.
 *
 * A pool is keyed by its name and settings fingerprint: a reload that leaves an upstream's
 * settings alone keeps its pool (endpoints, health, ejections, check timers) as it is; a
 * changed one gets a fresh pool beside the old, and the old stops once the reload settled.
 */

/** Sends to every live worker; returns how many it reached. */
type Broadcast = (message: UpstreamPrimaryToWorker) => number;

/** Time and randomness, injectable so unit tests drive ejections with a fake clock. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  random(): number;
}

const systemClock: Clock = {
  now: () => Date.now(),
  // Unref'd: pools never keep a stopping primary alive.
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
  random: () => Math.random(),
};

/** Changes of a pool within this time go to the workers as one message. */
const BROADCAST_DELAY_MS = 100;
/** Later check rounds start up to this share of the interval late, so they spread out. */
const JITTER = 0.1;

interface Pool {
  readonly plan: UpstreamPlan;
  readonly discovery: Discovery;
  /** By endpoint id, in discovery order. */
  endpoints: Map<string, EndpointHealth>;
  /** Settles once the first endpoint list is known and (with checks) checked. */
  ready: Promise<void>;
  closed: boolean;
}

/** A pool of the plan in force, as metrics and `/admin/upstreams` show it. */
export interface PoolView {
  plan: UpstreamPlan;
  endpoints: readonly EndpointView[];
}

/** What the metrics read from the registry at each scrape. */
export interface UpstreamHealthSource {
  inForce(): PoolView[];
  /** Ejections so far of `endpoint` of upstream `name`, by reason. */
  ejections(name: string, endpoint: string): ReadonlyMap<FailureKind, number> | undefined;
}

const keyOf = (upstream: UpstreamPlan) => `${upstream.name}\u0000${upstream.fingerprint}`;

export class UpstreamRegistry implements UpstreamHealthSource {
  readonly #pools = new Map<string, Pool>();
  readonly #logger: Logger;
  readonly #broadcast: Broadcast;
  readonly #probe: Probe;
  readonly #clock: Clock;
  /** Keys of the plan in force: what `settle` keeps. */
  #active = new Set<string>();
  #inForce: UpstreamPlan[] = [];
  /** Pools changed since the last broadcast. */
  readonly #dirty = new Set<Pool>();
  #flush: unknown = undefined;
  /** upstream name → endpoint id → reason → ejections (a counter: it survives reloads). */
  readonly #ejections = new Map<string, Map<string, Map<FailureKind, number>>>();
  /** In-flight counts from the workers. */
  readonly load: LoadCollector;

  constructor(logger: Logger, broadcast: Broadcast, options: { probe?: Probe; clock?: Clock } = {}) {
    this.#logger = logger;
    this.#broadcast = broadcast;
    this.#probe = options.probe ?? httpProbe;
    this.#clock = options.clock ?? systemClock;
    this.load = new LoadCollector(broadcast);
  }

  /**
   * Starts every pool of `plan` that does not run yet (same name and settings) and resolves
   * once each has its first endpoint list and, with active checks, the first check of each
   * endpoint is done (bounded by the check timeout): so no worker ever sends to an endpoint
   * nobody has looked at.
   */
  async prepare(plan: Plan): Promise<void> {
    await Promise.all(
      plan.upstreams.map((upstream) => {
        const key = keyOf(upstream);
        const running = this.#pools.get(key);
        if (running !== undefined) return running.ready;
        const discovery = createDiscovery(upstream, this.#logger.child({ upstream: upstream.name }));
        const pool: Pool = {
          plan: upstream,
          discovery,
          endpoints: new Map(),
          ready: Promise.resolve(),
          closed: false,
        };
        pool.ready = discovery
          .start((endpoints) => void this.#discovered(pool, endpoints, true))
          .then(
            (first) => this.#discovered(pool, first, false),
            // Discovery logs its own failures; a pool it could not start has no endpoints.
            (err: unknown) =>
              this.#logger.error({ err, upstream: upstream.name }, 'upstream discovery failed'),
          );
        this.#pools.set(key, pool);
        return pool.ready;
      }),
    );
  }

  /** `plan` is in force (start, or a reload that settled either way): stop pools it does not use. */
  settle(plan: Plan): void {
    if (plan.upstreams !== this.#inForce) warnInsecureUpstreams(this.#logger, this.#inForce, plan.upstreams);
    this.#active = new Set(plan.upstreams.map(keyOf));
    this.#inForce = plan.upstreams;
    for (const [key, pool] of this.#pools) {
      if (this.#active.has(key)) continue;
      this.#stop(pool);
      this.#pools.delete(key);
    }
    const names = new Set(plan.upstreams.map((u) => u.name));
    for (const name of this.#ejections.keys()) if (!names.has(name)) this.#ejections.delete(name);
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
    if (message.type === 'portico:upstream-load')
      this.load.answer(message.id, message.inFlight, message.breakers, message.retries);
    else this.#report(message.upstream, message.endpoint, message.reason);
  }

  inForce(): PoolView[] {
    const views: PoolView[] = [];
    for (const plan of this.#inForce) {
      const pool = this.#pools.get(keyOf(plan));
      if (pool !== undefined)
        views.push({ plan, endpoints: [...pool.endpoints.values()].map((h) => h.view) });
    }
    return views;
  }

  ejections(name: string, endpoint: string): ReadonlyMap<FailureKind, number> | undefined {
    return this.#ejections.get(name)?.get(endpoint);
  }

  close(): void {
    for (const pool of this.#pools.values()) this.#stop(pool);
    this.#pools.clear();
    this.#clock.clearTimeout(this.#flush);
  }

  /** A new endpoint list; resolves once the new endpoints had their first check. */
  async #discovered(pool: Pool, found: DiscoveredEndpoint[], announce: boolean): Promise<void> {
    if (pool.closed) return;
    const now = this.#clock.now();
    const next = new Map<string, EndpointHealth>();
    const fresh: EndpointHealth[] = [];
    for (const endpoint of found) {
      const id = endpointId(endpoint.host, endpoint.port);
      let health = pool.endpoints.get(id) ?? next.get(id);
      if (health === undefined) {
        const view: EndpointView = {
          id,
          host: endpoint.host,
          port: endpoint.port,
          protocol: endpoint.protocol,
          ...(endpoint.servername === undefined ? {} : { servername: endpoint.servername }),
          weight: endpoint.weight,
          priority: endpoint.priority,
          state: 'unknown',
          reason: '',
          since: now,
        };
        health = new EndpointHealth(view, pool.plan.healthCheck);
        fresh.push(health);
      } else {
        // An SRV record may change an address's weight or priority and keep its port.
        health.view.weight = endpoint.weight;
        health.view.priority = endpoint.priority;
      }
      next.set(id, health);
    }
    for (const [id, health] of pool.endpoints) if (!next.has(id)) this.#forget(health);
    pool.endpoints = next;
    if (announce) this.#changed(pool);
    if (pool.plan.healthCheck !== null) await Promise.all(fresh.map((health) => this.#check(pool, health)));
  }

  /** Checks `health` now, applies the result, and schedules the next check. */
  async #check(pool: Pool, health: EndpointHealth): Promise<void> {
    const check = pool.plan.healthCheck;
    if (check === null || health.checking) return;
    health.checking = true;
    this.#clock.clearTimeout(health.checkTimer);
    const result = await this.#probe(health.view, check, pool.plan.tls);
    health.checking = false;
    if (pool.closed || pool.endpoints.get(health.view.id) !== health) return;
    const before = health.view.state;
    if (health.checked(result.pass, result.detail, this.#clock.now())) this.#changed(pool, health, before);
    const delay = check.intervalMs * (1 + JITTER * this.#clock.random());
    health.checkTimer = this.#clock.setTimeout(() => void this.#check(pool, health), delay);
  }

  /**
   * A worker's outlier report. The first report of an episode ejects (in every running pool
   * of that name that has the endpoint); the others of the same episode find it ejected.
   */
  #report(name: string, endpoint: string, reason: FailureKind): void {
    let length = 0;
    let nth = 0;
    for (const pool of this.#pools.values()) {
      if (pool.closed || pool.plan.name !== name) continue;
      const health = pool.endpoints.get(endpoint);
      const outlier = pool.plan.outlier;
      // Not in use (ejected already, unhealthy, unchecked) or detection off: nothing to decide.
      if (health === undefined || outlier.consecutiveFailures === 0 || health.view.state !== 'healthy')
        continue;
      let ejected = 0;
      for (const other of pool.endpoints.values()) if (other.ejected) ejected++;
      // At least one may always go; beyond that, never more than the share.
      if (ejected > 0 && (ejected + 1) * 100 > outlier.maxEjectionPercent * pool.endpoints.size) {
        this.#logger.debug(
          { upstream: name, endpoint, ejected },
          'not ejected: max_ejection_percent reached',
        );
        continue;
      }
      const before = health.view.state;
      length = health.eject(reason, outlier, this.#clock.now());
      nth = health.ejections;
      health.ejectTimer = this.#clock.setTimeout(() => this.#ejectionOver(pool, health), length);
      this.#changed(pool, health, before);
    }
    if (length === 0) return;
    const why = [...this.#pools.values()].find((p) => p.plan.name === name)?.endpoints.get(endpoint)
      ?.view.reason;
    const counts = this.#ejections.get(name) ?? new Map<string, Map<FailureKind, number>>();
    this.#ejections.set(name, counts);
    const byReason = counts.get(endpoint) ?? new Map<FailureKind, number>();
    counts.set(endpoint, byReason);
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    this.#logger.warn(
      { upstream: name, endpoint, reason, ejection: nth, ejected_ms: length },
      `upstream endpoint ${endpoint} of ${name} ${why ?? 'ejected'}`,
    );
  }

  #ejectionOver(pool: Pool, health: EndpointHealth): void {
    health.ejectTimer = undefined;
    if (pool.closed || pool.endpoints.get(health.view.id) !== health) return;
    const before = health.view.state;
    if (health.ejectionOver(this.#clock.now())) this.#changed(pool, health, before);
    // It must pass a check to come back: check now rather than at the next round.
    if (health.awaitingCheck) void this.#check(pool, health);
  }

  /** Logs a transition worth a line and queues the pool's broadcast. */
  #changed(pool: Pool, health?: EndpointHealth, before?: string): void {
    if (health !== undefined && before !== health.view.state) {
      const { id, state, reason } = health.view;
      const fields = { upstream: pool.plan.name, endpoint: id, state, reason };
      if (state === 'unhealthy')
        this.#logger.error(fields, `upstream endpoint ${id} of ${pool.plan.name} is unhealthy: ${reason}`);
      else if (state === 'healthy' && before !== 'unknown')
        this.#logger.info(fields, `upstream endpoint ${id} of ${pool.plan.name} is healthy again`);
    }
    this.#dirty.add(pool);
    this.#flush ??= this.#clock.setTimeout(() => {
      this.#flush = undefined;
      for (const dirty of this.#dirty) if (!dirty.closed) this.#broadcast(this.#message(dirty));
      this.#dirty.clear();
    }, BROADCAST_DELAY_MS);
  }

  #forget(health: EndpointHealth): void {
    this.#clock.clearTimeout(health.checkTimer);
    this.#clock.clearTimeout(health.ejectTimer);
  }

  #stop(pool: Pool): void {
    pool.closed = true;
    pool.discovery.close();
    for (const health of pool.endpoints.values()) this.#forget(health);
  }

  #message(pool: Pool): UpstreamPrimaryToWorker {
    return {
      type: 'portico:endpoints',
      upstream: pool.plan.name,
      fingerprint: pool.plan.fingerprint,
      endpoints: [...pool.endpoints.values()].map((health) => health.view),
    };
  }
}
