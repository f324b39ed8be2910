import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoadCollector } from '../../src/primary/upstreams/load.js';
import type { UpstreamPrimaryToWorker } from '../../src/shared/upstream-messages.js';

/* In-flight counts for /admin/upstreams: summed over the workers that answer, 0 for the rest. */

describe('upstream load collection', () => {
  test('sums the answers per upstream and endpoint', async () => {
    const asked: UpstreamPrimaryToWorker[] = [];
    const collector = new LoadCollector((m) => {
      asked.push(m);
      return 2;
    });
    const collecting = collector.collect();
    const [message] = asked as [{ type: string; id: number }];
    assert.equal(message.type, 'portico:upstream-load-collect');
    collector.answer(message.id, { users: { 'a:1': 2, 'b:1': 0 } });
    collector.answer(message.id, { users: { 'a:1': 1 }, other: { 'c:1': 4 } });
    const load = (await collecting).inFlight;
    assert.deepEqual(
      [...load].map(([name, counts]) => [name, Object.fromEntries(counts)]),
      [
        ['users', { 'a:1': 3, 'b:1': 0 }],
        ['other', { 'c:1': 4 }],
      ],
    );
  });

  test('breakers over the workers: the worst state and longest wait, trips and active summed', async () => {
    const asked: number[] = [];
    const collector = new LoadCollector((m) => {
      if (m.type === 'portico:upstream-load-collect') asked.push(m.id);
      return 2;
    });
    const collecting = collector.collect();
    const id = asked[0] as number;
    collector.answer(id, {}, { users: { state: 0, retryAfter: 0, trips: 1, active: 3 } });
    collector.answer(id, {}, { users: { state: 2, retryAfter: 4, trips: 2, active: 0 } });
    assert.deepEqual(Object.fromEntries((await collecting).breakers), {
      users: { state: 2, retryAfter: 4, trips: 3, active: 3 },
    });
  });

  test('a worker that does not answer in time counts 0; a late answer is ignored', async () => {
    let id = -1;
    const collector = new LoadCollector((m) => {
      if (m.type === 'portico:upstream-load-collect') id = m.id;
      return 2;
    }, 50);
    const started = Date.now();
    const collecting = collector.collect();
    collector.answer(id, { users: { 'a:1': 1 } });
    const load = (await collecting).inFlight;
    assert.ok(Date.now() - started >= 45, 'waited for the silent worker');
    assert.deepEqual(Object.fromEntries(load.get('users') ?? []), { 'a:1': 1 });
    collector.answer(id, { users: { 'a:1': 5 } });
    assert.deepEqual(Object.fromEntries(load.get('users') ?? []), { 'a:1': 1 });
  });

  test('with no worker to ask, it answers at once', async () => {
    const collector = new LoadCollector(() => 0, 60_000);
    assert.equal((await collector.collect()).inFlight.size, 0);
  });
});
