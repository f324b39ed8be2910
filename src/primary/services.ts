import type { Logger } from 'pino';
import type { Config } from '../shared/config/schema.js';
import type { Plan } from '../shared/plan/types.js';
import type { AdminEndpoint } from './admin/server.js';
import type { ReloadOutcome } from './reload.js';
import { metricsService } from './metrics/service.js';
import { embeddedRateLimitStore } from './ratelimit/embedded-store.js';
import type { UpstreamHealthSource } from './upstreams/registry.js';

/** A started service. */
export interface RunningService {
  close(): Promise<void>;
  /** What this service answers on the admin listener. */
  endpoints?: AdminEndpoint[];
  /** A worker died outside shutdown and is about to be respawned. */
  workerDied?(event: { slot: number; code: number | null; signal: string | null }): void;
  /** A reload ended (success, failure or unchanged). */
  reloaded?(outcome: ReloadOutcome): void;
  /** A reload put `plan` in force (issue 15: the certificates it serves). */
  planApplied?(plan: Plan): void;
}

/**
 * Something the primary runs beside its workers (the metrics aggregator, the embedded
 * rate-limit store…). Started before the workers are forked, closed after they all exit.
 */
export interface PrimaryService {
  name: string;
  /** Returns undefined when the config does not need this service. */
  start(env: {
    config: Config;
    plan: Plan;
    logger: Logger;
    upstreams: UpstreamHealthSource;
  }): Promise<RunningService | undefined>;
}

/** The primary's services, in start order. */
export const PRIMARY_SERVICES: readonly PrimaryService[] = [embeddedRateLimitStore, metricsService];
