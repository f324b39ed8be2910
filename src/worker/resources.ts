import type { Logger } from 'pino';

type CloseHook = () => Promise<void> | void;

/**
 * A kind of per-worker resource and the type of its value, declared once beside the code
 * that creates it: `new ResourceKind<Promise<WorkerLimiter>>('ratelimit limiter')`.
 * A `retained` kind is never released by a reload (the metrics registry: counters must not
 * start again from zero).
 */
export class ResourceKind<T> {
  declare readonly _value: T;
  constructor(
    readonly name: string,
    readonly options: { retained?: boolean } = {},
  ) {}
}

interface Entry {
  value: unknown;
  retained: boolean;
  hooks: { name: string; hook: CloseHook }[];
}

/** What a resource's `create` gets: where to register the hooks that release that resource. */
export interface ResourceScope {
  onClose(name: string, hook: CloseHook): void;
}

/**
 * Per-worker resources shared by all routes (one Redis client, one tracer provider, one
 * verifier per auth fingerprint…) and the hooks that release them when the worker drains.
 * A resource is keyed by its kind and the settings it was made from, so it is created once
 * per worker however many routes use it, and a handler tree built later from another plan
 * reuses every resource whose settings did not change. A close hook registered through the
 * scope `create` is given belongs to that resource: a reload that no longer uses it releases
 * it alone (`release`), the rest at drain (`close`). (An explicit scope, not an
 * AsyncLocalStorage: one `run` would switch on async hooks for every promise of the worker.)
 */
export class WorkerResources {
  readonly #entries = new Map<string, Entry>();
  readonly #hooks: { name: string; hook: CloseHook }[] = [];
  #used: Set<string> | undefined;

  constructor(private readonly logger: Logger) {}

  /** The resource of `kind` made from `settings` (a canonical string), created on first use. */
  shared<T>(kind: ResourceKind<T>, settings: string, create: (scope: ResourceScope) => T): T {
    const key = `${kind.name}\u0000${settings}`;
    this.#used?.add(key);
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { value: undefined, retained: kind.options.retained === true, hooks: [] };
      this.#entries.set(key, entry);
      const hooks = entry.hooks;
      entry.value = create({ onClose: (name, hook) => void hooks.push({ name, hook }) });
    }
    return entry.value as T;
  }

  /** Registers cleanup run at drain, after the server stopped, newest first. */
  onClose(name: string, hook: CloseHook): void {
    this.#hooks.push({ name, hook });
  }

  /** From now on, remembers which resources are asked for (a handler tree being built). */
  track(): void {
    this.#used = new Set();
  }

  /** The keys of the resources asked for since `track()`. */
  used(): ReadonlySet<string> {
    const used = this.#used ?? new Set<string>();
    this.#used = undefined;
    return used;
  }

  /** Closes and forgets every resource no tree in `inUse` asked for (retained kinds stay). */
  async release(inUse: readonly ReadonlySet<string>[]): Promise<void> {
    for (const [key, entry] of this.#entries) {
      if (entry.retained || inUse.some((used) => used.has(key))) continue;
      this.#entries.delete(key);
      await this.#run(entry.hooks);
    }
  }

  /** Runs every hook; each is bounded so one stuck hook cannot block the exit. */
  async close(timeoutMs = 5_000): Promise<void> {
    const entries = [...this.#entries.values()].reverse();
    this.#entries.clear();
    for (const entry of entries) await this.#run(entry.hooks, timeoutMs);
    await this.#run(this.#hooks, timeoutMs);
  }

  async #run(hooks: { name: string; hook: CloseHook }[], timeoutMs = 5_000): Promise<void> {
    for (const { name, hook } of hooks.reverse()) {
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
    hooks.length = 0;
  }
}
