import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../shared/config/schema.js';
import { isWorkerToPrimary, type PrimaryToWorker } from '../shared/messages.js';
import { RespawnBackoff } from './backoff.js';
import { PRIMARY_SERVICES, type RunningService } from './services.js';

export interface SupervisorOptions {
  config: Config;
  logger: Logger;
  /** Extra environment for workers (e.g. the config text, so all workers use the same bytes). */
  workerEnv: Record<string, string>;
}

/**
 * The primary process: forks the workers, respawns any that die (with backoff, so a crash
 * loop does not spin a core), and on SIGTERM/SIGINT asks them all to drain, then exits 0.
 */
export async function runPrimary({ config, logger, workerEnv }: SupervisorOptions): Promise<void> {
  const services: { name: string; running: RunningService }[] = [];
  for (const service of PRIMARY_SERVICES) {
    const running = await service.start({ config, logger });
    if (running) services.push({ name: service.name, running });
  }
  const count = config.server.workers === 'auto' ? availableParallelism() : config.server.workers;
  const backoff = new RespawnBackoff();
  const ready = new Set<number>();
  let shuttingDown = false;
  let announced = false;
  const pending = new Set<NodeJS.Timeout>();

  const fork = (slot: number): Worker => {
    const worker = cluster.fork({ ...workerEnv, PORTICO_WORKER_SLOT: String(slot) });
    const startedAt = Date.now();
    worker.on('message', (message: unknown) => {
      if (!isWorkerToPrimary(message) || message.type !== 'portico:ready') return;
      ready.add(slot);
      if (!announced && ready.size === count) {
        announced = true;
        logger.info({ port: config.server.port, host: config.server.host, workers: count }, 'portico ready');
      }
    });
    worker.on('exit', (code, signal) => {
      ready.delete(slot);
      if (shuttingDown) return;
      const delay = backoff.next(slot, Date.now() - startedAt);
      logger.error(
        { worker: worker.process.pid, code, signal, respawn_in_ms: delay },
        'worker died; respawning',
      );
      for (const { running } of services) running.workerDied?.({ slot, code, signal });
      // Not unref'd: while every worker is waiting to respawn, this timer is what keeps the
      // primary alive. Shutdown clears it.
      const timer = setTimeout(() => {
        pending.delete(timer);
        fork(slot);
      }, delay);
      pending.add(timer);
    });
    return worker;
  };

  for (let slot = 0; slot < count; slot++) fork(slot);

  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      if (shuttingDown) return;
      shuttingDown = true;
      for (const timer of pending) clearTimeout(timer);
      logger.info({ signal }, 'shutting down: draining workers');
      const message: PrimaryToWorker = { type: 'portico:shutdown' };
      for (const worker of Object.values(cluster.workers ?? {})) {
        if (worker?.isConnected()) worker.send(message);
      }
      // Workers bound their own drain; this is the backstop if one is stuck.
      const backstop = setTimeout(() => {
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      }, config.server.drain_timeout + 5_000);
      backstop.unref();
      const check = () => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearTimeout(backstop);
          logger.info('all workers stopped');
          resolve();
        }
      };
      cluster.on('exit', check);
      check();
    };
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    process.on('SIGINT', () => shutdown('SIGINT'));
  });
  for (const service of services.reverse()) {
    await service.running
      .close()
      .catch((err: unknown) => logger.warn({ err, service: service.name }, 'service close failed'));
  }
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
}
