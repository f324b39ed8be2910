import type { Balanced } from './balancer.js';
import { RandomBalancer } from './random.js';

/**
 * `least_request`: power of two choices. Two distinct endpoints drawn by weight (as `random`
 * draws one), and the one with fewer of this worker's requests in flight per unit of weight
 * wins. Two random probes avoid the herd a global minimum causes (every worker sending its
 * next request to the same idle endpoint) at the cost of two reads; `+ 1` makes an idle
 * heavier endpoint win over an idle lighter one, so weights hold even when nothing is in flight.
 */
export class LeastRequestBalancer<E extends Balanced> extends RandomBalancer<E> {
  override pick(): E | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length <= 1) return endpoints[0];
    const i = this.draw.next();
    let j = this.draw.next();
    // A few redraws find a second endpoint even when one weight dominates; the neighbour after that.
    for (let tries = 0; j === i && tries < 3; tries++) j = this.draw.next();
    if (j === i) j = (i + 1) % endpoints.length;
    const a = endpoints[i] as E;
    const b = endpoints[j] as E;
    // (a.inFlight + 1) / a.weight <= (b.inFlight + 1) / b.weight, without dividing.
    return (a.inFlight + 1) * b.weight <= (b.inFlight + 1) * a.weight ? a : b;
  }
}
