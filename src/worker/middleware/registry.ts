import type { MiddlewareCatalog } from '../../shared/config/load.js';
import type { Plan, RoutePlan } from '../../shared/plan/types.js';
import { authMiddleware } from './auth/index.js';
import { VerifierRegistry } from './auth/registry.js';
import type { VerifierFactory } from './auth/verifier.js';
import { loggingMiddleware } from './logging.js';
import { metricsMiddleware } from './metrics/middleware.js';
import { rateLimitMiddleware } from './ratelimit/index.js';
import { tracingMiddleware } from './tracing/middleware.js';
import type { Middleware, MiddlewareEnv } from './types.js';

/** Builds one route's instance of a middleware from the plan. */
type Build = (route: RoutePlan, plan: Plan, env: MiddlewareEnv) => Middleware | Promise<Middleware>;

/** Thrown when the plan lacks what the validator guarantees: a bug, not a config problem. */
function sliceOf<T>(slice: T | null, what: string, route: RoutePlan): T {
  if (slice === null) throw new Error(`the plan has no ${what} for route ${route.path}`);
  return slice;
}

/**
 * The one place that knows which slice of the plan each built-in takes: a built-in's
 * factory sees its own settings and nothing else of the config.
 */
const BUILTINS: Record<string, Build> = {
  logging: (_route, _plan, env) => loggingMiddleware(env),
  metrics: (_route, _plan, env) => metricsMiddleware(env),
  tracing: (_route, plan, env) => tracingMiddleware(plan.tracing, env),
  ratelimit: (route, plan, env) =>
    rateLimitMiddleware(
      sliceOf(route.rateLimit, 'rate-limit settings', route),
      sliceOf(plan.limiter, 'rate-limit store', route),
      env,
    ),
};

/** Built-in and user-registered middleware by name; also answers the config validator. */
export class MiddlewareRegistry implements MiddlewareCatalog {
  readonly #builds = new Map<string, Build>();

  readonly #verifiers = new VerifierRegistry();

  constructor() {
    const auth = authMiddleware(this.#verifiers);
    this.#builds.set('auth', (route, _plan, env) => auth(sliceOf(route.auth, 'auth settings', route), env));
    for (const [name, build] of Object.entries(BUILTINS)) this.#builds.set(name, build);
  }

  /** Registers a user middleware. Names are unique: shadowing a built-in is an error. */
  register(name: string, middleware: Middleware): void {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) throw new TypeError(`invalid middleware name "${name}"`);
    if (this.has(name)) throw new Error(`middleware "${name}" is already registered`);
    if (typeof middleware !== 'function')
      throw new TypeError(`middleware "${name}" must be a function (next) => handler`);
    this.#builds.set(name, () => middleware);
  }

  /** Registers a custom `auth.type`. */
  registerVerifier(type: string, factory: VerifierFactory): void {
    this.#verifiers.register(type, factory);
  }

  hasVerifier(type: string): boolean {
    return this.#verifiers.has(type);
  }

  has(name: string): boolean {
    return this.#builds.has(name);
  }

  names(): string[] {
    return [...this.#builds.keys()].sort();
  }

  /** Builds `name` for one route of `plan`. */
  build(name: string, route: RoutePlan, plan: Plan, env: MiddlewareEnv): Middleware | Promise<Middleware> {
    const build = this.#builds.get(name);
    if (!build) throw new Error(`middleware "${name}" is not available`);
    return build(route, plan, env);
  }
}
