import { createPublicKey } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../../../shared/errors.js';
import type { AuthPlan } from '../../../shared/plan/types.js';
import { internalContextOf } from '../../context.js';
import { ResourceKind } from '../../resources.js';
import type { Handler, Middleware, MiddlewareEnv } from '../types.js';
import { bearerToken } from './bearer.js';
import { ClaimsCache } from './claims-cache.js';
import { forwardedClaimValue } from './forward-claims.js';
import type { VerifierRegistry } from './registry.js';
import { type AuthSettings, type Claims, type TokenVerifier, VerifierUnavailableError } from './verifier.js';

/** One verifier (with its JWKS cache and verified-token cache) per worker and fingerprint. */
const VERIFIER = new ResourceKind<Promise<{ verifier: TokenVerifier; cache: ClaimsCache }>>('auth verifier');

/** The settings a verifier factory gets: the plan's, with the public key parsed (once per verifier). */
function verifierSettings(plan: AuthPlan): AuthSettings {
  const { publicKeyPem, ...rest } = plan;
  return { ...rest, publicKey: publicKeyPem === undefined ? undefined : createPublicKey(publicKeyPem) };
}

/**
 * The `auth` built-in: a bearer token must verify before the request goes further. Its
 * settings were resolved once, in the primary (they arrive in the plan); routes with equal
 * settings share one verifier (and its JWKS cache and verified-token cache) per worker.
 */
export function authMiddleware(verifiers: VerifierRegistry) {
  return async function buildAuth(
    plan: AuthPlan,
    { route, logger, resources, hooks }: MiddlewareEnv,
  ): Promise<Middleware> {
    const log = logger.child({ middleware: 'auth', route: route.path });

    const { verifier, cache } = await resources.shared(VERIFIER, plan.fingerprint, async () => {
      const settings = verifierSettings(plan);
      return {
        verifier: await verifiers.create(settings, { logger: log }),
        cache: new ClaimsCache(settings.cache.size, settings.cache.ttlMs),
      };
    });
    const settings = plan;

    const challenge = `Bearer realm="${settings.realm}"`;
    const missing = new GatewayError('PORTICO_ERR_MISSING_TOKEN', {
      headers: { 'www-authenticate': challenge },
    });
    const invalid = new GatewayError('PORTICO_ERR_INVALID_TOKEN', {
      headers: { 'www-authenticate': `${challenge}, error="invalid_token"` },
    });
    const unavailable = new GatewayError('PORTICO_ERR_AUTH_UNAVAILABLE', { headers: { 'retry-after': '5' } });
    const forwarded = settings.forwardClaims;

    /** Puts verified claims on the context and the forwarded headers, then continues. */
    function admit(req: IncomingMessage, res: ServerResponse, claims: Claims, next: Handler) {
      internalContextOf(req).claims = claims;
      for (let i = 0; i < forwarded.length; i++) {
        const [claim, name] = forwarded[i] as [string, string];
        const value = forwardedClaimValue(claims[claim]);
        if (value !== undefined) req.headers[name] = value;
      }
      return next(req, res);
    }

    // Not an async function: a token already in the cache is admitted synchronously, with
    // no promise per request; only a verification goes asynchronous.
    return (next) =>
      function auth(req: IncomingMessage, res: ServerResponse) {
        const headers = req.headers;
        // Whatever the client sent under a forwarded-claim header is never trusted.
        for (let i = 0; i < forwarded.length; i++) {
          const name = (forwarded[i] as [string, string])[1];
          if (headers[name] !== undefined) delete headers[name];
        }
        if (!settings.enabled) return next(req, res);

        const token = bearerToken(headers.authorization);
        if (token === undefined) {
          log.debug(
            { request_id: internalContextOf(req).requestId, reason: 'no bearer token' },
            'auth failed',
          );
          hooks.authFailure('missing_token');
          throw missing;
        }
        const now = Date.now();
        const cached = cache.get(token, now);
        if (cached !== undefined) return admit(req, res, cached, next);
        if (token.length > settings.maxTokenLength) {
          log.debug(
            { request_id: internalContextOf(req).requestId, reason: 'token too long' },
            'auth failed',
          );
          hooks.authFailure('malformed');
          throw invalid;
        }
        return verifyOrThrow(verifier, token, settings, internalContextOf(req).requestId).then((claims) => {
          cache.set(token, claims, now);
          return admit(req, res, claims, next);
        });
      };

    async function verifyOrThrow(v: TokenVerifier, token: string, s: AuthPlan, requestId: string) {
      try {
        return await v.verify(token);
      } catch (err) {
        if (err instanceof VerifierUnavailableError) {
          log.warn(
            { request_id: requestId, err: err.message, type: s.type },
            'token verification unavailable',
          );
          hooks.authFailure('unavailable');
          throw unavailable;
        }
        // The reason stays in the log; the client only learns "invalid token".
        const { code, claim, message } = err as { code?: string; claim?: string; message?: string };
        log.debug({ request_id: requestId, reason: code ?? message, claim, detail: message }, 'auth failed');
        hooks.authFailure(failureReason(err));
        throw invalid;
      }
    }
  };
}

/** A bounded vocabulary for the `reason` label of `gateway_auth_failures_total`. */
function failureReason(err: unknown): string {
  const e = err as { code?: string; claim?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return e.claim === 'nbf' || e.claim === 'iat' ? 'not_yet_valid' : 'claim_invalid';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'alg_not_allowed';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_key';
    default:
      return 'invalid';
  }
}
