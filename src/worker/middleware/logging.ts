import type { IncomingMessage, ServerResponse } from 'node:http';
import { contextOf } from '../context.js';
import { triesOf } from '../proxy/forwarder.js';
import type { MiddlewareFactory } from './types.js';

/**
 * One structured line per request, written when the response is finished or aborted.
 * The query string is left out on purpose: it often carries tokens.
 */
export const loggingMiddleware: MiddlewareFactory = ({ logger, route }) => {
  const log = logger.child({ route: route.path });

  // `this` is the response: one listener for the route, no closure per request. A response
  // emits `close` exactly once, so `on` needs no `once` wrapper.
  function onResponseClose(this: ServerResponse): void {
    const req = this.req;
    const ctx = contextOf(req);
    // Only a retried request has them: each try's endpoint and outcome.
    const tries = triesOf(req);
    const fields = {
      request_id: ctx.requestId,
      // Set by `tracing` wherever it sits in the chain: the line is written at the end.
      trace_id: ctx.traceId,
      method: req.method,
      path: ctx.path,
      status: this.statusCode,
      duration_ms: Math.round((performance.now() - ctx.startTime) * 1000) / 1000,
      client_ip: ctx.clientIp,
      aborted: !this.writableFinished || undefined,
      tries: tries?.length,
      upstream_tries: tries,
    };
    if (this.statusCode >= 500) log.warn(fields, 'request');
    else log.info(fields, 'request');
  }

  return (next) =>
    function logging(req: IncomingMessage, res: ServerResponse) {
      res.on('close', onResponseClose);
      return next(req, res);
    };
};
