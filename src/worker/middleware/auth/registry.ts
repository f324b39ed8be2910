import { jwksVerifier, jwtVerifier, oidcVerifier } from './jose-verifiers.js';
import type { AuthSettings, TokenVerifier, VerifierFactory } from './verifier.js';
import type { Logger } from 'pino';

/** `auth.type` → verifier factory: the built-ins plus those registered with `registerVerifier`. */
export class VerifierRegistry {
  readonly #factories = new Map<string, VerifierFactory>([
    ['jwt', jwtVerifier],
    ['jwks', jwksVerifier],
    ['oidc', oidcVerifier],
  ]);

  register(type: string, factory: VerifierFactory): void {
    if (!/^[A-Za-z][A-Za-z0-9_.-]*$/.test(type)) throw new TypeError(`invalid verifier type "${type}"`);
    if (this.#factories.has(type)) throw new Error(`verifier type "${type}" is already registered`);
    if (typeof factory !== 'function') throw new TypeError(`verifier "${type}" must be a factory function`);
    this.#factories.set(type, factory);
  }

  has(type: string): boolean {
    return this.#factories.has(type);
  }

  async create(settings: AuthSettings, env: { logger: Logger }): Promise<TokenVerifier> {
    const factory = this.#factories.get(settings.type);
    if (!factory) throw new Error(`unknown verifier type "${settings.type}"`);
    return factory(settings, env);
  }
}
