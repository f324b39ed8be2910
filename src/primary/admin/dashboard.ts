import type { Config } from '../../shared/config/schema.js';
import { metricsSettings, redisConnectionPlan, tracingSettings } from '../../shared/config/settings.js';
import type { DashboardCollector } from '../dashboard/collector.js';
import { SAMPLE_SECONDS, SAMPLES } from '../dashboard/traffic.js';
import type { WorkerTable } from '../worker-table.js';
import type { ConfigView } from './endpoints.js';
import type { RouteView } from './routes.js';
import type { AdminEndpoint } from './server.js';

/** What the dashboard endpoints read. */
export interface DashboardState {
  collector: DashboardCollector;
  workers: WorkerTable;
  config: () => Config;
  configView: () => ConfigView;
  routes: () => readonly RouteView[];
  startedAt: number;
}

const uptime = (since: number, now: number) => Math.round((now - since) / 1000);

/**
 * The sections of `GET /admin/overview`, by name: a new fact for the page (say the Redis
 * role) is one more line in its section, or one more section here.
 */
const OVERVIEW_SECTIONS: Record<string, (state: DashboardState, now: number) => unknown> = {
  instance: (s, now) => ({
    pid: process.pid,
    started_at: new Date(s.startedAt).toISOString(),
    uptime_seconds: uptime(s.startedAt, now),
    node: process.version,
  }),
  workers: async (s, now) =>
    (await s.workers.view()).map((w) => ({
      ...w,
      uptime_seconds: w.started_at === null ? null : uptime(Date.parse(w.started_at), now),
      event_loop_delay_ms: round(s.collector.report(w.pid)?.loop_delay_ms ?? null),
    })),
  config: (s) => s.configView(),
  rate_limit: (s) => {
    const config = s.config();
    const used = config.routes.some((r) => r.middleware.includes('ratelimit'));
    const up = s.collector.statusValues('ratelimit_store_up');
    const redis = used ? redisConnectionPlan(config) : undefined;
    return {
      store: !used ? 'none' : redis !== undefined ? 'redis' : 'embedded',
      // standalone, sentinel or cluster; null without Redis.
      deployment: redis?.mode ?? null,
      // The worst worker's view: false when any runs on its local fallback; null: not known yet.
      reachable: up.length === 0 ? null : up.every((v) => v === true),
    };
  },
  tracing: (s) => {
    const settings = tracingSettings(s.config());
    const exports = s.collector.statusValues('tracing_export');
    return {
      enabled: settings !== undefined,
      endpoint: settings?.endpoint ?? null,
      // 'failing' when any worker's last export failed; 'idle' before the first export.
      export:
        settings === undefined
          ? null
          : exports.includes('failing')
            ? 'failing'
            : exports.length
              ? 'ok'
              : 'idle',
    };
  },
};

function round(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms * 10) / 10;
}

/** `GET /admin/overview`, `/admin/traffic`, `/admin/errors`: what the dashboard page shows. */
export function dashboardEndpoints(state: DashboardState): AdminEndpoint[] {
  return [
    {
      method: 'GET',
      path: '/admin/overview',
      async handle() {
        const now = Date.now();
        const entries = await Promise.all(
          Object.entries(OVERVIEW_SECTIONS).map(async ([name, section]) => [name, await section(state, now)]),
        );
        return { json: Object.fromEntries(entries) as unknown };
      },
    },
    {
      method: 'GET',
      path: '/admin/traffic',
      handle() {
        const counted = metricsSettings(state.config()) !== undefined;
        const { traffic } = state.collector;
        const routes = state.routes().map((route) => {
          const metrics = counted && route.middleware.includes('metrics');
          return { ...route, metrics, traffic: metrics ? traffic.view(route.path) : null };
        });
        return {
          json: {
            interval_seconds: SAMPLE_SECONDS,
            window_seconds: SAMPLE_SECONDS * SAMPLES,
            samples: traffic.ticks,
            routes,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/admin/errors',
      handle: () => ({
        json: {
          errors: state.collector.errors().map((e) => ({ ...e, time: new Date(e.time).toISOString() })),
        },
      }),
    },
  ];
}

/** The route paths whose traffic is counted under `config` (the `metrics` middleware, metrics on). */
export function countedPaths(config: Config): Set<string> {
  if (metricsSettings(config) === undefined) return new Set();
  return new Set(config.routes.filter((r) => r.middleware.includes('metrics')).map((r) => r.path));
}
