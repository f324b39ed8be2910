import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { request } from './helpers/net.js';
import { configView, type Instance, load, named, start, workerList } from './helpers/reload.js';
import type { Upstream } from './helpers/upstream.js';

/*
 * Black-box: a reload whose new config cannot be built in some worker. Whether the workers
 * switch in place (two phases) or are replaced one slot at a time, the instance keeps
 * serving the running config, says why, and takes the next good config.
 */

/** The fixture's `static-tokens` verifier refuses to build in the slot its options name. */
const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));

/** Everything to `target`, and `/private/*` behind the fixture's verifier built with `options`. */
const guarded = (target: string, options: Record<string, unknown>) => ({
  routes: [
    {
      path: '/private/*',
      target,
      middleware: ['auth'],
      auth: { type: 'static-tokens', options },
    },
    { path: '/*', target },
  ],
  reload: { watch: false },
});

const TOKENS = { tokens: { 'let-me-in': 'zoe' } };

async function reload(inst: Instance) {
  const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 60_000 });
  return {
    status: reply.status,
    body: reply.json<{ result: string; hash?: string; errors?: { message: string }[] }>(),
  };
}

/** `n` requests on fresh connections: the upstream names that answered. */
async function answers(inst: Instance, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) names.push((await request(`${inst.gw.url}/x`)).body);
  return names;
}

describe('reload failures', () => {
  test('a rolling replacement whose third new worker cannot build puts the replaced slots back on the running config', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start(guarded(ups[0].url, TOKENS), { workers: 2, entry: ENTRY });
    const traffic = load(`${inst.gw.url}/x`, 100);
    try {
      const before = await workerList(inst.admin);
      const { hash } = await configView(inst.admin);
      const server = { ...(inst.base.server as object), workers: 3 };
      // Slots 0 and 1 take the new config; slot 2's worker cannot build it.
      await writeFile(
        inst.file,
        stringify({ ...inst.base, ...guarded(ups[1].url, { ...TOKENS, unavailable_in_slot: 2 }), server }),
      );
      const { status, body } = await reload(inst);
      assert.equal(status, 422, JSON.stringify(body));
      assert.equal(body.result, 'failure');
      assert.match(body.errors?.[0]?.message ?? '', /^slot 2: the new worker exited/);

      assert.equal((await configView(inst.admin)).hash, hash);
      const after = await workerList(inst.admin);
      assert.equal(after.length, 2, JSON.stringify(after));
      for (const w of after) {
        assert.equal(w.config_hash, hash, JSON.stringify(after));
        assert.equal(w.listening, true, JSON.stringify(after));
        // Put back by replacing them again, not left as they were.
        assert.ok(!before.some((b) => b.pid === w.pid), `slot of ${w.pid} was not replaced`);
      }
      assert.deepEqual(new Set(await answers(inst, 10)), new Set(['A']), 'a slot kept the refused config');
      assert.equal((await request(`${inst.admin}/readyz`)).status, 200);
      const denied = await request(`${inst.gw.url}/private/x`);
      assert.equal(denied.status, 401);
      assert.equal(inst.gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
    } finally {
      await traffic.stop();
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
    assert.deepEqual(traffic.errors, [], 'connection errors');
    assert.ok(traffic.samples.length >= 50, `only ${traffic.samples.length} requests`);
    const failed = traffic.samples.filter((s) => s.status !== 200);
    assert.equal(failed.length, 0, `non-2xx: ${JSON.stringify(failed.slice(0, 5))}`);
  });

  test('a worker that cannot build the new handler tree aborts an in-place reload in every worker; the next good one applies', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start(guarded(ups[0].url, TOKENS), { workers: 2, entry: ENTRY });
    const traffic = load(`${inst.gw.url}/x`, 100);
    try {
      const { hash } = await configView(inst.admin);
      const pids = (await workerList(inst.admin)).map((w) => w.pid);
      // Slot 0 builds the new tree and waits for the switch; slot 1 cannot build it.
      await writeFile(
        inst.file,
        stringify({ ...inst.base, ...guarded(ups[1].url, { ...TOKENS, unavailable_in_slot: 1 }) }),
      );
      const refused = await reload(inst);
      assert.equal(refused.status, 422, JSON.stringify(refused.body));
      assert.equal(refused.body.result, 'failure');
      assert.match(
        refused.body.errors?.[0]?.message ?? '',
        /could not build the new config: static-tokens: unavailable in worker slot 1$/,
      );
      const view = await configView(inst.admin);
      assert.equal(view.hash, hash);
      assert.deepEqual((view.last_reload as { errors: unknown }).errors, refused.body.errors);
      const workers = await workerList(inst.admin);
      assert.deepEqual(
        workers.map((w) => [w.pid, w.config_hash]),
        pids.map((pid) => [pid, hash]),
      );
      // Both workers (fresh connections spread over them) still run the old tree.
      assert.deepEqual(new Set(await answers(inst, 20)), new Set(['A']), 'a worker switched');
      await inst.gw.waitFor(
        (r) => r.level === 50 && r.msg === 'reload: the new handler tree could not be built',
      );

      const token = { authorization: 'Bearer let-me-in' };
      await writeFile(inst.file, stringify({ ...inst.base, ...guarded(ups[1].url, TOKENS) }));
      const applied = await reload(inst);
      assert.equal(applied.status, 200, JSON.stringify(applied.body));
      assert.equal(applied.body.result, 'success');
      assert.notEqual(applied.body.hash, hash);
      assert.deepEqual(new Set(await answers(inst, 20)), new Set(['B']));
      assert.equal((await request(`${inst.gw.url}/private/x`, { headers: token })).body, 'B');
    } finally {
      await traffic.stop();
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
    assert.deepEqual(traffic.errors, [], 'connection errors');
    const failed = traffic.samples.filter((s) => s.status !== 200);
    assert.equal(failed.length, 0, `non-2xx: ${JSON.stringify(failed.slice(0, 5))}`);
  });
});
