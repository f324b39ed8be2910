import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { deprecatedKeyWarnings } from '../../shared/config/deprecated-keys.js';
import type { Config } from '../../shared/config/schema.js';
import { metricsSettings } from '../../shared/config/settings.js';
import type { ReloadOutcome } from '../reload.js';
import type { RunningService } from '../services.js';
import type { WorkerTable } from '../worker-table.js';
import { DashboardCollector } from '../dashboard/collector.js';
import { countedPaths, dashboardEndpoints } from './dashboard.js';
import { type ConfigView, supervisorEndpoints } from './endpoints.js';
import { pageEndpoints } from './page.js';
import { routesInMatchOrder, type RouteView } from './routes.js';
import { type AdminEndpoint, startAdminListener, urlOf } from './server.js';

export interface RunningAdmin extends RunningService {
  url: string;
  /** The routes in match order, as `/admin/routes` lists them. */
  readonly routes: readonly RouteView[];
  /** A reload put `config` in force. */
  applied(config: Config, hash: string): void;
  /** A reload ended (whatever its result). */
  reloaded(outcome: ReloadOutcome): void;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 ? host.startsWith('127.') : host.toLowerCase().startsWith('::ffff:127.');
}

/**
 * Opens the admin listener with the supervisor's endpoints plus those of the primary's
 * services (metrics). Warns about deprecated keys and an admin API reachable from other
 * machines without a token.
 */
export async function startAdmin(env: {
  config: Config;
  /** The config file's path, or `<inline config>`. */
  source: string;
  workers: WorkerTable;
  serviceEndpoints: readonly AdminEndpoint[];
  logger: Logger;
  reload: () => Promise<ReloadOutcome>;
}): Promise<RunningAdmin> {
  const { config, logger } = env;
  const { host, port, token } = config.admin;
  for (const { msg, key, replacement } of deprecatedKeyWarnings(config))
    logger.warn({ key, replacement }, msg);
  if (token === undefined && !isLoopback(host)) {
    logger.warn(
      { host, port },
      'admin listener reachable from other machines without admin.token: anyone who can connect can read /admin/*',
    );
  }
  let routes = routesInMatchOrder(config);
  let current = config;
  let counted = countedPaths(config);
  const collector = new DashboardCollector(() => counted, logger);
  const view: ConfigView = {
    hash: env.workers.activeHash,
    source: env.source,
    loaded_at: new Date().toISOString(),
    last_reload: null,
  };
  const alias = config.metrics?.prometheus.port;
  let metricsPath = metricsSettings(config)?.path;
  const server = await startAdminListener(
    {
      host,
      port,
      token,
      setting: alias === port ? 'metrics.prometheus.port' : 'admin.port',
      metricsPath: () => metricsPath,
    },
    [
      ...supervisorEndpoints({
        workers: env.workers,
        config: () => view,
        routes: () => routes,
        reload: env.reload,
      }),
      ...env.serviceEndpoints,
      ...dashboardEndpoints({
        collector,
        workers: env.workers,
        config: () => current,
        configView: () => view,
        routes: () => routes,
        startedAt: Date.now() - process.uptime() * 1000,
      }),
      ...pageEndpoints(),
    ],
    logger,
  ).catch((err: unknown) => {
    collector.close();
    throw err;
  });
  const url = urlOf(host, port);
  logger.info({ url, token: token !== undefined }, 'admin listener ready');
  return {
    url,
    get routes() {
      return routes;
    },
    applied(next, hash) {
      routes = routesInMatchOrder(next);
      current = next;
      counted = countedPaths(next);
      metricsPath = metricsSettings(next)?.path;
      view.hash = hash;
      view.loaded_at = new Date().toISOString();
    },
    reloaded({ at, result, errors }) {
      view.last_reload = { at, result, errors };
    },
    async close() {
      collector.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
