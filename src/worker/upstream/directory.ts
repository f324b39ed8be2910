import {
  type BreakerView,
  type EndpointView,
  isUpstreamPrimaryToWorker,
  type RetryView,
  type UpstreamWorkerToPrimary,
  mergeBreakerViews,
  mergeRetryViews,
} from '../../shared/upstream-messages.js';
import type { UpstreamPool } from './pool.js';

/*
 * The worker's end of the primary's endpoint broadcasts. It exists from the worker's first
 * moment, before the plan is asked for: the primary sends a pool's list just ahead of the
 * plan (and of a reload's prepare), and a message that arrives before its listener is lost.
 * Lists are kept by pool (name + fingerprint) until a pool of that key attaches, and handed
 * to it then and on every change.
 */

const keyOf = (name: string, fingerprint: string) => `${name}\u0000${fingerprint}`;

export class EndpointDirectory {
  readonly #lists = new Map<string, EndpointView[]>();
  readonly #pools = new Map<string, Set<UpstreamPool>>();
  readonly #onMessage = (message: unknown) => this.#receive(message);

  /** Starts listening to the primary. */
  install(): this {
    process.on('message', this.#onMessage);
    return this;
  }

  uninstall(): void {
    process.off('message', this.#onMessage);
  }

  /** The latest list of pool `name`+`fingerprint`, if one came. */
  list(name: string, fingerprint: string): readonly EndpointView[] | undefined {
    return this.#lists.get(keyOf(name, fingerprint));
  }

  /**
   * Feeds `pool` the list of its key now and on every change; the returned function stops
   * that (and forgets the list once no pool of its key is left).
   */
  attach(pool: UpstreamPool, fingerprint: string): () => void {
    const key = keyOf(pool.name, fingerprint);
    let pools = this.#pools.get(key);
    if (pools === undefined) {
      pools = new Set();
      this.#pools.set(key, pools);
    }
    pools.add(pool);
    pool.update(this.#lists.get(key) ?? []);
    return () => {
      pools.delete(pool);
      if (pools.size > 0) return;
      this.#pools.delete(key);
      this.#lists.delete(key);
    };
  }

  /** In-flight requests per upstream name per endpoint id, summed over the pools of a name. */
  load(): Record<string, Record<string, number>> {
    const load: Record<string, Record<string, number>> = {};
    for (const pools of this.#pools.values()) {
      for (const pool of pools) {
        const counts = (load[pool.name] ??= {});
        for (const [id, n] of Object.entries(pool.inFlight())) counts[id] = (counts[id] ?? 0) + n;
      }
    }
    return load;
  }

  /** Each upstream's breaker (several pools of a name, during a reload: the worst state). */
  breakers(): Record<string, BreakerView> {
    const views: Record<string, BreakerView> = {};
    for (const pools of this.#pools.values()) {
      for (const pool of pools) {
        views[pool.name] = mergeBreakerViews(views[pool.name], pool.breakerView());
      }
    }
    return views;
  }

  /** Each upstream's retries, summed over the pools of a name. */
  retries(): Record<string, RetryView> {
    const views: Record<string, RetryView> = {};
    for (const pools of this.#pools.values()) {
      for (const pool of pools) {
        views[pool.name] = mergeRetryViews(views[pool.name], pool.retryView());
      }
    }
    return views;
  }

  #receive(message: unknown): void {
    if (!isUpstreamPrimaryToWorker(message)) return;
    if (message.type === 'portico:endpoints') {
      const key = keyOf(message.upstream, message.fingerprint);
      this.#lists.set(key, message.endpoints);
      for (const pool of this.#pools.get(key) ?? []) pool.update(message.endpoints);
      return;
    }
    const answer: UpstreamWorkerToPrimary = {
      type: 'portico:upstream-load',
      id: message.id,
      inFlight: this.load(),
      breakers: this.breakers(),
      retries: this.retries(),
    };
    if (process.connected) process.send?.(answer);
  }
}
