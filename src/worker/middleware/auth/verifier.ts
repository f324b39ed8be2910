import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import { PorticoError } from '../../../shared/errors.js';
import type { AuthPlan } from '../../../shared/plan/types.js';

/**
 * The effective `auth` settings of one route, as a verifier factory receives them: the
 * plan's (global keys overridden by the route's own), with the public key parsed.
 */
export type AuthSettings = Omit<AuthPlan, 'publicKeyPem'> & { publicKey: KeyObject | undefined };

/** Verified token claims (the JWT payload for the built-in verifiers). */
export type Claims = Readonly<Record<string, unknown>>;

/**
 * Verifies a bearer token and returns its claims, or throws. Throw `VerifierUnavailableError`
 * when the token could not be checked at all (identity provider down): the client then gets
 * 503, not 401, so it does not throw away a token that may be fine.
 *
 * @example
 * const introspection: VerifierFactory = (settings) => ({
 *   async verify(token) {
 *     const res = await fetch(String(settings.options.url), { method: 'POST', body: `token=${token}` });
 *     const body = (await res.json()) as { active: boolean; sub?: string };
 *     if (!body.active) throw new Error('inactive token');
 *     return body;
 *   },
 * });
 */
export interface TokenVerifier {
  verify(token: string): Promise<Claims>;
}

/** Builds a verifier for one set of `auth` settings (once per worker and distinct settings). */
export type VerifierFactory = (
  settings: AuthSettings,
  env: { logger: Logger },
) => TokenVerifier | Promise<TokenVerifier>;

/**
 * The token could not be verified because a dependency (JWKS, discovery…) is unavailable. Its
 * message is for the log; the client gets `PORTICO_ERR_AUTH_UNAVAILABLE`'s.
 */
export class VerifierUnavailableError extends PorticoError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PORTICO_ERR_AUTH_UNAVAILABLE', message, options);
  }
}
