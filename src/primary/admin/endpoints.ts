import { GatewayError } from '../../shared/errors.js';
import type { ReloadOutcome } from '../reload.js';
import type { WorkerTable } from '../worker-table.js';
import type { RouteView } from './routes.js';
import type { AdminEndpoint } from './server.js';

/** `GET /admin/config`: which config runs. */
export interface ConfigView {
  hash: string;
  /** The config file's path, or `<inline config>`. */
  source: string;
  loaded_at: string;
  /** The last reload's outcome; null until the first. */
  last_reload: Omit<ReloadOutcome, 'hash'> | null;
}

const SHUTTING_DOWN = new GatewayError('PORTICO_ERR_SHUTTING_DOWN');
const NOT_READY = {
  starting: new GatewayError('PORTICO_ERR_NOT_READY', { message: 'not ready: workers starting' }),
  draining: new GatewayError('PORTICO_ERR_NOT_READY', { message: 'not ready: draining' }),
};

/** The endpoints the supervisor answers itself: health, readiness and what runs. */
export function supervisorEndpoints(state: {
  workers: WorkerTable;
  config: () => ConfigView;
  routes: () => readonly RouteView[];
  reload: () => Promise<ReloadOutcome>;
}): AdminEndpoint[] {
  const { workers } = state;
  return [
    { method: 'GET', path: '/healthz', handle: () => ({ json: { status: 'ok' } }) },
    {
      method: 'GET',
      path: '/readyz',
      handle() {
        const now = workers.state();
        if (now !== 'ready') throw NOT_READY[now];
        return { json: { status: 'ready', workers: workers.count } };
      },
    },
    { method: 'GET', path: '/admin/config', handle: () => ({ json: state.config() }) },
    {
      method: 'POST',
      path: '/admin/reload',
      async handle() {
        // Draining workers would refuse the new tree anyway: the instance is going away.
        if (workers.state() === 'draining') throw SHUTTING_DOWN;
        const { result, hash, errors } = await state.reload();
        return result === 'failure' ? { status: 422, json: { result, errors } } : { json: { result, hash } };
      },
    },
    { method: 'GET', path: '/admin/routes', handle: () => ({ json: { routes: state.routes() } }) },
    {
      method: 'GET',
      path: '/admin/workers',
      handle: async () => ({ json: { workers: await workers.view() } }),
    },
  ];
}
