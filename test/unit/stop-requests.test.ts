import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { buildPlan } from '../../src/primary/plan/build.js';
import { loadConfigText } from '../../src/shared/config/load.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const CHILD = fileURLToPath(new URL('../fixtures/plan-handover-child.js', import.meta.url));

test('a shutdown that arrives in the same channel read as the plan still stops the worker', async () => {
  const yaml = 'routes:\n  - path: /*\n    target: http://127.0.0.1:1\n';
  const file = '/tmp/portico-unit/portico.yaml';
  const plan = buildPlan(
    loadConfigText(yaml, file, new MiddlewareRegistry(), {}),
    file,
    '/tmp/portico-unit',
    {},
  );
  const dir = mkdtempSync(join(tmpdir(), 'portico-handover-'));
  const sent = join(dir, 'sent');
  const child = fork(CHILD, [sent], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const heard: unknown[] = [];
  child.on('message', (message: { type?: string }) => {
    if (message.type === 'child-ready') {
      child.send({ type: 'portico:plan', plan });
      child.send({ type: 'portico:shutdown' }, () => writeFileSync(sent, ''));
    } else if (message.type === 'child-stopped') heard.push(message);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(signal, null, 'the child was killed: it never heard the shutdown');
  assert.equal(code, 0);
  assert.deepEqual(heard, [
    { type: 'child-stopped', reason: 'primary asked', replaced: false, hash: plan.hash },
  ]);
});
