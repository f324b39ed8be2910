import { createSecretKey } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Config } from './shared/config/schema.js';
import { OperatorError } from './shared/errors.js';

/** Why `portico token` cannot sign (shown to the user as is, after `portico token: `). */
export class DevTokenError extends OperatorError {
  constructor(message: string) {
    super('PORTICO_ERR_DEV_TOKEN', message, { lines: [`portico token: ${message}`] });
  }
}

export interface DevTokenOptions {
  sub: string;
  ttlSeconds: number;
  claims: Record<string, unknown>;
}

/**
 * Signs a development JWT with the global `auth.secret` (HS algorithm from `auth.algorithms`,
 * else HS256), carrying the configured issuer and audience so the gateway accepts it.
 */
export async function signDevToken(config: Config, options: DevTokenOptions): Promise<string> {
  const auth = config.auth;
  if (auth?.secret === undefined) {
    throw new DevTokenError('auth.secret is not set in this config: portico token signs with the HS secret');
  }
  const alg = auth.algorithms?.find((a) => a.startsWith('HS')) ?? 'HS256';
  const jwt = new SignJWT({ ...options.claims, sub: options.sub })
    .setProtectedHeader({ alg, typ: 'JWT' })
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.ttlSeconds);
  if (auth.issuer !== undefined) jwt.setIssuer(auth.issuer);
  if (auth.audience !== undefined) jwt.setAudience(auth.audience);
  return jwt.sign(createSecretKey(Buffer.from(auth.secret, 'utf8')));
}

/** `k=v` → `[k, v]`, where v is parsed as JSON when it is valid JSON (`n=1`, `admin=true`). */
export function parseClaim(text: string): [string, unknown] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new DevTokenError(`--claim expects key=value, got "${text}"`);
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  try {
    return [key, JSON.parse(raw) as unknown];
  } catch {
    return [key, raw];
  }
}
