import type { Balanced, Balancer, RandomSource } from './balancer.js';
import { WeightedDraw } from './weighted-draw.js';

/** `random`: each request to an endpoint drawn in proportion to its weight. */
export class RandomBalancer<E extends Balanced> implements Balancer<E> {
  protected endpoints: readonly E[] = [];
  protected readonly draw: WeightedDraw;

  constructor(random: RandomSource) {
    this.draw = new WeightedDraw(random);
  }

  reset(endpoints: readonly E[]): void {
    this.endpoints = endpoints.slice();
    this.draw.reset(this.endpoints);
  }

  pick(): E | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length <= 1) return endpoints[0];
    return endpoints[this.draw.next()];
  }
}
