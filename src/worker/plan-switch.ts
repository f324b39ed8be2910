import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { createLogger } from '../shared/logger.js';
import { isPrimaryToWorker, type WorkerToPrimary } from '../shared/messages.js';
import type { Plan } from '../shared/plan/types.js';
import { limitConnections } from './connection-limit.js';
import type { GatewayHandlers } from './request-handler.js';
import type { WorkerResources } from './resources.js';

/** A handler tree and the resources it asked for while it was built. */
interface Tree {
  plan: Plan;
  handlers: GatewayHandlers;
  used: ReadonlySet<string>;
  /** Issue 15: puts the plan's TLS material in force (set on a prepared tree). */
  applyTls?: () => void;
  /** The logger its handlers were built with (a new one when the `logging` section changed). */
  logger: Logger;
}

export type BuildTree = (plan: Plan, logger: Logger) => Promise<GatewayHandlers>;

/**
 * The worker's side of a reload: which handler tree serves new requests, and the two phases
 * that replace it. `prepare` builds the new tree beside the running one (reusing every
 * resource whose settings did not change); `commit` makes it the one the server's listeners
 * call; `abort` drops it. A request keeps the chain it started on, so the old tree stays
 * alive for `drain_timeout` after a commit; then the resources only it used are released.
 * Upgraded sockets (WebSockets) belong to no tree and are never closed by a switch.
 */
export class PlanSwitch {
  /** What the server's listeners call: one property read per request. */
  current: GatewayHandlers;
  #tree: Tree;
  #pending: (Tree & { id: number }) | undefined;
  readonly #retiring = new Set<Tree>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #draining = false;

  constructor(
    first: Tree,
    private readonly env: {
      server: Server;
      resources: WorkerResources;
      build: BuildTree;
      /** Issue 15: checks a plan's TLS material and returns what swaps it in (worker/tls/edge-server.ts). */
      prepareTls?: (plan: Plan) => () => void;
      logger: Logger;
      /** Bindings of a logger made for a plan whose `logging` section changed. */
      bindings: Record<string, unknown>;
    },
  ) {
    this.#tree = first;
    this.current = first.handlers;
  }

  get plan(): Plan {
    return this.#tree.plan;
  }

  get logger(): Logger {
    return this.#tree.logger;
  }

  /** Answers the primary's reload messages; returns the listener for `process.off`. */
  listen(): (message: unknown) => void {
    const onMessage = (message: unknown) => {
      if (!isPrimaryToWorker(message)) return;
      if (message.type === 'portico:plan-prepare') void this.#prepare(message.id, message.plan);
      else if (message.type === 'portico:plan-commit') this.#commit(message.id);
      else if (message.type === 'portico:plan-abort') this.#abort(message.id);
    };
    process.on('message', onMessage);
    return onMessage;
  }

  async #prepare(id: number, plan: Plan): Promise<void> {
    if (this.#draining) {
      send({ type: 'portico:plan-failed', id, error: 'worker is draining' });
      return;
    }
    this.#abortPending();
    const { resources, logger } = this.env;
    const treeLogger = sameJson(plan.logging, this.#tree.plan.logging)
      ? logger
      : createLogger(plan.logging, this.env.bindings);
    resources.track();
    try {
      const applyTls = this.env.prepareTls?.(plan);
      const handlers = await this.env.build(plan, treeLogger);
      this.#pending = { id, plan, handlers, used: resources.used(), logger: treeLogger, applyTls };
      send({ type: 'portico:plan-prepared', id });
    } catch (err) {
      resources.used();
      logger.error({ err, reload: id }, 'reload: the new handler tree could not be built');
      void resources.release(this.#inUse());
      send({ type: 'portico:plan-failed', id, error: (err as Error).message ?? String(err) });
    }
  }

  #commit(id: number): void {
    const next = this.#pending;
    if (next === undefined || next.id !== id) return;
    this.#pending = undefined;
    const old = this.#tree;
    this.#tree = next;
    this.current = next.handlers;
    applyServerSettings(this.env.server, next.plan);
    // New handshakes get the new certificates; open connections keep theirs.
    next.applyTls?.();
    if (this.#draining) next.handlers.startDraining();
    this.#retiring.add(old);
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#retiring.delete(old);
      void this.env.resources.release(this.#inUse());
    }, old.plan.server.drain_timeout);
    timer.unref();
    this.#timers.add(timer);
    this.env.logger.info({ hash: next.plan.hash, reload: id }, 'reload: serving the new config');
    send({ type: 'portico:plan-committed', id });
  }

  #abort(id: number): void {
    if (this.#pending?.id === id) this.#abortPending();
  }

  #abortPending(): void {
    if (this.#pending === undefined) return;
    this.#pending = undefined;
    void this.env.resources.release(this.#inUse());
  }

  #inUse(): ReadonlySet<string>[] {
    const trees = [this.#tree, ...this.#retiring, ...(this.#pending ? [this.#pending] : [])];
    return trees.map((tree) => tree.used);
  }

  /** From now on every tree's responses close their connection. */
  startDraining(): void {
    this.#draining = true;
    this.#tree.handlers.startDraining();
    for (const tree of this.#retiring) tree.handlers.startDraining();
  }

  /** The server has stopped: close every tree. */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#pending = undefined;
    for (const tree of [this.#tree, ...this.#retiring]) tree.handlers.close();
    this.#retiring.clear();
  }
}

/** The `server` settings a running server takes without a new socket. */
function applyServerSettings(server: Server, plan: Plan): void {
  server.keepAliveTimeout = plan.server.keep_alive_timeout;
  server.requestTimeout = plan.server.request_timeout;
  server.headersTimeout = Math.min(60_000, plan.server.request_timeout);
  // One more than the limit: see worker.ts.
  server.maxHeadersCount = plan.server.max_headers + 1;
  limitConnections(server, plan.server.max_connections);
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function send(message: WorkerToPrimary): void {
  if (process.connected) process.send?.(message);
}
