import type { IncomingMessage } from 'node:http';
import type { ClientCertificate } from './tls/client-cert.js';

export type { ClientCertificate };

/**
 * What the gateway knows about a request, available to every middleware through
 * `contextOf(req)`. Route params are injected here (the gap the reference article left open).
 */
export interface RequestContext {
  /** From a valid incoming `X-Request-Id`, else generated; echoed to client and upstream. */
  readonly requestId: string;
  /** The matched route's path pattern, e.g. `/users/:id`; bounded, so safe as a metric label. */
  readonly route: string;
  /** The normalised request path (no query string) the route was matched on. */
  readonly path: string;
  /** The raw query string including its `?`, or `''`. */
  readonly query: string;
  /** Decoded `:param` values of the matched route. */
  readonly params: Readonly<Record<string, string>>;
  /** The part of the path matched by a trailing `*` (no leading slash), else `''`. */
  readonly wildcard: string;
  /** Client address: the socket peer, or from `X-Forwarded-For` when the peer is a trusted proxy. */
  readonly clientIp: string;
  /** `performance.now()` when the gateway received the request. */
  readonly startTime: number;
  /** Free-form per-request storage for user middleware (e.g. `ctx.state.tenant`). */
  readonly state: Record<string, unknown>;
  /** Verified token claims, set by the `auth` middleware; `undefined` before it or without it. */
  claims: Readonly<Record<string, unknown>> | undefined;
  /** The W3C trace id of this request, set by the `tracing` middleware; `undefined` without it. */
  traceId: string | undefined;
  /**
   * The client certificate the TLS handshake verified against `server.tls.client_ca`
   * (`client_auth: request` or `require`); `undefined` without one, or when it did not verify.
   */
  readonly clientCert: ClientCertificate | undefined;
}

/** Gateway-internal fields: the raw (still encoded) captures used to build the upstream path. */
export interface InternalContext extends RequestContext {
  readonly rawParams: Readonly<Record<string, string>>;
  readonly rawRest: string;
}

const CONTEXT = Symbol.for('portico.context');

type WithContext = IncomingMessage & { [CONTEXT]?: InternalContext };

export function attachContext(req: IncomingMessage, ctx: InternalContext): void {
  (req as WithContext)[CONTEXT] = ctx;
}

/**
 * The request context of a request the gateway is handling.
 *
 * @example
 * gw.register('tenant', (next) => async function tenant(req, res) {
 *   const { params } = contextOf(req); // { id: '42' } for /users/:id
 *   await next(req, res);
 * });
 */
export function contextOf(req: IncomingMessage): RequestContext {
  return internalContextOf(req);
}

export function internalContextOf(req: IncomingMessage): InternalContext {
  const ctx = (req as WithContext)[CONTEXT];
  if (!ctx) throw new Error('contextOf(): this request is not being handled by Portico');
  return ctx;
}

/** The verified claims of the request's token (set by `auth`), or `undefined`. */
export function claimsOf(req: IncomingMessage): Readonly<Record<string, unknown>> | undefined {
  return internalContextOf(req).claims;
}

/** Shorthand for `contextOf(req).params`. */
export function paramsOf(req: IncomingMessage): Readonly<Record<string, string>> {
  return contextOf(req).params;
}
