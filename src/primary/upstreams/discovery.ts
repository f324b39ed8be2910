import type { Logger } from 'pino';
import type { TargetPlan, UpstreamPlan } from '../../shared/plan/types.js';
import type { EndpointView } from '../../shared/upstream-messages.js';
import { dnsFailureCounter } from './dns-failures.js';
import { isAddress, type ResolvedAddress, type Resolver, resolverFor } from './resolver.js';

/*
 * Turns a pool's targets into endpoints: an IP target is one endpoint as is; a hostname is
 * one endpoint per A/AAAA address; an SRV name gives hosts (resolved again to addresses),
 * ports, priorities and weights. Runs in the primary, once per instance; the registry
 * (registry.ts) owns health.
 *
 * Names are resolved again per `discovery.dns_refresh`. A failed or empty answer keeps the
 * target's last good endpoints (serve stale: a DNS outage must not empty a pool that works)
 * and is logged once, with one more line when the name resolves again.
 */

/** One address (and port) the pool can send to. */
export type DiscoveredEndpoint = Pick<
  EndpointView,
  'host' | 'port' | 'protocol' | 'servername' | 'weight' | 'priority'
>;

export interface Discovery {
  /**
   * Resolves every target once (bounded in time) and returns the endpoints; afterwards
   * calls `onChange` with the whole new list whenever it changes.
   */
  start(onChange: (endpoints: DiscoveredEndpoint[]) => void): Promise<DiscoveredEndpoint[]>;
  close(): void;
}

export interface DiscoveryOptions {
  /** Default: the system's, or `discovery.resolvers` when set. */
  resolver?: Resolver;
  /** How long `start()` waits for the first answers; later ones join through `onChange`. */
  startTimeoutMs?: number;
}

const START_TIMEOUT_MS = 5_000;
/** `dns_refresh: ttl` keeps an answer this long at least and at most (the clamp). */
const MIN_REFRESH_MS = 1_000;
const MAX_REFRESH_MS = 300_000;
/**
 * Refresh for answers without a TTL: the system lookup's (/etc/hosts) and SRV records, whose
 * TTL Node's resolver does not report. Envoy's default DNS refresh rate.
 */
const UNKNOWN_TTL_MS = 5_000;
/** After a failure: retry in 1 s, doubling up to this (or the fixed `dns_refresh`). */
const MAX_RETRY_MS = 30_000;

interface Resolution {
  endpoints: DiscoveredEndpoint[];
  /** Shortest TTL of the answer (ms); `null` when none was given. */
  ttlMs: number | null;
}

/** A hostname or SRV target, resolved again and again. */
interface Watch {
  readonly target: TargetPlan;
  /** The last good answer (empty until the first). */
  endpoints: DiscoveredEndpoint[];
  /** The last round failed: logged once, cleared (and logged) by the next success. */
  failing: boolean;
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** `portico_upstream_dns_failures_total` of this target. */
  readonly counter: ReturnType<typeof dnsFailureCounter>;
}

export function createDiscovery(
  upstream: UpstreamPlan,
  logger: Logger,
  options: DiscoveryOptions = {},
): Discovery {
  const resolver = options.resolver ?? resolverFor(upstream.discovery.resolvers);
  const startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  const { dnsRefresh } = upstream.discovery;
  const fixed: DiscoveredEndpoint[][] = [];
  const watches: Watch[] = [];
  for (const target of upstream.targets) {
    if (target.discovery === 'address') fixed.push([addressEndpoint(target)]);
    else
      watches.push({
        target,
        endpoints: [],
        failing: false,
        failures: 0,
        timer: undefined,
        counter: dnsFailureCounter(upstream.name, target.url),
      });
  }
  let closed = false;
  let notify: ((endpoints: DiscoveredEndpoint[]) => void) | undefined;
  let published = '';

  const current = (): DiscoveredEndpoint[] => {
    const seen = new Set<string>();
    const all: DiscoveredEndpoint[] = [];
    // Two targets naming the same address and port are one endpoint: the first one's.
    for (const list of [...fixed, ...watches.map((w) => w.endpoints)]) {
      for (const endpoint of list) {
        const key = `${endpoint.host}\u0000${endpoint.port}`;
        if (seen.has(key)) continue;
        seen.add(key);
        all.push(endpoint);
      }
    }
    return all;
  };

  const publish = (): void => {
    if (notify === undefined) return;
    const endpoints = current();
    const key = JSON.stringify(endpoints);
    if (key === published) return;
    published = key;
    logger.info(
      { endpoints: endpoints.map((e) => `${e.host}:${e.port}`) },
      'upstream endpoints changed (DNS)',
    );
    notify(endpoints);
  };

  const schedule = (watch: Watch, ms: number): void => {
    if (closed) return;
    watch.timer = setTimeout(() => void round(watch), ms);
    watch.timer.unref();
  };

  const refreshMs = (ttlMs: number | null): number =>
    dnsRefresh === 'ttl'
      ? Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, ttlMs ?? UNKNOWN_TTL_MS))
      : dnsRefresh;

  /** Logs the first failure of a run of them; the rest are counted only. */
  const failed = (watch: Watch, reason: string): void => {
    if (!watch.failing) {
      watch.failing = true;
      const kept = watch.endpoints.length;
      logger.error(
        { target: watch.target.url, reason },
        kept > 0
          ? `cannot resolve upstream target ${watch.target.url} (${reason}): keeping its last ${kept} endpoint(s) until it resolves again`
          : `cannot resolve upstream target ${watch.target.url} (${reason}): it has no endpoints until it resolves; retrying`,
      );
    }
  };

  /** One resolution of `watch`, then the next one scheduled. Never rejects. */
  const round = async (watch: Watch): Promise<void> => {
    watch.timer = undefined;
    let next: number;
    try {
      const found = await resolveTarget(resolver, watch.target);
      if (closed) return;
      watch.endpoints = found.endpoints;
      watch.failures = 0;
      if (watch.failing) {
        watch.failing = false;
        logger.info(
          { target: watch.target.url, endpoints: found.endpoints.length },
          `upstream target ${watch.target.url} resolves again: ${found.endpoints.length} endpoint(s)`,
        );
      }
      next = refreshMs(found.ttlMs);
      publish();
    } catch (err) {
      if (closed) return;
      watch.failures++;
      watch.counter.failed();
      failed(watch, (err as Error).message);
      const retry = Math.min(MAX_RETRY_MS, MIN_REFRESH_MS * 2 ** (watch.failures - 1));
      next = dnsRefresh === 'ttl' ? retry : Math.min(retry, dnsRefresh);
    }
    schedule(watch, next);
  };

  return {
    async start(onChange) {
      const firsts = watches.map(async (watch) => {
        await round(watch);
        return watch;
      });
      const settled = new Set<Watch>();
      for (const first of firsts) void first.then((watch) => settled.add(watch));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(firsts),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, startTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      for (const watch of watches) {
        if (settled.has(watch) || closed) continue;
        // Still waiting on a dead resolver: start without this target; its round goes on.
        failed(watch, `no answer within ${startTimeoutMs / 1000} s`);
      }
      const endpoints = current();
      published = JSON.stringify(endpoints);
      notify = onChange;
      return endpoints;
    },
    close() {
      closed = true;
      notify = undefined;
      for (const watch of watches) {
        clearTimeout(watch.timer);
        watch.counter.release();
      }
      resolver.cancel();
    },
  };
}

