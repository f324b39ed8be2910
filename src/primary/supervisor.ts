import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../shared/config/schema.js';
import { isWorkerToPrimary, type PrimaryToWorker } from '../shared/messages.js';
import { isUpstreamWorkerToPrimary, type UpstreamPrimaryToWorker } from '../shared/upstream-messages.js';
import type { Plan } from '../shared/plan/types.js';
import { cannotListen, StartupError } from '../shared/startup-error.js';
import { startAdmin } from './admin/index.js';
import { upstreamsEndpoint } from './admin/upstreams.js';
import { describeRoute } from './admin/routes.js';
import { urlOf } from './admin/server.js';
import { RespawnBackoff } from './backoff.js';
import { CrashLoopDetector } from './crash-loop.js';
import { guardConnectionHandoffs } from './handoff-guard.js';
import { PRIMARY_SERVICES, type RunningService } from './services.js';
import { configWatch } from './reload-triggers.js';
import { warnExpiringCertificates } from './tls-expiry.js';
import { type Planned, ReloadCoordinator } from './reload.js';
import { UpstreamRegistry } from './upstreams/registry.js';
import { WorkerTable } from './worker-table.js';

export interface SupervisorOptions {
  config: Config;
  /** What every worker runs; sent to each when it asks (`portico:plan-request`). */
  plan: Plan;
  /** Issue 15: the TLS files the config names, watched like the config file. */
  tlsFiles?: string[];
  logger: Logger;
  /** Reads and plans the config source again, exactly as at start (reload). */
  load: () => Promise<Planned>;
}

type StartedService = { name: string; running: RunningService };

/**
 * The primary process: forks the workers, respawns any that die (with backoff, so a crash
 * loop does not spin a core), and on SIGTERM/SIGINT asks them all to drain, then resolves.
 * It rejects with a `StartupError` (after stopping every worker and service) when the
 * instance cannot run: a listener that cannot listen, or workers that keep dying.
 */
