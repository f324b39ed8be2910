import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WORKER_SEMI_SPACE_MB, workerExecArgv } from '../../src/primary/worker-flags.js';

test('workers get a larger young generation unless the operator chose one', () => {
  const flag = `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`;
  assert.deepEqual(workerExecArgv([]), [flag]);
  assert.deepEqual(workerExecArgv(['--enable-source-maps']), ['--enable-source-maps', flag]);
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=8']), ['--max-semi-space-size=8']);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max_semi_space_size=64'), []);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512'), [flag]);
});
