import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RespawnBackoff } from '../../src/primary/backoff.js';

test('quick deaths back off exponentially up to the cap; a stable run resets', () => {
  const b = new RespawnBackoff(100, 1000, 5000);
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map(() => b.next(0, 10)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(b.next(1, 10), 100, 'slots are independent');
  assert.equal(b.next(0, 6000), 0);
  assert.equal(b.next(0, 10), 100);
});
