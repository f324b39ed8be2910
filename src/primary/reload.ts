import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ConfigError } from '../shared/config/errors.js';
import type { Config } from '../shared/config/schema.js';
import { isWorkerToPrimary, type PrimaryToWorker } from '../shared/messages.js';
import type { Plan } from '../shared/plan/types.js';

/** A validated config and the plan resolved from it. */
export interface Planned {
  config: Config;
  plan: Plan;
  /** Every TLS file the config names (absolute paths): watched while `reload.watch` is on. */
  tlsFiles?: string[];
}

/** One reason a reload was refused, as `/admin/config` and `POST /admin/reload` list it. */
export interface ReloadProblem {
  /** The key path (`routes[0].middleware[1]`), or null when the problem has none (YAML syntax, file). */
  path: string | null;
  message: string;
  line: number | null;
  column: number | null;
}

export interface ReloadOutcome {
  /** ISO time the reload finished. */
  at: string;
  result: 'success' | 'failure' | 'unchanged';
  /** The hash in force afterwards. */
  hash: string;
  errors: ReloadProblem[];
}

/** A worker taking part in a reload, and when it can take the prepare (it listens). */
export interface ReloadMember {
  worker: Worker;
  ready: Promise<void>;
}

export interface ReloadEnv {
  /** Reads, expands, validates and plans the config source exactly as at start; throws `ConfigError`. */
  load(): Promise<Planned>;
  active(): Planned;
  /** The workers to switch: every live worker that was handed a plan. */
  members(): ReloadMember[];
  /** Before the workers prepare: start what the new plan needs in the primary (embedded store). */
  beforePrepare(next: Planned): Promise<void>;
  /**
   * Replaces every worker, one slot at a time, by one started with `next` (settings held by
   * sockets and processes). Returns why it failed, after putting the running config back.
   */
  replaceWorkers(next: Planned): Promise<string | undefined>;
  /** Every worker switched: the new config is the one in force. */
  committed(next: Planned): void;
  /** Every outcome, after it is final: admin API, metrics. */
  reported(outcome: ReloadOutcome): void;
  logger: Logger;
  /** Bound of each phase (default 10 s). */
  timeoutMs?: number;
}

/**
 * Replaces the running config without a stop: reads and plans the source as at start, then
 * switches every worker in two phases (each builds the new handler tree beside its running
 * one and says so; only when all have does the primary tell them to switch). Anything that
 * goes wrong before the switch (an invalid file, a worker that cannot build, a timeout)
 * leaves every worker on the running config, and the outcome says why. A change of what the
 * workers' sockets hold (port, host, count, header size) replaces the workers one at a time
 * instead (`replaceWorkers`); a change of the primary's own listeners is refused. Reloads run
 * one at a time; triggers that arrive meanwhile share one more reload after it.
 */
export class ReloadCoordinator {
  #running: Promise<ReloadOutcome> | undefined;
  #queued: Promise<ReloadOutcome> | undefined;
  #nextId = 1;

  constructor(private readonly env: ReloadEnv) {}

