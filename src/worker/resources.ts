import type { Logger } from 'pino';

type CloseHook = () => Promise<void> | void;

/**
 * A kind of per-worker resource and the type of its value, declared once beside the code
 * that creates it: `new ResourceKind<Promise<WorkerLimiter>>('ratelimit limiter')`.
 */
export class ResourceKind<T> {
  declare readonly _value: T;
  constructor(readonly name: string) {}
}

/**
 * Per-worker resources shared by all routes (one Redis client, one tracer provider, one
 * verifier per auth fingerprint…) and the hooks that release them when the worker drains.
 * A resource is keyed by its kind and the settings it was made from, so it is created once
 * per worker however many routes use it, and a handler tree built later from another plan
 * reuses every resource whose settings did not change.
 */
export class WorkerResources {
  readonly #shared = new Map<ResourceKind<unknown>, Map<string, unknown>>();
  readonly #hooks: { name: string; hook: CloseHook }[] = [];

  constructor(private readonly logger: Logger) {}

  /** The resource of `kind` made from `settings` (a canonical string), created on first use. */
  shared<T>(kind: ResourceKind<T>, settings: string, create: () => T): T {
    let byKind = this.#shared.get(kind);
    if (byKind === undefined) {
      byKind = new Map();
      this.#shared.set(kind, byKind);
    }
    if (!byKind.has(settings)) byKind.set(settings, create());
    return byKind.get(settings) as T;
  }

  /** Registers cleanup run at drain, after the server stopped, newest first. */
  onClose(name: string, hook: CloseHook): void {
    this.#hooks.push({ name, hook });
  }

  /** Runs every hook; each is bounded so one stuck hook cannot block the exit. */
  async close(timeoutMs = 5_000): Promise<void> {
    for (const { name, hook } of this.#hooks.reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.logger.warn({ resource: name }, 'close hook timed out');
          resolve();
        }, timeoutMs);
      });
      try {
        await Promise.race([Promise.resolve().then(hook), bound]);
      } catch (err) {
        this.logger.warn({ err, resource: name }, 'close hook failed');
      } finally {
        clearTimeout(timer);
      }
    }
    this.#hooks.length = 0;
  }
}
