import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  clusterWorkers,
  formatCpuList,
  orderBySiblings,
  parseCpuList,
  planLayout,
  roleCounts,
  scalingCounts,
} from '../../bench/core-map.js';

const cpus = (n: number) => Array.from({ length: n }, (_, i) => i);
const lists = (layout: ReturnType<typeof planLayout>) =>
  Object.fromEntries(Object.entries(layout.cpus).map(([role, list]) => [role, formatCpuList(list)]));

describe('bench core map (issue 17)', () => {
  for (const [cores, expected, gateway] of [
    [8, { client: '0-1', upstream: '2', redis: '3', otlp: '4', gateway: '5-7' }, 3],
    [16, { client: '0-3', upstream: '4-5', redis: '6', otlp: '7', gateway: '8-15' }, 8],
    [32, { client: '0-7', upstream: '8-11', redis: '12', otlp: '13', gateway: '14-31' }, 18],
  ] as const) {
    test(`${cores} cores: each role on its own cores, the gateway gets the rest`, () => {
      const layout = planLayout(cores, cpus(cores));
      assert.equal(layout.kind, 'separate');
      assert.equal(layout.pinned, true);
      assert.equal(layout.folded, false);
      assert.deepEqual(lists(layout), expected);
      assert.equal(roleCounts(cores).gateway, gateway);
      assert.equal(clusterWorkers(layout), gateway);
      assert.equal(layout.clientThreads, cores / 4);
      // No CPU serves two roles.
      const all = Object.values(layout.cpus).flat();
      assert.equal(new Set(all).size, cores);
    });
  }

  test('scaling counts: 1, 2, 4, 8 as far as the gateway has cores', () => {
    assert.deepEqual(scalingCounts(planLayout(2, cpus(2))), [1, 2]);
    assert.deepEqual(scalingCounts(planLayout(8, cpus(8))), [1, 2]);
    assert.deepEqual(scalingCounts(planLayout(12, cpus(12))), [1, 2, 4]);
    assert.deepEqual(scalingCounts(planLayout(16, cpus(16))), [1, 2, 4, 8]);
    assert.deepEqual(scalingCounts(planLayout(32, cpus(32))), [1, 2, 4, 8]);
  });

  test('2 cores: shared, nothing pinned, one load-generator thread (as before issue 17)', () => {
    const layout = planLayout(2, [0, 1]);
    assert.equal(layout.kind, 'shared');
    assert.equal(layout.pinned, false);
    assert.equal(layout.clientThreads, 1);
    assert.equal(clusterWorkers(layout), 2);
    assert.deepEqual(new Set(Object.values(lists(layout))), new Set(['0-1']));
  });

  test('--cpus below the machine: shared over the first N CPUs, pinned', () => {
    const layout = planLayout(4, cpus(16));
    assert.equal(layout.kind, 'shared');
    assert.equal(layout.pinned, true);
    assert.deepEqual(new Set(Object.values(lists(layout))), new Set(['0-3']));
  });

  test('the CPU ids this process may use are handed out in their order', () => {
    const available = [2, 3, 6, 7, 10, 11, 14, 15];
    assert.deepEqual(lists(planLayout(8, available)), {
      client: '2-3',
      upstream: '6',
      redis: '7',
      otlp: '10',
      gateway: '11,14-15',
    });
  });

  test('more cores planned than available: folded evenly onto the real CPUs', () => {
    const layout = planLayout(16, [0, 1]);
    assert.equal(layout.folded, true);
    assert.equal(layout.kind, 'separate');
    assert.deepEqual(lists(layout), { client: '0', upstream: '0', redis: '0', otlp: '0', gateway: '1' });
    assert.equal(layout.clientThreads, 4);
  });

  test('CPU lists as taskset and /proc print them', () => {
    assert.equal(formatCpuList([3, 0, 1, 2, 8, 10, 11]), '0-3,8,10-11');
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList(formatCpuList([5])), [5]);
  });

  test('hyperthreads of one physical core are handed out together', () => {
    // 16 logical CPUs on 8 cores, Linux's usual numbering: CPU i and i + 8 share a core.
    const siblings = (cpu: number) => [cpu % 8, (cpu % 8) + 8];
    const order = orderBySiblings(cpus(16), siblings);
    assert.deepEqual(order, [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15]);
    assert.deepEqual(lists(planLayout(16, order)), {
      client: '0-1,8-9',
      upstream: '2,10',
      redis: '3',
      otlp: '11',
      gateway: '4-7,12-15',
    });
    // Siblings outside the usable set are left out; no topology means every CPU its own core.
    assert.deepEqual(orderBySiblings([1, 9, 2], siblings), [1, 9, 2]);
    assert.deepEqual(
      orderBySiblings([3, 1, 2], () => []),
      [1, 2, 3],
    );
  });

  test('nonsense core counts are refused', () => {
    assert.throws(() => planLayout(0, [0]), /positive integer/);
    assert.throws(() => planLayout(Number.NaN, [0]), /positive integer/);
  });
});
