import type { Claims } from './verifier.js';

interface Entry {
  claims: Claims;
  expiresAt: number;
}

/**
 * Remembers verified tokens so a client reusing its token does not pay a signature check per
 * request. Bounded in entries and in time: an entry lives until the token's own `exp` (never
 * past it, clock tolerance not included) and at most `ttlMs`, so a revoked signing key stops
 * being honoured within `ttlMs`. Oldest entries are evicted first when full.
 */
export class ClaimsCache {
  readonly #entries = new Map<string, Entry>();

  constructor(
    private readonly size: number,
    private readonly ttlMs: number,
    private readonly maxKeyLength = 4096,
  ) {}

  get(token: string, now: number): Claims | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now) {
      this.#entries.delete(token);
      return undefined;
    }
    return entry.claims;
  }

  set(token: string, claims: Claims, now: number): void {
    if (this.size === 0 || token.length > this.maxKeyLength) return;
    const exp = typeof claims.exp === 'number' ? claims.exp * 1000 : Number.POSITIVE_INFINITY;
    const expiresAt = Math.min(exp, now + this.ttlMs);
    if (expiresAt <= now) return;
    if (this.#entries.size >= this.size) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(token, { claims, expiresAt });
  }

  get entries(): number {
    return this.#entries.size;
  }
}
