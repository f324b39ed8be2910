import type { Config } from '../../shared/config/schema.js';
import { compareMatchOrder } from '../../shared/route-order.js';
import { parseRoutePattern, type RoutePattern } from '../../shared/route-pattern.js';

/** A route as `/admin/routes` and the start-up log show it. */
export interface RouteView {
  /** Its position in the config's `routes` list. */
  index: number;
  path: string;
  /** `null`: every method. */
  methods: string[] | null;
  /** The route's `target:`, or `null` when it names an upstream. */
  target: string | null;
  /** The route's `upstream:`, or `null` when it has a `target:`. */
  upstream: string | null;
  middleware: string[];
}

/** The config's routes in the order the router tries them (see `compareMatchOrder`). */
export function routesInMatchOrder(config: Config): RouteView[] {
  const entries = config.routes.map((route, index) => ({
    pattern: parseRoutePattern(route.path) as RoutePattern, // validated already
    view: {
      index,
      path: route.path,
      methods: route.methods ?? null,
      target: route.target ?? null,
      upstream: route.upstream ?? null,
      middleware: route.middleware,
    },
  }));
  entries.sort((a, b) => compareMatchOrder(a.pattern, b.pattern));
  return entries.map((e) => e.view);
}

/** `GET /users/:id → http://users:9002 [metrics, logging]` */
export function describeRoute(route: RouteView): string {
  return `${route.methods?.join(',') ?? '*'} ${route.path} → ${route.target ?? `upstream ${route.upstream}`} [${route.middleware.join(', ')}]`;
}