  /** True while a reload is under way (plan requests wait for it). */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  reload(trigger: string): Promise<ReloadOutcome> {
    if (this.#running === undefined) return this.#start(trigger);
    this.#queued ??= this.#running.then(() => {
      this.#queued = undefined;
      return this.#start(trigger);
    });
    return this.#queued;
  }

  #start(trigger: string): Promise<ReloadOutcome> {
    const running = this.#run(trigger).finally(() => {
      if (this.#running === running) this.#running = undefined;
    });
    this.#running = running;
    return running;
  }

  async #run(trigger: string): Promise<ReloadOutcome> {
    const { env } = this;
    const { logger } = env;
    const active = env.active();
    const finish = (result: ReloadOutcome['result'], hash: string, errors: ReloadProblem[] = []) => {
      const outcome: ReloadOutcome = { at: new Date().toISOString(), result, hash, errors };
      env.reported(outcome);
      return outcome;
    };
    let next: Planned;
    try {
      next = await env.load();
    } catch (err) {
      const lines = err instanceof ConfigError ? err.lines : [`${active.plan.source}: ${String(err)}`];
      // One record per problem, the same lines `portico check` prints: visible at any level.
      for (const line of lines) logger.error({ trigger }, line);
      logger.error({ trigger, problems: lines.length }, 'reload refused: the running config stays');
      return finish(
        'failure',
        active.plan.hash,
        lines.map((line) => problemOf(line, active.plan.source)),
      );
    }
    // Before the hash: the admin listener is not part of the plan, so its change alone would
    // look unchanged.
    const refusal = restartRequired(active, next);
    if (refusal !== undefined) {
      logger.error({ trigger, path: refusal.path }, `${next.plan.source}: ${refusal.message}`);
      logger.error({ trigger }, 'reload refused: the running config stays');
      return finish('failure', active.plan.hash, [{ ...refusal, line: null, column: null }]);
    }
    if (next.plan.hash === active.plan.hash) {
      logger.info({ trigger, hash: next.plan.hash }, 'reload: config unchanged');
      return finish('unchanged', active.plan.hash);
    }
    const id = this.#nextId++;
    const held = heldByWorkers(active, next);
    let failed: string | undefined;
    if (held.length > 0) {
      logger.info({ trigger, reload: id, changed: held }, 'reload: replacing the workers one at a time');
      await env.beforePrepare(next);
      failed = await env.replaceWorkers(next);
    } else {
      failed = await this.#switch(id, next);
    }
    if (failed !== undefined) {
      logger.error(
        { trigger, reload: id, reason: failed },
        'reload failed: every worker keeps the running config',
      );
      return finish('failure', active.plan.hash, [{ path: null, message: failed, line: null, column: null }]);
    }
    env.committed(next);
    logger.info({ trigger, reload: id, hash: next.plan.hash }, 'reload: new config in force');
    return finish('success', next.plan.hash);
  }

  /** The two phases; returns why the switch did not happen, or undefined once it did. */
  async #switch(id: number, next: Planned): Promise<string | undefined> {
    const timeoutMs = this.env.timeoutMs ?? 10_000;
    const members = this.env.members();
    const ready = await within(
      Promise.all(members.map((m) => m.ready)).then(() => undefined),
      timeoutMs,
      'workers still starting',
    );
    if (ready !== undefined) return ready;
    await this.env.beforePrepare(next);
    const workers = members.map((m) => m.worker).filter((w) => w.isConnected());
    const prepared = await exchange(
      workers,
      { type: 'portico:plan-prepare', id, plan: next.plan },
      'portico:plan-prepared',
      timeoutMs,
    );
    if (prepared !== undefined) {
      const abort: PrimaryToWorker = { type: 'portico:plan-abort', id };
      for (const worker of workers) if (worker.isConnected()) worker.send(abort);
      return prepared;
    }
    const committed = await exchange(
      workers,
      { type: 'portico:plan-commit', id },
      'portico:plan-committed',
      timeoutMs,
    );
    // Past the commit there is no way back: a worker that does not confirm is logged, not undone.
    if (committed !== undefined)
      this.env.logger.warn({ reload: id, reason: committed }, 'reload: commit not confirmed');
    return undefined;
  }
}

/**
 * Sends `message` to every worker and waits until each answers `expected` for its id, or exits.
 * Returns the first failure (`portico:plan-failed`, a timeout), or undefined.
 */
