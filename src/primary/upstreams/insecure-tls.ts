import type { Logger } from 'pino';
import type { UpstreamPlan } from '../../shared/plan/types.js';

/**
 * Issue 15: `insecure_skip_verify` must never go unnoticed. Warns for each upstream of
 * `next` that skips verification when `before` (the config in force until now; empty at
 * start) did not have it: at start, and on the reload that turns it on, not on every reload.
 */
export function warnInsecureUpstreams(
  logger: Logger,
  before: readonly UpstreamPlan[],
  next: readonly UpstreamPlan[],
): void {
  const already = new Set(before.filter((u) => u.tls.insecureSkipVerify).map((u) => u.name));
  for (const upstream of next) {
    if (!upstream.tls.insecureSkipVerify || already.has(upstream.name)) continue;
    logger.warn(
      { upstream: upstream.name },
      `upstream ${upstream.name}: tls.insecure_skip_verify is on: its certificates are not verified, anyone on the path can impersonate it`,
    );
  }
}
