import type { Balanced, RandomSource } from './balancer.js';

/**
 * Draws an index at random in proportion to weight: uniform when all weights are equal
 * (the common case, one multiplication), else a binary search over cumulative weights.
 */
export class WeightedDraw {
  #cumulative: Float64Array = new Float64Array(0);
  #total = 0;
  #uniform = true;
  #count = 0;

  constructor(private readonly random: RandomSource) {}

  reset(endpoints: readonly Balanced[]): void {
    const n = endpoints.length;
    this.#count = n;
    this.#cumulative = new Float64Array(n);
    let total = 0;
    let uniform = true;
    for (let i = 0; i < n; i++) {
      const weight = (endpoints[i] as Balanced).weight;
      if (weight !== (endpoints[0] as Balanced).weight) uniform = false;
      total += weight;
      this.#cumulative[i] = total;
    }
    this.#total = total;
    this.#uniform = uniform;
  }

  /** An index in [0, count); call only when count > 0. */
  next(): number {
    if (this.#uniform) return Math.floor(this.random() * this.#count);
    const at = this.random() * this.#total;
    const cumulative = this.#cumulative;
    let low = 0;
    let high = this.#count - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((cumulative[mid] as number) > at) high = mid;
      else low = mid + 1;
    }
    return low;
  }
}