export async function runPrimary({
  config,
  plan,
  tlsFiles = [],
  logger,
  load,
}: SupervisorOptions): Promise<void> {
  /** The config in force: replaced by each successful reload. */
  let current: Planned = { config, plan, tlsFiles };
  const count = workerCount(plan);
  // The plan's hash names the config every worker runs (admin API, readiness).
  const workers = new WorkerTable(count, plan.hash);
  const services: StartedService[] = [];
  /** Sends to every live worker; returns how many it reached. */
  const broadcast = (message: PrimaryToWorker | UpstreamPrimaryToWorker): number => {
    let sent = 0;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker?.isConnected()) {
        worker.send(message);
        sent++;
      }
    }
    return sent;
  };
  const upstreams = new UpstreamRegistry(logger, broadcast);
  // A reload asked for while the first health-check round runs waits for the workers to be
  // forked: it would otherwise fork its own beside them.
  let forked!: () => void;
  const started = new Promise<void>((resolve) => (forked = resolve));
  const reload = (trigger: string) => started.then(() => reloads.reload(trigger));
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    for (const service of PRIMARY_SERVICES) {
      const running = await service.start({ config, plan, logger, upstreams });
      if (running) services.push({ name: service.name, running });
    }
    const serviceEndpoints = [
      ...services.flatMap(({ running }) => running.endpoints ?? []),
      upstreamsEndpoint(upstreams),
    ];
    admin = await startAdmin({
      config,
      source: plan.source,
      workers,
      serviceEndpoints,
      logger,
      reload: () => reload('POST /admin/reload'),
    });
    services.push({ name: 'admin', running: admin });
  } catch (err) {
    await closeServices(services, logger);
    throw err;
  }
  const backoff = new RespawnBackoff();
  const crashLoop = new CrashLoopDetector();
  const ready = new Set<number>();
  /** Start time of each live worker: slot owners, and mid-replacement the new and old ones too. */
  const alive = new Map<Worker, number>();
  /** The worker each slot stands for: respawned when it dies, replaced by a reload. */
  const owners = new Map<number, Worker>();
  let shuttingDown = false;
  let announced = false;
  /** Why the instance is stopping on its own. */
  let fatal: StartupError | undefined;
  const pending = new Set<NodeJS.Timeout>();
  /** Live workers that were handed a plan, and whether each listens yet. */
  const planned = new Map<Worker, { ready: Promise<void>; listening: () => void }>();
  /** Plan requests that came during a reload: answered with its outcome's plan. */
  const waitingForPlan: (() => void)[] = [];
  const reloads = new ReloadCoordinator({
    load,
    active: () => current,
    members: () => [...planned].map(([worker, { ready }]) => ({ worker, ready })),
    replaceWorkers: (next) => replaceWorkers(next),
    beforePrepare: async (next) => {
      await upstreams.prepare(next.plan);
      // Ahead of the plan on each channel, so the new tree's pools have endpoints from the start.
      for (const message of upstreams.snapshot(next.plan)) broadcast(message);
      for (const service of PRIMARY_SERVICES) {
        if (services.some((started) => started.name === service.name)) continue;
        const running = await service.start({ ...next, logger, upstreams });
        if (running) services.push({ name: service.name, running });
      }
    },
    committed: (next) => {
      current = next;
      logger.level = next.plan.logging.level;
      workers.activate(next.plan.hash);
      admin.applied(next.config, next.plan.hash);
      watch.set(next.config, next.tlsFiles);
      warnExpiringCertificates(next.plan, logger);
      for (const { running } of services) running.planApplied?.(next.plan);
    },
    reported: (outcome) => {
      admin.reloaded(outcome);
      upstreams.settle(current.plan);
      for (const { running } of services) running.reloaded?.(outcome);
      for (const answer of waitingForPlan.splice(0)) answer();
    },
    logger,
  });
  const watch = configWatch(plan.source, (trigger) => void reload(trigger), logger);
  watch.set(config, tlsFiles);
  warnExpiringCertificates(plan, logger);
  // A terminal hang-up signals the whole process group: SIGHUP reloads, as daemons do.
  process.on('SIGHUP', () => {
    if (!shuttingDown) void reload('SIGHUP');
  });

  let stopped!: () => void;
  const allStopped = new Promise<void>((resolve) => (stopped = resolve));
  const shutdown = (reason: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    workers.drain();
    watch.close();
    for (const timer of pending) clearTimeout(timer);
    logger.info({ reason }, 'shutting down: draining workers');
    broadcast({ type: 'portico:shutdown' });
    // Workers bound their own drain; this is the backstop if one is stuck.
    const backstop = setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    }, current.plan.server.drain_timeout + 5_000);
    backstop.unref();
    // Counted by our own `exit` bookkeeping, not `cluster.workers`: node:cluster drops a worker
    // from that list at `exit` or at `disconnect`, whichever comes last, and announces only the
    // `exit`, so a worker whose channel closed after its process could keep it non-empty for ever.
    const check = () => {
      if (alive.size === 0) {
        clearTimeout(backstop);
        logger.info('all workers stopped');
        stopped();
      }
    };
    cluster.on('exit', check);
    check();
  };
  const giveUp = (error: StartupError, fields: Record<string, unknown>, msg: string) => {
    if (fatal !== undefined || shuttingDown) return;
    fatal = error;
    logger.error({ ...fields, error_code: error.code }, msg);
    shutdown(msg);
  };

  /** Drains a worker that a reload replaced: its in-flight requests finish, its exit is no death. */
  const retire = (worker: Worker) => {
    planned.get(worker)?.listening();
    planned.delete(worker);
    const message: PrimaryToWorker = { type: 'portico:replaced' };
    if (worker.isConnected()) worker.send(message);
  };

  /**
   * Forks the worker of `slot`. Without `candidate` it owns the slot at once (start, respawn)
   * and runs the config in force; with it, it runs `candidate.planned` and owns nothing until
   * the rolling replacement hands it the slot once it listens.
   */
  const fork = (slot: number, candidate?: Candidate): Worker => {
    const worker = cluster.fork({ PORTICO_WORKER_SLOT: String(slot) });
    guardConnectionHandoffs(worker);
    const startedAt = Date.now();
    alive.set(worker, startedAt);
    if (candidate === undefined) {
      owners.set(slot, worker);
      workers.forked(slot, worker.process.pid, current.plan.hash);
    }
    const owns = () => owners.get(slot) === worker;
    const answerPlanRequest = () => {
      const plan = candidate?.planned.plan ?? current.plan;
      // A worker that asks after the shutdown was sent would never hear of it.
      const answer: PrimaryToWorker = shuttingDown
        ? { type: 'portico:shutdown' }
        : { type: 'portico:plan', plan };
      if (!worker.isConnected()) return;
      if (!shuttingDown) {
        let listening!: () => void;
        const ready = new Promise<void>((resolve) => (listening = resolve));
        planned.set(worker, { ready, listening });
        if (owns()) workers.planSent(slot, plan.hash);
        for (const message of upstreams.snapshot(plan)) worker.send(message);
      }
      worker.send(answer);
    };
    worker.on('message', (message: unknown) => {
      if (isUpstreamWorkerToPrimary(message)) {
        upstreams.handle(message);
        return;
      }
      if (!isWorkerToPrimary(message)) return;
      if (message.type === 'portico:plan-request') {
        // Mid-reload, the plan in force is about to change: the worker gets the outcome's.
        if (reloads.busy && candidate === undefined) waitingForPlan.push(answerPlanRequest);
        else answerPlanRequest();
        return;
      }
      if (message.type === 'portico:listen-failed') {
        const { host, port, code } = message;
        // A new worker of a rolling replacement fails the reload, not the instance.
        if (candidate !== undefined && !owns()) {
          candidate.failed(cannotListen(host, port, code));
          return;
        }
        giveUp(
          new StartupError('PORTICO_ERR_LISTEN', cannotListen(host, port, code)),
          { host, port, code },
          'cannot listen; stopping',
        );
        return;
      }
      if (message.type === 'portico:listener-closed') {
        const released: PrimaryToWorker = { type: 'portico:listener-released' };
        if (worker.isConnected()) worker.send(released);
        return;
      }
      if (message.type !== 'portico:ready') return;
      planned.get(worker)?.listening();
      if (candidate !== undefined && !owns()) {
        candidate.listening(worker, startedAt);
        return;
      }
      ready.add(slot);
      workers.listening(slot);
      if (!announced && ready.size === count) {
        announced = true;
        const { host, port } = config.server;
        logger.info(
          {
            port,
            host,
            workers: count,
            gateway: urlOf(host, port),
            admin: admin.url,
            routes: admin.routes.map(describeRoute),
          },
          'portico ready',
        );
      }
    });
    worker.on('exit', (code, signal) => {
      // A reload waiting for this worker to listen need not wait any more.
      planned.get(worker)?.listening();
      planned.delete(worker);
      alive.delete(worker);
      if (!owns()) {
        // Replaced and drained, or a new worker that never took its slot: not a death.
        candidate?.failed(
          `the new worker exited (${signal ? `killed by ${signal}` : `exit code ${code}`}) before it listened`,
        );
        return;
      }
      owners.delete(slot);
      ready.delete(slot);
      workers.exited(slot);
      if (shuttingDown) return;
      const now = Date.now();
      const livedMs = now - startedAt;
      const survivorUpMs = Math.max(0, ...[...alive.values()].map((since) => now - since));
      if (crashLoop.died(now, livedMs, survivorUpMs)) {
        const last = signal ? `killed by ${signal}` : `exit code ${code}`;
        const window = `${crashLoop.windowMs / 1000} s`;
        giveUp(
          new StartupError(
            'PORTICO_ERR_CRASH_LOOP',
            `workers keep dying (${crashLoop.limit} deaths within ${window}, none stayed up ${window}; last: ${last}); not respawning`,
          ),
          {
            worker: worker.process.pid,
            code,
            signal,
            deaths: crashLoop.limit,
            window_ms: crashLoop.windowMs,
          },
          'workers keep dying; giving up',
        );
        return;
      }
      const delay = backoff.next(slot, livedMs);
      logger.error(
        { worker: worker.process.pid, code, signal, respawn_in_ms: delay },
        'worker died; respawning',
      );
      for (const { running } of services) running.workerDied?.({ slot, code, signal });
      // Not unref'd: while every worker is waiting to respawn, this timer is what keeps the
      // primary alive. Shutdown clears it.
      const timer = setTimeout(() => {
        pending.delete(timer);
        // A rolling replacement may have filled the slot meanwhile, or drained it away.
        if (!owners.has(slot) && slot < workers.count) fork(slot);
      }, delay);
      pending.add(timer);
    });
    return worker;
  };

  /**
   * Starts a worker running `next` for `slot` and waits until it listens; then it owns the
   * slot and the one it replaces drains. Returns why not (the new worker could not listen,
   * died or was late; it is stopped).
   */
  const replaceSlot = (slot: number, next: Planned): Promise<string | undefined> => {
    if (shuttingDown) return Promise.resolve('the instance is shutting down');
    return new Promise((resolve) => {
      let settled = false;
      const fail = (reason: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // SIGTERM drains it (nothing is in flight there) whether or not it got as far as listening.
        fresh.process.kill('SIGTERM');
        resolve(`slot ${slot}: ${reason}`);
      };
      const fresh = fork(slot, {
        planned: next,
        listening(worker, startedAt) {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          const old = owners.get(slot);
          owners.set(slot, worker);
          ready.add(slot);
          workers.replaced(slot, worker.process.pid, startedAt, next.plan.hash);
          if (old !== undefined) retire(old);
          resolve(undefined);
        },
        failed: fail,
      });
      const timer = setTimeout(
        () => fail(`the new worker did not listen within ${REPLACE_TIMEOUT_MS} ms`),
        REPLACE_TIMEOUT_MS,
      );
    });
  };

  /**
   * The rolling replacement: slot by slot, a new worker listens before the old one drains, so
   * some worker always accepts; extra slots are added, surplus ones drained. A failure puts
   * the running config back the same way on the slots already replaced.
   */
  const replaceWorkers = async (next: Planned): Promise<string | undefined> => {
    const before = workers.count;
    const after = workerCount(next.plan);
    workers.incoming(next.plan.hash);
    const done: number[] = [];
    let failure: string | undefined;
    for (let slot = 0; slot < after && failure === undefined; slot++) {
      failure = await replaceSlot(slot, next);
      if (failure === undefined) done.push(slot);
    }
    const drainFrom = (from: number) => {
      for (const [slot, worker] of owners) {
        if (slot < from) continue;
        owners.delete(slot);
        ready.delete(slot);
        retire(worker);
      }
      workers.truncate(from);
    };
    if (failure === undefined) {
      drainFrom(after);
      return undefined;
    }
    logger.error({ reason: failure }, 'reload: a new worker failed; putting the running config back');
    for (const slot of done) {
      if (slot >= before) continue;
      const back = await replaceSlot(slot, current);
      if (back !== undefined) logger.error({ reason: back }, 'reload: could not put the running config back');
    }
    drainFrom(before);
    workers.incoming(null);
    return failure;
  };

  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Pools are discovered and first checked before any worker runs, so its first request
  // never goes to an endpoint nobody has looked at; meanwhile /readyz answers 503.
  await upstreams.prepare(plan);
  upstreams.settle(plan);
  if (!shuttingDown) for (let slot = 0; slot < count; slot++) fork(slot);
  forked();
  await allStopped;
  upstreams.close();
  await closeServices(services, logger);
  if (fatal !== undefined) throw fatal;
}

/** A new worker of a rolling replacement: the config it runs, and how it ends. */
interface Candidate {
  planned: Planned;
  listening(worker: Worker, startedAt: number): void;
  failed(reason: string): void;
}

/** How long a new worker of a rolling replacement may take to listen. */
const REPLACE_TIMEOUT_MS = 10_000;

function workerCount(plan: Plan): number {
  return plan.server.workers === 'auto' ? availableParallelism() : plan.server.workers;
}

async function closeServices(services: StartedService[], logger: Logger): Promise<void> {
  for (const service of [...services].reverse()) {
    await service.running
      .close()
      .catch((err: unknown) => logger.warn({ err, service: service.name }, 'service close failed'));
  }
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
}
