import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { request, sleep } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

/** Pids of the workers that said they listen and have not been reported dead. */
function liveWorkers(gw: RunningGateway): number[] {
  const records = gw.records();
  const dead = new Set(records.filter((r) => r.msg === 'worker died; respawning').map((r) => r.worker));
  return records.filter((r) => r.msg === 'worker listening' && !dead.has(r.pid)).map((r) => r.pid as number);
}

describe('worker deaths under load', () => {
  test('a worker SIGKILLed under load leaves no client connection hanging', async () => {
    const upstream = await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 5));
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] }, { workers: 2 });
    const HANG_MS = 4_000;
    const outcomes = { ok: 0, failed: 0, hung: 0 };
    let loading = true;
    // Each client opens a new connection per request, so the primary keeps handing fresh
    // connections to the workers while one of them is killed.
    const client = async () => {
      while (loading) {
        try {
          await request(`${gw.url}/x`, { timeoutMs: HANG_MS });
          outcomes.ok++;
        } catch (err) {
          if ((err as Error).message === 'client timeout') outcomes.hung++;
          else outcomes.failed++;
        }
      }
    };
    try {
      const clients = Array.from({ length: 24 }, client);
      // Four kills: below the crash-loop threshold (5 quick deaths), so every one is respawned.
      for (let kill = 0; kill < 4; kill++) {
        await sleep(500);
        const [victim] = liveWorkers(gw);
        assert.ok(victim, 'a live worker to kill');
        process.kill(victim, 'SIGKILL');
        await gw.waitFor((r) => r.msg === 'worker died; respawning' && r.worker === victim);
        const deadline = Date.now() + 10_000;
        while (liveWorkers(gw).length < 2 && Date.now() < deadline) await sleep(20);
      }
      await sleep(500);
      loading = false;
      await Promise.all(clients);
      assert.ok(outcomes.ok > 0, JSON.stringify(outcomes));
      assert.equal(outcomes.hung, 0, `requests left hanging: ${JSON.stringify(outcomes)}`);
    } finally {
      loading = false;
      assert.equal(await gw.stop(), 0);
      await upstream.close();
    }
  });
});
