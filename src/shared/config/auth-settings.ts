import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { AuthPlan } from '../plan/types.js';
import type { AuthConfig, AuthOverride } from './auth-schema.js';
import type { KeyPath } from './load.js';

/** JWS algorithms Portico accepts; `none` is deliberately absent. */
export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const ASYMMETRIC: JwtAlgorithm[] = JWT_ALGORITHMS.filter((a) => !a.startsWith('HS'));

/** Algorithms a public key can verify; the first is the default. */
function algorithmsForKey(key: KeyObject): JwtAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      return [];
    }
    case 'ed25519':
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

type Problem = { path: KeyPath; message: string };

/** Keys the schema gives a default (its output type does not say so). */
type Defaulted =
  | 'enabled'
  | 'type'
  | 'clock_tolerance'
  | 'required_claims'
  | 'forward_claims'
  | 'realm'
  | 'max_token_length'
  | 'jwks_timeout'
  | 'jwks_cooldown'
  | 'jwks_cache_max_age'
  | 'cache_size'
  | 'cache_ttl';
type AuthFields = NonNullable<AuthConfig>;
/** The global section with every default filled in: what a route's settings merge onto. */
export type AuthDefaults = Omit<AuthFields, Defaulted> & { [K in Defaulted]: NonNullable<AuthFields[K]> };

/**
 * Merges the global `auth` section with a route's override and checks the result for the
 * verifier type: everything derivable (keys, algorithms) is derived here, once, in the
 * primary. Problems name the key path where the offending value was written. `defaults` are
 * the schema's (the global section may be absent); `readKey` reads a key file (callers
 * share one across routes so a file is read once).
 */
