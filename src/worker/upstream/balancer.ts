import type { BalanceKind } from '../../shared/config/upstream-schema.js';
import { HashBalancer } from './hash.js';
import { LeastRequestBalancer } from './least-request.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';

/*
 * How a pool chooses an endpoint per request. The choice set changes rarely (an endpoint
 * list from the primary, a local ejection, its lapse) and is handed over with `reset`, where
 * everything derivable is computed; `pick` runs per request and allocates nothing.
 */

/** What a balancer reads of an endpoint. */
export interface Balanced {
  /** Stable across lists (`host:port`): hash placement depends on it. */
  readonly id: string;
  /** Relative share of traffic, ≥ 1. */
  readonly weight: number;
  /** This worker's requests in flight to it. */
  readonly inFlight: number;
}

export interface Balancer<E extends Balanced> {
  /** The endpoints to choose among from now on (not called per request). */
  reset(endpoints: readonly E[]): void;
  /** One endpoint for a request; `key` is its hash key (`hash` only). Undefined only when the set is empty. */
  pick(key: string | undefined): E | undefined;
}

/** Uniform in [0, 1); injectable so distribution tests can be exact. */
export type RandomSource = () => number;

/** The balancer `balance:` names. `hash` with no key for a request falls back to least_request. */
export function createBalancer<E extends Balanced>(
  kind: BalanceKind,
  random: RandomSource = Math.random,
): Balancer<E> {
  switch (kind) {
    case 'least_request':
      return new LeastRequestBalancer<E>(random);
    case 'round_robin':
      return new RoundRobinBalancer<E>();
    case 'random':
      return new RandomBalancer<E>(random);
    case 'hash':
      return new HashBalancer<E>(new LeastRequestBalancer<E>(random));
  }
}
