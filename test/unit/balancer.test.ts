import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BalanceKind } from '../../src/shared/config/upstream-schema.js';
import { type Balanced, createBalancer } from '../../src/worker/upstream/balancer.js';
import { HashBalancer } from '../../src/worker/upstream/hash.js';
import { LeastRequestBalancer } from '../../src/worker/upstream/least-request.js';
import { RoundRobinBalancer } from '../../src/worker/upstream/round-robin.js';

/*
 * One contract, every balancer (STYLE principle 4), then each one's own distribution. Random
 * ones get a seeded generator, so every count below is the same on every run.
 */

interface E extends Balanced {
  id: string;
  weight: number;
  inFlight: number;
}

const endpoint = (id: string, weight = 1, inFlight = 0): E => ({ id, weight, inFlight });

/** mulberry32: a small seeded generator. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KINDS: BalanceKind[] = ['least_request', 'round_robin', 'random', 'hash'];

function counts(picks: (E | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of picks) if (p) out[p.id] = (out[p.id] ?? 0) + 1;
  return out;
}

for (const kind of KINDS) {
  describe(`balancer contract: ${kind}`, () => {
    const make = () => createBalancer<E>(kind, seeded(7));

    test('an empty set picks nothing, before and after a reset', () => {
      const b = make();
      assert.equal(b.pick(undefined), undefined);
      assert.equal(b.pick('key'), undefined);
      b.reset([endpoint('a')]);
      b.reset([]);
      assert.equal(b.pick(undefined), undefined);
      assert.equal(b.pick('key'), undefined);
    });

    test('a set of one always picks it, with or without a key', () => {
      const b = make();
      const only = endpoint('a', 3);
      b.reset([only]);
      for (let i = 0; i < 50; i++) {
        assert.equal(b.pick(undefined), only);
        assert.equal(b.pick(`k${i}`), only);
      }
    });

    test('picks only from the set last given, and reaches every member', () => {
      const b = make();
      b.reset([endpoint('x'), endpoint('y')]);
      const set = [endpoint('a'), endpoint('b', 2), endpoint('c')];
      b.reset(set);
      const picks = Array.from({ length: 600 }, (_, i) => b.pick(kind === 'hash' ? `key-${i}` : undefined));
      assert.ok(picks.every((p) => p !== undefined && set.includes(p)));
      assert.deepEqual(Object.keys(counts(picks)).sort(), ['a', 'b', 'c']);
    });

    test("the caller's array may change after a reset without changing the choices", () => {
      const b = make();
      const set = [endpoint('a'), endpoint('b')];
      b.reset(set);
      set.length = 0;
      set.push(endpoint('z'));
      for (let i = 0; i < 100; i++) assert.notEqual(b.pick(`k${i}`)?.id, 'z');
    });

    test('a heavier endpoint gets more requests (weight 3 vs 1)', () => {
      const b = make();
      b.reset([endpoint('light', 1), endpoint('heavy', 3)]);
      const picks = Array.from({ length: 4000 }, (_, i) => b.pick(kind === 'hash' ? `user-${i}` : undefined));
      const c = counts(picks);
      assert.ok((c.heavy ?? 0) > 2 * (c.light ?? 0), JSON.stringify(c));
    });
  });
}

describe('round_robin (smooth weighted)', () => {
  test('weights 1,1,2 give exactly 100/100/200 of 400, spread (never the same endpoint 3 times running)', () => {
    const b = new RoundRobinBalancer<E>();
    b.reset([endpoint('a'), endpoint('b'), endpoint('c', 2)]);
    const picks = Array.from({ length: 400 }, () => b.pick());
    assert.deepEqual(counts(picks), { a: 100, b: 100, c: 200 });
    for (let i = 2; i < picks.length; i++) {
      assert.ok(!(picks[i] === picks[i - 1] && picks[i] === picks[i - 2]), `run at ${i}`);
    }
  });

  test('a reset with the same endpoints does not restart the cycle', () => {
    const b = new RoundRobinBalancer<E>();
    const set = [endpoint('a'), endpoint('b'), endpoint('c', 2)];
    b.reset(set);
    const picks: (E | undefined)[] = [];
    // A list update after every pick: without kept scores, `c` would win every time.
    for (let i = 0; i < 400; i++) {
      picks.push(b.pick());
      b.reset(set);
    }
    assert.deepEqual(counts(picks), { a: 100, b: 100, c: 200 });
  });

  test('equal weights take turns', () => {
    const b = new RoundRobinBalancer<E>();
    b.reset([endpoint('a'), endpoint('b'), endpoint('c')]);
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.pick()?.id),
      ['a', 'b', 'c', 'a', 'b', 'c'],
    );
  });
});

describe('random (weighted)', () => {
  test('weights 1,1,2 over 40 000 draws: each share within 1.5 points of 25/25/50 %', () => {
    const b = createBalancer<E>('random', seeded(1));
    b.reset([endpoint('a'), endpoint('b'), endpoint('c', 2)]);
    const c = counts(Array.from({ length: 40_000 }, () => b.pick(undefined)));
    for (const [id, share] of [
      ['a', 25],
      ['b', 25],
      ['c', 50],
    ] as const) {
      assert.ok(Math.abs((c[id] ?? 0) / 400 - share) < 1.5, JSON.stringify(c));
    }
  });
});

describe('least_request (power of two choices)', () => {
  test('never picks the busier of two', () => {
    const busy = endpoint('busy', 1, 5);
    const idle = endpoint('idle', 1, 0);
    const b = new LeastRequestBalancer<E>(seeded(3));
    b.reset([busy, idle]);
    for (let i = 0; i < 200; i++) assert.equal(b.pick(), idle);
  });

  test('in flight is compared per unit of weight: 3 in flight on weight 4 beats 1 on weight 1', () => {
    const b = new LeastRequestBalancer<E>(seeded(3));
    const heavy = endpoint('heavy', 4, 3);
    b.reset([endpoint('light', 1, 1), heavy]);
    for (let i = 0; i < 100; i++) assert.equal(b.pick(), heavy);
  });

  test('with three endpoints, the busiest is never chosen and the idlest most often', () => {
    const b = new LeastRequestBalancer<E>(seeded(5));
    b.reset([endpoint('a', 1, 0), endpoint('b', 1, 2), endpoint('c', 1, 9)]);
    const c = counts(Array.from({ length: 3000 }, () => b.pick()));
    assert.equal(c.c, undefined);
    // a wins every pair it is in (2 of 3 pairs), b only the pair {b, c}.
    assert.ok((c.a ?? 0) > 1.5 * (c.b ?? 0), JSON.stringify(c));
  });
});

describe('hash (consistent ring)', () => {
  const keys = Array.from({ length: 3000 }, (_, i) => `session-${i}`);
  const placement = (set: E[]) => {
    const b = new HashBalancer<E>(createBalancer<E>('least_request', seeded(9)));
    b.reset(set);
    return new Map(keys.map((k) => [k, b.pick(k)?.id]));
  };
  const a = endpoint('10.0.0.1:80');
  const bb = endpoint('10.0.0.2:80');
  const c = endpoint('10.0.0.3:80');

  test('the same key always reaches the same endpoint, in another instance too', () => {
    const one = placement([a, bb, c]);
    // Built anew, in another order: what another worker builds from the same list.
    const two = placement([c, a, bb]);
    assert.deepEqual(one, two);
  });

  test('three equal endpoints share the keys within 25–42 % each', () => {
    const shares = counts([...placement([a, bb, c]).values()].map((id) => endpoint(id as string)));
    for (const n of Object.values(shares))
      assert.ok(n > 0.25 * keys.length && n < 0.42 * keys.length, JSON.stringify(shares));
  });

  test('removing one of three moves only the keys that were on it; adding it back restores them', () => {
    const before = placement([a, bb, c]);
    const after = placement([a, c]);
    let moved = 0;
    for (const [key, id] of before) {
      if (id === bb.id) continue;
      assert.equal(after.get(key), id, `${key} moved from ${id}`);
    }
    for (const [key, id] of before) if (after.get(key) !== id) moved++;
    assert.ok(moved <= keys.length / 3 + keys.length * 0.06, `${moved} moved`);
    assert.deepEqual(placement([a, bb, c]), before);
  });

  test('a request without a key goes to the fallback balancer', () => {
    const b = new HashBalancer<E>(createBalancer<E>('least_request', seeded(9)));
    const busy = endpoint('busy', 1, 4);
    const idle = endpoint('idle');
    b.reset([busy, idle]);
    for (let i = 0; i < 50; i++) assert.equal(b.pick(undefined), idle);
  });
});
