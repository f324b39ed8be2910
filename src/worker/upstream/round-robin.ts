import type { Balanced, Balancer } from './balancer.js';

/**
 * `round_robin`: smooth weighted round robin, as nginx does it. Each pick adds every
 * endpoint's weight to its running score and takes the highest, which then pays back the
 * total; weights 1,1,2 give A C B C …, so a heavy endpoint's turns are spread out rather
 * than bunched, and every `sum(weights)` picks follow the weights exactly.
 */
export class RoundRobinBalancer<E extends Balanced> implements Balancer<E> {
  #endpoints: readonly E[] = [];
  #weights: Float64Array = new Float64Array(0);
  #scores: Float64Array = new Float64Array(0);
  #total = 0;

  reset(endpoints: readonly E[]): void {
    // Endpoints that stay keep their scores: frequent list updates (a state change elsewhere
    // in the pool) must not restart the cycle, which would favour whoever comes first in it.
    const kept = new Map<E, number>();
    this.#endpoints.forEach((e, i) => kept.set(e, this.#scores[i] as number));
    this.#endpoints = endpoints.slice();
    this.#weights = Float64Array.from(endpoints, (e) => e.weight);
    this.#scores = Float64Array.from(endpoints, (e) => kept.get(e) ?? 0);
    this.#total = this.#weights.reduce((sum, w) => sum + w, 0);
  }

  pick(): E | undefined {
    const n = this.#endpoints.length;
    if (n <= 1) return this.#endpoints[0];
    const scores = this.#scores;
    const weights = this.#weights;
    let best = 0;
    for (let i = 0; i < n; i++) {
      const score = (scores[i] as number) + (weights[i] as number);
      scores[i] = score;
      if (score > (scores[best] as number)) best = i;
    }
    scores[best] = (scores[best] as number) - this.#total;
    return this.#endpoints[best];
  }
}
