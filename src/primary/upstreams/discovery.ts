import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { TargetPlan, UpstreamPlan } from '../../shared/plan/types.js';

/*
 * Turns a pool's targets into endpoints: an IP target is one endpoint as is; a hostname is
 * one endpoint per address it resolves to; an SRV name gives hosts, ports, priorities and
 * weights. Runs in the primary, once per instance; the registry (registry.ts) owns health.
 *
 * SKELETON (issue 13): hostnames are resolved once with the system resolver and SRV is not
 * supported yet; the DNS discovery work replaces this module's internals (TTL refresh, SRV,
 * `discovery.resolvers`, serve-stale) behind the same interface.
 */

/** One address (and port) the pool can send to. */
export interface DiscoveredEndpoint {
  host: string;
  port: number;
  protocol: 'http:' | 'https:';
  /** TLS server name: the target's hostname (absent for IP targets). */
  servername?: string;
  weight: number;
  /** SRV priority, 0 for other targets. */
  priority: number;
}

export interface Discovery {
  /**
   * Resolves every target once (bounded in time) and returns the endpoints; afterwards
   * calls `onChange` with the whole new list whenever it changes.
   */
  start(onChange: (endpoints: DiscoveredEndpoint[]) => void): Promise<DiscoveredEndpoint[]>;
  close(): void;
}

export function createDiscovery(upstream: UpstreamPlan, logger: Logger): Discovery {
  return {
    async start() {
      const lists = await Promise.all(upstream.targets.map((target) => resolveTarget(target, logger)));
      return lists.flat();
    },
    close() {},
  };
}

async function resolveTarget(target: TargetPlan, logger: Logger): Promise<DiscoveredEndpoint[]> {
  const base = { port: target.port, protocol: target.protocol, weight: target.weight, priority: 0 };
  switch (target.discovery) {
    case 'address':
      return [{ host: target.host, ...base }];
    case 'dns':
      try {
        const addresses = await lookup(target.host, { all: true });
        return addresses.map(({ address }) => ({ host: address, servername: target.host, ...base }));
      } catch (err) {
        logger.error({ err: (err as Error).message, target: target.url }, 'cannot resolve upstream target');
        return [];
      }
    case 'srv':
      logger.error({ target: target.url }, 'srv:// targets are not supported yet');
      return [];
  }
}