function exchange(
  workers: readonly Worker[],
  message: PrimaryToWorker & { id: number },
  expected: 'portico:plan-prepared' | 'portico:plan-committed',
  timeoutMs: number,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const pending = new Set(workers);
    const cleanups: (() => void)[] = [];
    const timer = setTimeout(
      () => finish(`${pending.size} worker(s) did not answer ${message.type} within ${timeoutMs} ms`),
      timeoutMs,
    );
    const finish = (failure: string | undefined) => {
      for (const cleanup of cleanups) cleanup();
      clearTimeout(timer);
      resolve(failure);
    };
    const settled = (worker: Worker) => {
      pending.delete(worker);
      if (pending.size === 0) finish(undefined);
    };
    for (const worker of workers) {
      const onMessage = (answer: unknown) => {
        if (!isWorkerToPrimary(answer) || !('id' in answer) || answer.id !== message.id) return;
        if (answer.type === expected) settled(worker);
        else if (answer.type === 'portico:plan-failed')
          finish(`worker ${worker.process.pid ?? '?'} could not build the new config: ${answer.error}`);
      };
      // A worker that dies now is respawned with whatever config is in force after this reload.
      const onExit = () => settled(worker);
      worker.on('message', onMessage);
      worker.on('exit', onExit);
      cleanups.push(() => {
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      });
    }
    for (const worker of workers) if (worker.isConnected()) worker.send(message);
    if (pending.size === 0) finish(undefined);
  });
}

async function within(promise: Promise<undefined>, ms: number, what: string): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`${what} after ${ms} ms`), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const changedKeys = (keys: [string, unknown, unknown][]): string[] =>
  keys.filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b)).map(([key]) => key);

/**
 * Settings held by the workers' sockets and processes, which a worker cannot change in
 * place: a reload that changes any of them replaces the workers instead of switching them.
 */
export function heldByWorkers(active: Planned, next: Planned): string[] {
  const before = active.config.server;
  const after = next.config.server;
  return changedKeys([
    ['server.port', before.port, after.port],
    ['server.host', before.host, after.host],
    ['server.workers', before.workers, after.workers],
    ['server.max_header_size', before.max_header_size, after.max_header_size],
    // Issue 15: the listener's kind (HTTP, HTTPS, h2) and the redirect port; certificates,
    // CAs, min_version and client_auth are swapped in place (worker/tls/edge-server.ts).
    ['server.tls', before.tls === undefined, after.tls === undefined],
    ['server.tls.http2', before.tls?.http2, after.tls?.http2],
    ['server.http_redirect_port', before.http_redirect_port, after.http_redirect_port],
  ]);
}

/**
 * Settings held by the primary's own listeners (admin, metrics), which replacing workers
 * does not reach: such a reload is refused whole, never half applied.
 */
export function restartRequired(
  active: Planned,
  next: Planned,
): { path: string; message: string } | undefined {
  const before = active.config;
  const after = next.config;
  const changed = changedKeys([
    ['admin', before.admin, after.admin],
    ['metrics', active.plan.metrics === null, next.plan.metrics === null],
    ['metrics.prometheus.port', before.metrics?.prometheus.port, after.metrics?.prometheus.port],
    ['metrics.prometheus.host', before.metrics?.prometheus.host, after.metrics?.prometheus.host],
  ])[0];
  if (changed === undefined) return undefined;
  return { path: changed, message: `${changed} changed: restart required (not yet applied by reload)` };
}

/** `file:line:col: key.path: reason` (as `portico check` prints it) taken apart. */
export function problemOf(line: string, file: string): ReloadProblem {
  let rest = file !== '' && line.startsWith(`${file}:`) ? line.slice(file.length) : `:${line}`;
  let at: RegExpExecArray | null = /^:(\d+):(\d+):/.exec(rest);
  const position = at ? { line: Number(at[1]), column: Number(at[2]) } : { line: null, column: null };
  rest = rest.slice(at ? at[0].length : 1).trimStart();
  at = /^([A-Za-z_][\w.[\]-]*|\(root\)): (.*)$/s.exec(rest);
  return at
    ? { path: at[1] as string, message: at[2] as string, ...position }
    : { path: null, message: rest, ...position };
}
