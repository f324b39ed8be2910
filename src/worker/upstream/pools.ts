import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { Plan } from '../../shared/plan/types.js';
import type { UpstreamWorkerToPrimary } from '../../shared/upstream-messages.js';
import { ResourceKind, type WorkerResources } from '../resources.js';
import type { BreakerInstruments } from './breaker.js';
import type { EndpointDirectory } from './directory.js';
import type { UpstreamRequests } from './request-counts.js';
import { type RetryCounters, UpstreamPool } from './pool.js';

const POOL = new ResourceKind<UpstreamPool>('upstream pool');

function report(message: UpstreamWorkerToPrimary): void {
  if (process.connected) process.send?.(message);
}

/**
 * The pools of a plan's upstreams, by name: one per worker and upstream settings, shared
 * with every other handler tree of this worker whose plan has the same upstream (a reload
 * that leaves an upstream alone keeps its pool, sockets and counts), fed by `directory`.
 */
export function upstreamPools(
  plan: Plan,
  env: {
    resources: WorkerResources;
    directory: EndpointDirectory;
    logger: Logger;
    requests: UpstreamRequests | undefined;
    retryCounters?: RetryCounters | undefined;
    tlsErrors?: Counter<'upstream' | 'reason'> | undefined;
    breaker: BreakerInstruments | undefined;
  },
): Map<string, UpstreamPool> {
  const pools = new Map<string, UpstreamPool>();
  for (const upstream of plan.upstreams) {
    // Metrics on or off is part of the key: a pool counts into the registry it was made with.
    const key = `${upstream.name}\u0000${upstream.fingerprint}\u0000${env.requests === undefined ? '-' : 'm'}`;
    const pool = env.resources.shared(POOL, key, (own) => {
      const created = new UpstreamPool({
        plan: upstream,
        logger: env.logger,
        requests: env.requests,
        retryCounters: env.retryCounters,
        tlsErrors: env.tlsErrors,
        breaker: env.breaker,
        report,
      });
      const detach = env.directory.attach(created, upstream.fingerprint);
      own.onClose('upstream pool', () => {
        detach();
        created.close();
      });
      return created;
    });
    pools.set(upstream.name, pool);
  }
  return pools;
}
