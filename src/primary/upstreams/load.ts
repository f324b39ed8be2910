import {
  type BreakerView,
  mergeBreakerViews,
  mergeRetryViews,
  type RetryView,
  type UpstreamPrimaryToWorker,
} from '../../shared/upstream-messages.js';

/*
 * In-flight requests per endpoint, summed over the workers, for `/admin/upstreams`. Only
 * the workers know (they balance with no IPC), so each is asked; one that does not answer
 * in time counts 0 rather than holding the answer up.
 */

/** upstream name → endpoint id → in-flight requests. */
export type Load = Map<string, Map<string, number>>;

/** What the workers said: in-flight requests, and each upstream's breaker over all workers. */
export interface Collected {
  inFlight: Load;
  /** The worst state and the longest wait of any worker; trips and active requests summed. */
  breakers: Map<string, BreakerView>;
  /** Summed over the workers. */
  retries: Map<string, RetryView>;
}

const ANSWER_TIMEOUT_MS = 1_000;

export class LoadCollector {
  readonly #waiting = new Map<number, { pending: number; load: Collected; done(): void }>();
  #nextId = 0;

  constructor(
    /** Sends to every live worker; returns how many it reached. */
    private readonly send: (message: UpstreamPrimaryToWorker) => number,
    private readonly timeoutMs = ANSWER_TIMEOUT_MS,
  ) {}

  collect(): Promise<Collected> {
    const id = this.#nextId++;
    const load: Collected = { inFlight: new Map(), breakers: new Map(), retries: new Map() };
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(load);
      };
      const timer = setTimeout(done, this.timeoutMs);
      const pending = this.send({ type: 'portico:upstream-load-collect', id });
      if (pending === 0) done();
      else this.#waiting.set(id, { pending, load, done });
    });
  }

  /** A worker's answer (`portico:upstream-load`). */
  answer(
    id: number,
    inFlight: Record<string, Record<string, number>>,
    breakers: Record<string, BreakerView> = {},
    retries: Record<string, RetryView> = {},
  ): void {
    const waiting = this.#waiting.get(id);
    if (waiting === undefined) return; // late: that listing was answered already
    const load = waiting.load;
    for (const [upstream, counts] of Object.entries(inFlight)) {
      let byEndpoint = load.inFlight.get(upstream);
      if (byEndpoint === undefined) load.inFlight.set(upstream, (byEndpoint = new Map<string, number>()));
      for (const [endpoint, n] of Object.entries(counts))
        byEndpoint.set(endpoint, (byEndpoint.get(endpoint) ?? 0) + n);
    }
    for (const [upstream, view] of Object.entries(breakers))
      load.breakers.set(upstream, mergeBreakerViews(load.breakers.get(upstream), view));
    for (const [upstream, view] of Object.entries(retries))
      load.retries.set(upstream, mergeRetryViews(load.retries.get(upstream), view));
    if (--waiting.pending === 0) waiting.done();
  }
}