function addressEndpoint(target: TargetPlan): DiscoveredEndpoint {
  return {
    host: target.host,
    port: target.port,
    protocol: target.protocol,
    weight: target.weight,
    priority: 0,
  };
}

/** Sorted so that a resolver that rotates its answers does not look like a change. */
const byAddress = (a: DiscoveredEndpoint, b: DiscoveredEndpoint): number =>
  a.priority - b.priority || a.port - b.port || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0);

function shortest(addresses: ResolvedAddress[], floor: number | null): number | null {
  let ttl = floor;
  for (const { ttl: seconds } of addresses) {
    if (seconds !== null && (ttl === null || seconds * 1000 < ttl)) ttl = seconds * 1000;
  }
  return ttl;
}

async function resolveTarget(resolver: Resolver, target: TargetPlan): Promise<Resolution> {
  if (target.discovery === 'dns') {
    const addresses = await resolver.resolveAddresses(target.host);
    const endpoints = addresses.map(({ address }) => ({
      host: address,
      port: target.port,
      protocol: target.protocol,
      servername: target.host,
      weight: target.weight,
      priority: 0,
    }));
    return { endpoints: endpoints.sort(byAddress), ttlMs: shortest(addresses, null) };
  }
  // SRV: each record's host is resolved again to its addresses, with the same resolver (the
  // additional section that may carry them is not exposed by Node's resolver). A host that
  // fails leaves its records out; only when every host fails is the round a failure.
  const records = await resolver.resolveService(target.host);
  const hosts = [...new Set(records.filter((r) => !isAddress(r.host)).map((r) => r.host))];
  const resolved = await Promise.allSettled(hosts.map((host) => resolver.resolveAddresses(host)));
  const byHost = new Map<string, ResolvedAddress[]>();
  let firstError: Error | undefined;
  hosts.forEach((host, i) => {
    const outcome = resolved[i];
    if (outcome?.status === 'fulfilled') byHost.set(host, outcome.value);
    else firstError ??= outcome?.reason as Error;
  });
  const endpoints: DiscoveredEndpoint[] = [];
  // SRV TTLs are not reported: the records are read again at least every UNKNOWN_TTL_MS.
  let ttlMs: number | null = UNKNOWN_TTL_MS;
  for (const record of records) {
    const addresses: ResolvedAddress[] = isAddress(record.host)
      ? [{ address: record.host, family: record.host.includes(':') ? 6 : 4, ttl: null }]
      : (byHost.get(record.host) ?? []);
    ttlMs = shortest(addresses, ttlMs);
    for (const { address } of addresses) {
      endpoints.push({
        host: address,
        port: record.port,
        protocol: target.protocol,
        servername: record.host,
        // SRV weight 0 means "rarely" (RFC 2782); the balancers need a positive weight.
        weight: Math.max(1, record.weight) * target.weight,
        priority: record.priority,
      });
    }
  }
  if (endpoints.length === 0)
    throw firstError ?? new Error(`${target.host}: the SRV records name no address`);
  return { endpoints: endpoints.sort(byAddress), ttlMs };
}
