import type { IncomingMessage, ServerResponse } from 'node:http';
import { contextOf } from '../context.js';
import { triesOf } from '../proxy/forwarder.js';
import { jsonString, requestLineWriter } from './request-log.js';
import type { MiddlewareFactory } from './types.js';

/**
 * One structured line per request, written when the response is finished or aborted:
 * `request_id`, `trace_id`, `method`, `path`, `status`, `duration_ms`, `client_ip`, and
 * `aborted`, `tries`, `upstream_tries` when they apply (a field without a value is left out).
 * The query string is left out on purpose: it often carries tokens.
 */
export const loggingMiddleware: MiddlewareFactory = ({ logger, route }) => {
  const write = requestLineWriter(logger.child({ route: route.path }));

  // `this` is the response: one listener for the route, no closure per request. A response
  // emits `close` exactly once, so `on` needs no `once` wrapper.
  function onResponseClose(this: ServerResponse): void {
    const req = this.req;
    const ctx = contextOf(req);
    const status = this.statusCode;
    let fields = `,"request_id":${jsonString(ctx.requestId)}`;
    // Set by `tracing` wherever it sits in the chain: the line is written at the end.
    if (ctx.traceId !== undefined) fields += `,"trace_id":${jsonString(ctx.traceId)}`;
    if (req.method !== undefined) fields += `,"method":${jsonString(req.method)}`;
    fields += `,"path":${jsonString(ctx.path)},"status":${status},"duration_ms":${Math.round((performance.now() - ctx.startTime) * 1000) / 1000}`;
    fields += `,"client_ip":${jsonString(ctx.clientIp)}`;
    if (!this.writableFinished) fields += ',"aborted":true';
    // Only a retried request has them: each try's endpoint and outcome.
    const tries = triesOf(req);
    if (tries !== undefined) fields += `,"tries":${tries.length},"upstream_tries":${JSON.stringify(tries)}`;
    write(status >= 500, fields);
  }

  return (next) =>
    function logging(req: IncomingMessage, res: ServerResponse) {
      res.on('close', onResponseClose);
      return next(req, res);
    };
};
