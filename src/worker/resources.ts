import type { Logger } from 'pino';

type CloseHook = () => Promise<void> | void;

/**
 * Per-worker resources shared by all routes (one Redis client, one tracer provider…) and
 * the hooks that release them when the worker drains. Middleware factories get this in
 * their env, so a resource is created once per worker however many routes use it.
 */
export class WorkerResources {
  readonly #shared = new Map<string, unknown>();
  readonly #hooks: { name: string; hook: CloseHook }[] = [];

  constructor(private readonly logger: Logger) {}

  /** Returns the resource under `key`, creating it on first use. */
  shared<T>(key: string, create: () => T): T {
    if (!this.#shared.has(key)) this.#shared.set(key, create());
    return this.#shared.get(key) as T;
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
