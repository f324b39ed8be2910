import type { ServerResponse } from 'node:http';
import { internalContextOf } from '../../context.js';
import type { Middleware, MiddlewareFactory } from '../types.js';

const passThrough: Middleware = (next) => next;

/**
 * The `metrics` built-in: counts each request of the route by method, route pattern and
 * status, observes its duration, tracks in-flight requests, and watches the route's
 * upstream (latency to response headers, errors by kind). Everything label-related is bound
 * when the chain is built; per request it adds one `close` listener shared by the route.
 */
export const metricsMiddleware: MiddlewareFactory = ({ hooks, route, upstream }) => {
  const found = hooks.route(route.path);
  if (!found) return passThrough; // metrics.prometheus.enabled: false
  const routeMetrics = found;
  upstream.observe(routeMetrics.upstream);
  const inFlight = routeMetrics.inFlight;

  // `this` is the response: one function for the whole route, no closure per request.
  function onResponseClose(this: ServerResponse): void {
    inFlight.dec();
    const req = this.req;
    // Nothing was sent (client went away first): nginx's 499. An upgrade's 101 goes out on
    // the raw socket, not through `res`, so it counts as sent.
    const status = this.headersSent || this.statusCode === 101 ? this.statusCode : 499;
    const seconds = (performance.now() - internalContextOf(req).startTime) / 1000;
    routeMetrics.record(req.method ?? 'GET', status, seconds);
  }

  return (next) =>
    function metrics(req, res) {
      inFlight.inc();
      res.on('close', onResponseClose); // emitted once per response
      return next(req, res);
    };
};
