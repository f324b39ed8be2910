import type { MiddlewareCatalog } from '../../shared/config/load.js';
import { loggingMiddleware } from './logging.js';
import { metricsMiddleware } from './metrics/middleware.js';
import { tracingMiddleware } from './tracing/middleware.js';
import type { Middleware, MiddlewareFactory } from './types.js';

/** Built-in names and, for those not implemented yet, why a route may not use them. */
const BUILTINS: Record<string, MiddlewareFactory | { unavailable: string }> = {
  logging: loggingMiddleware,
  auth: { unavailable: 'the built-in auth middleware is not implemented in this version' },
  ratelimit: { unavailable: 'the built-in ratelimit middleware is not implemented in this version' },
  metrics: metricsMiddleware,
  tracing: tracingMiddleware,
};

/** Built-in and user-registered middleware by name; also answers the config validator. */
export class MiddlewareRegistry implements MiddlewareCatalog {
  readonly #factories = new Map<string, MiddlewareFactory>();
  readonly #unavailable = new Map<string, string>();

  constructor() {
    for (const [name, entry] of Object.entries(BUILTINS)) {
      if (typeof entry === 'function') this.#factories.set(name, entry);
      else this.#unavailable.set(name, entry.unavailable);
    }
  }

  /** Registers a user middleware. Names are unique: shadowing a built-in is an error. */
  register(name: string, middleware: Middleware): void {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(name)) throw new TypeError(`invalid middleware name "${name}"`);
    if (this.has(name)) throw new Error(`middleware "${name}" is already registered`);
    if (typeof middleware !== 'function')
      throw new TypeError(`middleware "${name}" must be a function (next) => handler`);
    this.#factories.set(name, () => middleware);
  }

  has(name: string): boolean {
    return this.#factories.has(name) || this.#unavailable.has(name);
  }

  unavailable(name: string): string | undefined {
    return this.#unavailable.get(name);
  }

  names(): string[] {
    return [...this.#factories.keys(), ...this.#unavailable.keys()].sort();
  }

  factory(name: string): MiddlewareFactory {
    const factory = this.#factories.get(name);
    if (!factory) throw new Error(`middleware "${name}" is not available`);
    return factory;
  }
}
