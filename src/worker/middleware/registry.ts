import type { MiddlewareCatalog } from '../../shared/config/load.js';
import { authMiddleware } from './auth/index.js';
import { VerifierRegistry } from './auth/registry.js';
import type { VerifierFactory } from './auth/verifier.js';
import { loggingMiddleware } from './logging.js';
import { rateLimitMiddleware } from './ratelimit/index.js';
import { metricsMiddleware } from './metrics/middleware.js';
import { tracingMiddleware } from './tracing/middleware.js';
import type { Middleware, MiddlewareFactory } from './types.js';

/** The built-ins other than `auth` (which needs the verifier registry). */
const BUILTINS: Record<string, MiddlewareFactory> = {
  logging: loggingMiddleware,
  ratelimit: rateLimitMiddleware,
  metrics: metricsMiddleware,
  tracing: tracingMiddleware,
};

/** Built-in and user-registered middleware by name; also answers the config validator. */
export class MiddlewareRegistry implements MiddlewareCatalog {
  readonly #factories = new Map<string, MiddlewareFactory>();

  readonly #verifiers = new VerifierRegistry();

  constructor() {
    this.#factories.set('auth', authMiddleware(this.#verifiers));
    for (const [name, factory] of Object.entries(BUILTINS)) this.#factories.set(name, factory);
  }

  /** Registers a user middleware. Names are unique: shadowing a built-in is an error. */
  register(name: string, middleware: Middleware): void {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) throw new TypeError(`invalid middleware name "${name}"`);
    if (this.has(name)) throw new Error(`middleware "${name}" is already registered`);
    if (typeof middleware !== 'function')
      throw new TypeError(`middleware "${name}" must be a function (next) => handler`);
    this.#factories.set(name, () => middleware);
  }

  /** Registers a custom `auth.type`. */
  registerVerifier(type: string, factory: VerifierFactory): void {
    this.#verifiers.register(type, factory);
  }

  hasVerifier(type: string): boolean {
    return this.#verifiers.has(type);
  }

  has(name: string): boolean {
    return this.#factories.has(name);
  }

  names(): string[] {
    return [...this.#factories.keys()].sort();
  }

  factory(name: string): MiddlewareFactory {
    const factory = this.#factories.get(name);
    if (!factory) throw new Error(`middleware "${name}" is not available`);
    return factory;
  }
}