export function resolveAuthSettings(
  global: AuthConfig,
  override: AuthOverride,
  routeIndex: number,
  hasVerifier: (type: string) => boolean,
  defaults: AuthDefaults,
  readKey: (path: string) => { text: string } | { error: string },
): { settings: AuthPlan } | { problems: Problem[] } {
  const problems: Problem[] = [];
  type Fields = Partial<NonNullable<AuthConfig>>;
  const own: Fields = definedOnly<Fields>(override ?? {});
  // A route that names its own verifier (type or key material) does not inherit the global
  // one piecemeal: a global secret next to a route's jwks_uri would be a contradiction.
  const ownVerifier = VERIFIER_KEYS.some((key) => own[key] !== undefined);
  const base: Fields = global ?? {};
  const written: Fields = { ...(ownVerifier ? withoutKeys(base, VERIFIER_KEYS) : base), ...own };
  const routeAuth: KeyPath = override ? ['routes', routeIndex, 'auth'] : ['routes', routeIndex, 'middleware'];
  // Blame the place that wrote the value; a missing value belongs to whoever owns the verifier.
  const where = (key: keyof Fields): KeyPath => {
    if (own[key] !== undefined) return [...routeAuth, key];
    if (written[key] !== undefined || (global && !ownVerifier)) return ['auth', key];
    return override ? [...routeAuth, key] : routeAuth;
  };
  const fail = (key: keyof Fields, message: string) => problems.push({ path: where(key), message });
  // The schema's defaults fill what nobody wrote (when the global section is absent).
  // (`definedOnly` leaves no undefined value to hide a default.)
  const merged = { ...defaults, ...definedOnly(written) } as AuthDefaults;

  const type = merged.type;
  if (!hasVerifier(type)) fail('type', `unknown verifier type "${type}" (built in: jwt, jwks, oidc)`);

  let publicKey: KeyObject | undefined;
  let publicKeyPem: string | undefined;
  if (merged.public_key !== undefined) {
    if (merged.public_key.includes('-----BEGIN')) publicKeyPem = merged.public_key;
    else {
      const read = readKey(merged.public_key);
      if ('error' in read) fail('public_key', read.error);
      else publicKeyPem = read.text;
    }
    if (publicKeyPem !== undefined) {
      try {
        publicKey = createPublicKey(publicKeyPem);
      } catch {
        fail('public_key', 'is not a valid PEM public key');
      }
    }
  }

  let algorithms = merged.algorithms;
  if (type === 'jwt') {
    if (merged.secret !== undefined && merged.public_key !== undefined) {
      fail('public_key', 'set either secret (HS*) or public_key, not both');
    } else if (merged.secret === undefined && merged.public_key === undefined) {
      fail('secret', 'type jwt needs auth.secret (HS256/384/512) or auth.public_key (RS/PS/ES/EdDSA)');
    } else if (merged.secret !== undefined) {
      algorithms ??= ['HS256'];
      const bad = algorithms.filter((a) => !a.startsWith('HS'));
      if (bad.length > 0)
        fail('algorithms', `${bad.join(', ')} cannot be verified with a secret; use public_key`);
    } else if (publicKey) {
      const possible = algorithmsForKey(publicKey);
      if (possible.length === 0) fail('public_key', `unsupported key type ${publicKey.asymmetricKeyType}`);
      algorithms ??= possible.slice(0, 1);
      const bad = algorithms.filter((a) => !possible.includes(a));
      if (bad.length > 0 && possible.length > 0) {
        fail(
          'algorithms',
          `${bad.join(', ')} cannot be verified with this ${publicKey.asymmetricKeyType} key`,
        );
      }
    }
  } else if (type === 'jwks' || type === 'oidc') {
    if (merged.secret !== undefined) fail('secret', `only applies to type jwt, not ${type}`);
    if (merged.public_key !== undefined) fail('public_key', `only applies to type jwt, not ${type}`);
    if (type === 'jwks' && merged.jwks_uri === undefined) fail('jwks_uri', 'type jwks needs auth.jwks_uri');
    if (type === 'oidc' && merged.issuer === undefined) fail('issuer', 'type oidc needs auth.issuer');
    if (type === 'oidc' && merged.issuer !== undefined && !URL.canParse(merged.issuer)) {
      fail('issuer', 'must be the issuer URL for oidc discovery');
    }
    algorithms ??= ASYMMETRIC;
    const hs = algorithms.filter((a) => a.startsWith('HS'));
    if (hs.length > 0)
      fail('algorithms', `${hs.join(', ')} cannot come from a key set; use type jwt with a secret`);
  }
  if (problems.length > 0) return { problems };

  // Optional keys are left out rather than set to undefined: the plan is JSON.
  const settings: Omit<AuthPlan, 'fingerprint'> = {
    enabled: merged.enabled,
    type,
    ...(merged.secret !== undefined ? { secret: merged.secret } : {}),
    ...(publicKeyPem !== undefined ? { publicKeyPem } : {}),
    algorithms: algorithms ?? [],
    ...(merged.jwks_uri !== undefined ? { jwksUri: merged.jwks_uri } : {}),
    ...(merged.issuer !== undefined ? { issuer: merged.issuer } : {}),
    ...(merged.audience !== undefined ? { audience: merged.audience } : {}),
    clockToleranceSec: merged.clock_tolerance / 1000,
    requiredClaims: merged.required_claims,
    forwardClaims: Object.entries(merged.forward_claims).map(([claim, header]) => [
      claim,
      header.toLowerCase(),
    ]),
    realm: merged.realm,
    maxTokenLength: merged.max_token_length,
    jwks: {
      timeoutMs: merged.jwks_timeout,
      cooldownMs: merged.jwks_cooldown,
      cacheMaxAgeMs: merged.jwks_cache_max_age,
    },
    cache: { size: merged.cache_size, ttlMs: merged.cache_ttl },
    options: merged.options ?? {},
  };
  // Forwarded claims are applied by each route's middleware, not by the shared verifier.
  const fingerprint = JSON.stringify({ ...settings, forwardClaims: undefined });
  return { settings: { ...settings, fingerprint } };
}

/**
 * Reads key files relative to `configDir`, each file once however many routes name it.
 */
export function keyFileReader(configDir: string): (path: string) => { text: string } | { error: string } {
  const read = new Map<string, { text: string } | { error: string }>();
  return (path) => {
    const file = isAbsolute(path) ? path : resolve(configDir, path);
    let result = read.get(file);
    if (result === undefined) {
      result = readKeyFile(file);
      read.set(file, result);
    }
    return result;
  };
}

function readKeyFile(file: string): { text: string } | { error: string } {
  try {
    return { text: readFileSync(file, 'utf8') };
  } catch (err) {
    return {
      error: `cannot read public key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    };
  }
}

const VERIFIER_KEYS = ['type', 'secret', 'public_key', 'jwks_uri', 'algorithms'] as const;

function withoutKeys<T extends object>(value: T, keys: readonly string[]): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([k]) => !keys.includes(k))) as Partial<T>;
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
