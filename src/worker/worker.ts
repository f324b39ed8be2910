import { Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { isPrimaryToWorker, type WorkerToPrimary } from '../shared/messages.js';
import type { Plan } from '../shared/plan/types.js';
import { clientErrorListener } from './client-error.js';
import { limitConnections } from './connection-limit.js';
import type { MiddlewareRegistry } from './middleware/registry.js';
import { installDashboardFeed } from './dashboard-feed.js';
import { createGatewayHandlers } from './request-handler.js';
import { PlanSwitch } from './plan-switch.js';
import { WorkerResources } from './resources.js';
import { createEdgeServer } from './tls/edge-server.js';
import { createRedirectServer } from './tls/redirect.js';
import { flushRequestLines } from './middleware/request-log.js';
import type { StopRequests } from './stop-requests.js';
import type { EndpointDirectory } from './upstream/directory.js';

/**
 * Runs one worker: an HTTP server sharing the cluster port. On `portico:shutdown` (or its own
 * SIGTERM/SIGINT, as Ctrl-C signals the whole process group) it drains: stops accepting,
 * lets in-flight requests finish up to `server.drain_timeout`, then exits 0.
 */
export async function runWorker(
  plan: Plan,
  registry: MiddlewareRegistry,
  logger: Logger,
  /** Installed before the plan was asked for (its first lists come just ahead of the plan). */
  directory: EndpointDirectory,
  /** Installed before the plan was asked for: a stop that came with the plan is not lost. */
  stops: StopRequests,
): Promise<void> {
  const resources = new WorkerResources(logger);
  // The slot (0…workers-1, reused by a respawned worker) labels per-worker process metrics.
  const slot = process.env.PORTICO_WORKER_SLOT ?? '0';
  const build = (next: Plan, treeLogger: Logger) =>
    createGatewayHandlers(next, registry, treeLogger, resources, directory, slot);
  installDashboardFeed();
  resources.track();
  const first = { plan, handlers: await build(plan, logger), used: resources.used(), logger };
  // Issue 15: plain HTTP, HTTPS or HTTP/2 (+1.1), chosen once from the first plan.
  const edge = createEdgeServer(
    plan,
    {
      keepAliveTimeout: plan.server.keep_alive_timeout,
      maxHeaderSize: plan.server.max_header_size,
      requestTimeout: plan.server.request_timeout,
      headersTimeout: Math.min(60_000, plan.server.request_timeout),
      // Node's own answer to a missing Host is plain text; the handler answers it as JSON.
      requireHostHeader: false,
      // Node enforces both timeouts above by sweeping its connections on this interval (30 s by
      // default, so a 5 s limit fired after up to 35 s). A sweep walks a list; twice a second is cheap.
      connectionsCheckingInterval: TIMEOUT_SWEEP_MS,
    },
    (req, res) => live.current.request(req, res),
  );
  const server = edge.server;
  const redirect = createRedirectServer(plan);
  // Reloads swap `live.current`; the listeners below read it per event, so a request starts
  // on the tree in force when it arrives and finishes on it.
  const live = new PlanSwitch(first, {
    server,
    resources,
    build,
    prepareTls: (next) => edge.prepareTls(next),
    logger,
    bindings: { role: 'worker', worker: slot, pid: process.pid },
  });
  live.listen();
  // Node 20 keeps only the first `maxHeadersCount` fields and forwards the rest of the
  // request as if that were all (a body whose Content-Length was cut off is lost). One more
  // than the limit lets the handler see "too many" and answer 431; Node 24 rejects past it.
  server.maxHeadersCount = plan.server.max_headers + 1;
  limitConnections(server, plan.server.max_connections);
  server.on('upgrade', (req, socket, head) => live.current.upgrade(req, socket as Socket, head));
  // Without a listener Node closes a CONNECT's connection with no answer.
  server.on('connect', (req, socket) =>
    // An h2 CONNECT comes with a response, not a socket: it is answered as any request.
    req.httpVersionMajor === 2
      ? live.current.request(req, socket as never)
      : live.current.connect(req, socket as Socket),
  );
  server.on(
    'clientError',
    clientErrorListener(() => live),
  );

  let draining = false;
  function drain(reason: string, replaced = false): void {
    if (draining) return;
    draining = true;
    logger.info({ reason }, 'worker draining');
    live.startDraining();
    redirect?.close();
    // A server that is not listening has nothing to drain; and closing one whose listen is still
    // with the primary makes Node 24 crash when the primary's answer comes.
    if (!server.listening) {
      stop();
      return;
    }
    const deadline = setTimeout(() => {
      logger.warn('drain timeout reached; closing remaining connections');
      edge.closeAll();
    }, live.plan.server.drain_timeout);
    // Keep-alive connections that finish their last response become idle: close them as they do
    // (not when the slot was replaced: see below).
    const sweep = replaced ? undefined : setInterval(() => edge.closeIdle(), 50);
    const done = () => {
      clearTimeout(deadline);
      clearInterval(sweep);
      stop();
    };
    if (replaced) {
      // The instance goes on serving on a new worker, so no client need be hurried: closing an
      // idle kept-alive connection races the request its client may be sending on it (a reset).
      // Only the port is let go (net's close, not http's, which closes idle connections at once);
      // each connection ends after one more response (it says `Connection: close`) or at the
      // keep-alive timeout its client was promised.
      // A connection node:cluster handed over before the primary heard of the close is still on
      // the channel; exiting before it arrives would reset it. The primary's answer comes after it.
      const released = new Promise<void>((resolve) => {
        const onMessage = (message: unknown) => {
          if (!isPrimaryToWorker(message) || message.type !== 'portico:listener-released') return;
          process.off('message', onMessage);
          resolve();
        };
        process.on('message', onMessage);
        // No primary, no cluster connections left to wait for.
        process.once('disconnect', resolve);
      });
      // Tells node:cluster's primary first (on the same channel, so in this order).
      NetServer.prototype.close.call(server, () => void released.then(done));
      edge.goAway();
      const closed: WorkerToPrimary = { type: 'portico:listener-closed' };
      process.send?.(closed);
      return;
    }
    server.close(done);
  }
  function stop(): void {
    live.close();
    void resources.close().then(() => {
      logger.info('worker drained');
      flushRequestLines();
      logger.flush(() => process.exit(0));
    });
  }

  // A stop asked for while the first tree was being built drains at once (before listening).
  stops.onStop((reason, replaced) => drain(reason, replaced));
  if (draining) return;

  // A port that cannot be had is the instance's problem, not this worker's: the primary stops
  // everything with one line instead of respawning a worker that would fail the same way.
  const { host, port } = plan.server;
  const listenFailed = (err: NodeJS.ErrnoException) => {
    const message: WorkerToPrimary = {
      type: 'portico:listen-failed',
      host,
      port,
      code: err.code ?? err.message,
    };
    process.send?.(message);
  };
  if (redirect !== undefined) {
    const redirectFailed = (err: NodeJS.ErrnoException) => {
      const message: WorkerToPrimary = {
        type: 'portico:listen-failed',
        host,
        port: plan.server.http_redirect_port,
        code: err.code ?? err.message,
      };
      process.send?.(message);
    };
    redirect.once('error', redirectFailed);
    await new Promise<void>((resolve) => redirect.listen(plan.server.http_redirect_port, host, resolve));
    redirect.off('error', redirectFailed);
    if (draining) return;
  }
  server.once('error', listenFailed);
  server.listen(port, host, () => {
    server.off('error', listenFailed);
    logger.info({ port: plan.server.port }, 'worker listening');
    const message: WorkerToPrimary = { type: 'portico:ready', port: plan.server.port };
    process.send?.(message);
  });
}

/** How often Node checks `requestTimeout` and `headersTimeout`: how late either may fire. */
const TIMEOUT_SWEEP_MS = 500;
