import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CrashLoopDetector } from '../../src/primary/crash-loop.js';

test('five quick deaths within the window give up; a survivor or a stable run does not', () => {
  const quick = new CrashLoopDetector(5, 60_000);
  assert.deepEqual(
    [0, 1_000, 2_000, 3_000, 4_000].map((t) => quick.died(t, 500, 0)),
    [false, false, false, false, true],
  );

  const spread = new CrashLoopDetector(5, 60_000);
  assert.deepEqual(
    [0, 20_000, 40_000, 60_000, 80_000].map((t) => spread.died(t, 500, 0)),
    [false, false, false, false, false],
    'never five within 60 s',
  );

  const survivor = new CrashLoopDetector(5, 60_000);
  for (const t of [0, 1, 2, 3]) survivor.died(t, 500, 61_000);
  assert.equal(survivor.died(4, 500, 61_000), false, 'a worker up for a minute keeps the instance going');

  const stable = new CrashLoopDetector(5, 60_000);
  for (const t of [0, 1, 2, 3]) stable.died(t, 500, 0);
  assert.equal(stable.died(4, 90_000, 0), false, 'a worker that lived a minute resets the count');
  assert.equal(stable.died(5, 500, 0), false);
});
