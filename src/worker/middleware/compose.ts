import type { Handler, Middleware } from './types.js';

/** `compose([a, b], h)` is `a(b(h))`: the first middleware sees the request first. */
export function compose(middleware: readonly Middleware[], terminal: Handler): Handler {
  let handler = terminal;
  for (let i = middleware.length - 1; i >= 0; i--) handler = (middleware[i] as Middleware)(handler);
  return handler;
}
