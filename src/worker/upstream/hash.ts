import type { Balanced, Balancer } from './balancer.js';

/*
 * `hash`: consistent hashing on a ring. Each endpoint owns `VNODES_PER_WEIGHT × weight`
 * points, placed by hashing its id, so every worker (and every instance) builds the same ring
 * from the same list, and when an endpoint comes or goes only the keys on its arcs move
 * (about 1/n of them). A request's key is hashed once and owned by the next point clockwise:
 * a binary search over a sorted Uint32Array, no allocation.
 */

/** Points per unit of weight: enough that three endpoints share the ring within a few per cent. */
const VNODES_PER_WEIGHT = 160;
/** Bounds the ring of a heavy pool (weights go to 1000); shares stay proportional. */
const MAX_POINTS = 65_536;

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so that near keys spread over the ring. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export class HashBalancer<E extends Balanced> implements Balancer<E> {
  #points: Uint32Array = new Uint32Array(0);
  #owners: E[] = [];
  #single: E | undefined;

  /** `fallback` serves requests that have no key (no such header or cookie). */
  constructor(private readonly fallback: Balancer<E>) {}

  reset(endpoints: readonly E[]): void {
    this.fallback.reset(endpoints);
    this.#single = endpoints.length === 1 ? endpoints[0] : undefined;
    const total = endpoints.reduce((sum, e) => sum + e.weight, 0);
    const scale = Math.min(VNODES_PER_WEIGHT, MAX_POINTS / Math.max(total, 1));
    const ring: { point: number; owner: E }[] = [];
    for (const endpoint of endpoints) {
      const count = Math.max(1, Math.round(endpoint.weight * scale));
      for (let i = 0; i < count; i++) ring.push({ point: hash32(`${endpoint.id}#${i}`), owner: endpoint });
    }
    // Ties (rare) broken by id, so every worker orders the ring the same way.
    ring.sort(
      (a, b) => a.point - b.point || (a.owner.id < b.owner.id ? -1 : a.owner.id > b.owner.id ? 1 : 0),
    );
    this.#points = Uint32Array.from(ring, (r) => r.point);
    this.#owners = ring.map((r) => r.owner);
  }

  pick(key: string | undefined): E | undefined {
    if (this.#single !== undefined) return this.#single;
    if (key === undefined) return this.fallback.pick(undefined);
    const points = this.#points;
    const n = points.length;
    if (n === 0) return undefined;
    const h = hash32(key);
    let low = 0;
    let high = n;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((points[mid] as number) < h) low = mid + 1;
      else high = mid;
    }
    return this.#owners[low === n ? 0 : low];
  }
}
