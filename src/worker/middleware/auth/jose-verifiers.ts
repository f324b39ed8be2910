import { createSecretKey } from 'node:crypto';
import { createRemoteJWKSet, errors, type JWTVerifyOptions, jwtVerify } from 'jose';
import {
  type AuthSettings,
  type Claims,
  type TokenVerifier,
  type VerifierFactory,
  VerifierUnavailableError,
} from './verifier.js';

/*
 * The built-in verifiers, all on jose. Keys are imported once (a raw secret handed to jose
 * would be re-imported on every verify), algorithms are always pinned, and every network
 * fetch (JWKS, discovery) is bounded by `jwks_timeout`.
 */

function verifyOptions(settings: AuthSettings): JWTVerifyOptions {
  return {
    algorithms: settings.algorithms,
    clockTolerance: settings.clockToleranceSec,
    ...(settings.issuer !== undefined ? { issuer: settings.issuer } : {}),
    ...(settings.audience !== undefined ? { audience: settings.audience } : {}),
    ...(settings.requiredClaims.length > 0 ? { requiredClaims: settings.requiredClaims } : {}),
  };
}

/** Failures of the key source, as opposed to a bad token. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return true;
  // fetch() network failures (refused, reset, DNS) surface as TypeError.
  return err instanceof TypeError;
}

/**
 * jose checks `iat` against the clock only together with `maxTokenAge`, which would also make
 * `iat` mandatory; a token issued in the future is still a forgery or a broken issuer clock
 * (RFC 8725 §3.10), so reject it beyond the same tolerance as `exp` and `nbf`.
 */
function checkIssuedAt(claims: Claims, toleranceSec: number): Claims {
  const iat = claims.iat;
  if (typeof iat === 'number' && iat > Date.now() / 1000 + toleranceSec) {
    throw new errors.JWTClaimValidationFailed(
      '"iat" claim timestamp check failed (it should be in the past)',
      claims,
      'iat',
      'check_failed',
    );
  }
  return claims;
}

function fromJose(verifyFn: (token: string) => Promise<Claims>, settings: AuthSettings): TokenVerifier {
  const toleranceSec = settings.clockToleranceSec;
  return {
    async verify(token) {
      try {
        return checkIssuedAt(await verifyFn(token), toleranceSec);
      } catch (err) {
        if (isUnavailable(err)) throw new VerifierUnavailableError('token keys unavailable', { cause: err });
        throw err;
      }
    },
  };
}

/** `type: jwt`: a static HMAC secret or public key. */
export const jwtVerifier: VerifierFactory = (settings, { logger }) => {
  const options = verifyOptions(settings);
  if (settings.secret !== undefined) {
    if (Buffer.byteLength(settings.secret) < 32) {
      logger.warn('auth.secret is shorter than 32 bytes; HS256 secrets should be at least 256 bits');
    }
    const key = createSecretKey(Buffer.from(settings.secret, 'utf8'));
    return fromJose(async (token) => (await jwtVerify(token, key, options)).payload, settings);
  }
  const key = settings.publicKey;
  if (key === undefined) throw new Error('jwt verifier needs a secret or a public key');
  return fromJose(async (token) => (await jwtVerify(token, key, options)).payload, settings);
};

function remoteKeySet(uri: string, settings: AuthSettings) {
  return createRemoteJWKSet(new URL(uri), {
    timeoutDuration: settings.jwks.timeoutMs,
    cooldownDuration: settings.jwks.cooldownMs,
    cacheMaxAge: settings.jwks.cacheMaxAgeMs,
  });
}

/** `type: jwks`: keys from `jwks_uri`, cached, refetched on an unknown `kid` (after the cooldown). */
export const jwksVerifier: VerifierFactory = (settings) => {
  const keys = remoteKeySet(settings.jwksUri as string, settings);
  const options = verifyOptions(settings);
  return fromJose(async (token) => (await jwtVerify(token, keys, options)).payload, settings);
};

/**
 * `type: oidc`: discovers `jwks_uri` from `{issuer}/.well-known/openid-configuration` on first
 * use (a provider that is down at start-up is retried on later requests, never fatal).
 */
export const oidcVerifier: VerifierFactory = (settings) => {
  const issuer = settings.issuer as string;
  const discoveryUrl = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const options = verifyOptions(settings);
  let keys: ReturnType<typeof createRemoteJWKSet> | undefined;
  let discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;

  async function discover() {
    let document: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const res = await fetch(discoveryUrl, { signal: AbortSignal.timeout(settings.jwks.timeoutMs) });
      if (!res.ok) throw new Error(`discovery answered ${res.status}`);
      document = (await res.json()) as typeof document;
    } catch (err) {
      throw new VerifierUnavailableError(`OIDC discovery failed: ${(err as Error).message}`, { cause: err });
    }
    if (typeof document.jwks_uri !== 'string' || !URL.canParse(document.jwks_uri)) {
      throw new VerifierUnavailableError('OIDC discovery document has no valid jwks_uri');
    }
    // OpenID Connect Discovery §4.3: the document's issuer must be the one we asked.
    if (document.issuer !== issuer) {
      throw new VerifierUnavailableError(
        `OIDC discovery issuer ${String(document.issuer)} does not match ${issuer}`,
      );
    }
    return remoteKeySet(document.jwks_uri, settings);
  }

  const verifyWith = fromJose(async (token) => (await jwtVerify(token, keys!, options)).payload, settings);
  return {
    async verify(token) {
      if (keys === undefined) {
        discovering ??= discover().finally(() => {
          discovering = undefined;
        });
        keys = await discovering;
      }
      return verifyWith.verify(token);
    },
  };
};
