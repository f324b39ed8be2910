import { z } from 'zod';
import { type AuthDefaults, JWT_ALGORITHMS } from './auth-settings.js';
import { duration, optionalDuration } from './fields.js';

const httpUrl = z
  .string()
  .refine((v) => /^https?:\/\/[^\s]+$/.test(v) && URL.canParse(v), 'must be an http:// or https:// URL');

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/*
 * The `auth` settings, declared once and used twice: the global section (with defaults) and
 * a route's override block (no defaults, so only the keys it sets replace the global ones).
 */
function authFields(withDefaults: boolean) {
  const d = <T extends z.ZodType>(schema: T, value: z.input<T>) =>
    withDefaults ? schema.default(value as never) : schema.optional();
  const dur = (fallback: string, max: string) =>
    withDefaults ? duration(fallback, max) : optionalDuration(max);
  return {
    enabled: d(z.boolean(), true).describe(
      'Set to false to make the `auth` middleware let everything through.',
    ),
    type: d(z.string().min(1), 'jwt').describe(
      'Token verifier: `jwt` (static secret or public key), `jwks` (keys from `jwks_uri`), `oidc` (discovery from `issuer`), or a type registered with `registerVerifier`.',
    ),
    secret: z
      .string()
      .min(1)
      .optional()
      .describe('HMAC secret for HS256/384/512 (`jwt` only). Keep it out of the file: `${JWT_SECRET}`.'),
    public_key: z
      .string()
      .min(1)
      .optional()
      .describe('PEM public key, inline or a file path, for RS*/PS*/ES*/EdDSA (`jwt` only).'),
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS))
      .min(1)
      .optional()
      .describe(
        'Accepted `alg` values. Default: HS256 with `secret`; from the key type with `public_key`; every asymmetric one for `jwks`/`oidc`. HS and asymmetric algorithms cannot be mixed.',
      ),
    jwks_uri: httpUrl.optional().describe('JWKS endpoint (`jwks`).'),
    issuer: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Required `iss`; for `oidc` also the discovery base (`{issuer}/.well-known/openid-configuration`).',
      ),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('Required `aud` (one of the listed values).'),
    clock_tolerance: dur('5s', '10m').describe(
      'Allowed clock skew for `exp`, `nbf` and `iat`: a token issued (`iat`) further in the future is refused.',
    ),
    required_claims: d(z.array(z.string().min(1)), []).describe('Claims that must be present, e.g. `[sub]`.'),
    forward_claims: d(
      z.record(z.string().min(1), z.string().regex(HEADER_NAME, 'must be an HTTP header name')),
      {},
    ).describe(
      'Claims to send upstream as headers, e.g. `{sub: X-User-Id}`. Client-sent copies of these headers are always removed.',
    ),
    realm: d(z.string().regex(/^[^"\\]*$/, 'must not contain quotes or backslashes'), 'portico').describe(
      'The `realm` of the `WWW-Authenticate` challenge.',
    ),
    max_token_length: d(z.number().int().min(64).max(65_536), 8192).describe(
      'Longer bearer tokens are rejected as invalid without being parsed.',
    ),
    jwks_timeout: dur('2s', '1m').describe(
      'Bound on fetching JWKS/discovery documents; a slow or dead endpoint yields 503, never a hung request.',
    ),
    jwks_cooldown: dur('30s', '1h').describe(
      'Minimum time between JWKS refetches triggered by an unknown `kid`.',
    ),
    jwks_cache_max_age: dur('10m', '24h').describe('How long fetched JWKS keys are used before refetching.'),
    cache_size: d(z.number().int().min(0).max(1_000_000), 10_000).describe(
      'Verified tokens remembered per verifier (0 disables). An entry lives until the token expires, at most `cache_ttl`.',
    ),
    cache_ttl: dur('1m', '1h').describe('Upper bound on how long a verified token is remembered.'),
    options: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Free-form settings passed to a custom verifier type.'),
  };
}

const authSectionSchema = z.strictObject(authFields(true));

export const authSchema = authSectionSchema.optional().describe('Global settings of the `auth` middleware.');

export const authOverrideSchema = z.strictObject(authFields(false)).optional();

export type AuthConfig = z.output<typeof authSchema>;
export type AuthOverride = z.output<typeof authOverrideSchema>;

/** The global section's defaults: what a route's `auth` resolves against without an `auth:` section. */
export const AUTH_DEFAULTS = authSectionSchema.parse({}) as AuthDefaults;
