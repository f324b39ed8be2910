import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { newRsaKey, signRs256, startIdentityProvider } from './helpers/idp.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, request, sleep } from './helpers/net.js';
import { type Instance, load, named, start } from './helpers/reload.js';
import type { Upstream } from './helpers/upstream.js';

/*
 * Black-box: what an in-place reload keeps. State built from settings that did not change
 * (a verifier's verified-token cache, the metrics counters) outlives the handler tree it
 * was built for; a verifier whose settings changed starts afresh.
 */

async function reload(inst: Instance, config: Record<string, unknown>): Promise<void> {
  await writeFile(inst.file, stringify({ ...inst.base, ...config }));
  const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 30_000 });
  assert.equal(reply.json().result, 'success', reply.body);
}

describe('state across an in-place reload', () => {
  test('the verified-token cache survives a reload that keeps its verifier settings, and is dropped when they change', async () => {
    const [oldKey, newKey] = [await newRsaKey('old'), await newRsaKey('new')];
    const idp = await startIdentityProvider([oldKey]);
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    // cooldown 1 ms: a token with an unknown kid refetches the JWKS at once.
    const auth = (extra: Record<string, unknown> = {}) => ({
      type: 'jwks',
      jwks_uri: `${idp.url}/jwks`,
      jwks_cooldown: '1ms',
      ...extra,
    });
    const config = (target: string, settings = auth()) => ({
      routes: [{ path: '/*', target, middleware: ['auth'] }],
      auth: settings,
      reload: { watch: false },
    });
    // One worker: the cache is per worker, and every request must reach the same one.
    const inst = await start(config(ups[0].url), { workers: 1 });
    const call = async (token: string) => {
      const reply = await request(`${inst.gw.url}/x`, { headers: { authorization: `Bearer ${token}` } });
      return `${reply.status} ${reply.status === 200 ? reply.body : ''}`.trim();
    };
    try {
      const cached = await signRs256(oldKey, { sub: 'cached' }, '10m');
      assert.equal(await call(cached), '200 A');
      // The IdP rotates; a token of the new key makes the verifier fetch the new JWKS, which no
      // longer has the old key: from now on only the verified-token cache admits `cached`.
      idp.keys = [newKey];
      assert.equal(await call(await signRs256(newKey, { sub: 'fresh' })), '200 A');
      assert.equal(await call(await signRs256(oldKey, { sub: 'uncached' })), '401');
      assert.equal(await call(cached), '200 A', 'not admitted from the cache');
      const fetches = idp.jwksFetches;

      await reload(inst, config(ups[1].url));
      assert.equal(await call(cached), '200 B', 'the reload dropped the cache of an unchanged verifier');
      assert.equal(idp.jwksFetches, fetches, 'the unchanged verifier fetched its JWKS again');

      await reload(inst, config(ups[1].url, auth({ cache_ttl: '2m' })));
      assert.equal(await call(cached), '401', 'a verifier with changed settings kept the old cache');
      assert.ok(idp.jwksFetches > fetches, 'the new verifier did not fetch the JWKS');
    } finally {
      await inst.gw.stop();
      await idp.close();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('counters never go down across in-place reloads', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const dead = await freePort();
    const config = (target: string) => ({
      routes: [
        { path: '/dead/*', target: `http://127.0.0.1:${dead}`, middleware: ['metrics'] },
        { path: '/*', target, middleware: ['metrics'] },
      ],
      metrics: {},
      reload: { watch: false },
    });
    const COUNTERS = [
      'gateway_requests_total',
      'gateway_request_duration_seconds_count',
      'gateway_upstream_duration_seconds_count',
      'gateway_upstream_errors_total',
    ];
    const inst = await start(config(ups[0].url));
    const traffic = load(`${inst.gw.url}/x`, 100);
    /** Each counter series (name and labels) at its highest value so far. */
    const highest = new Map<string, number>();
    const drops: string[] = [];
    let scrapes = 0;
    const scrape = async () => {
      const samples = parseMetrics((await request(`${inst.admin}/metrics`)).body);
      const seen = new Set<string>();
      for (const s of samples) {
        if (!COUNTERS.includes(s.name)) continue;
        const series = `${s.name}${JSON.stringify(s.labels)}`;
        seen.add(series);
        const before = highest.get(series);
        if (before !== undefined && s.value < before) drops.push(`${series}: ${before} → ${s.value}`);
        highest.set(series, Math.max(before ?? 0, s.value));
      }
      for (const series of highest.keys()) if (!seen.has(series)) drops.push(`${series}: gone`);
      scrapes++;
    };
    let polling = true;
    let deadRequests = 0;
    const poller = (async () => {
      while (polling) {
        await scrape();
        assert.equal((await request(`${inst.gw.url}/dead/x`)).status, 502);
        deadRequests++;
        await sleep(30);
      }
    })();
    let counted: number | undefined;
    try {
      await sleep(500);
      for (let i = 1; i <= 6; i++) {
        await reload(inst, config((ups[i % 2] as Upstream).url));
        await sleep(400);
      }
      polling = false;
      await poller;
      await traffic.stop();
      await scrape();
      // A request is counted when its response closes on the gateway's side, which may be a
      // moment after the client has its answer.
      const expected = traffic.samples.length + deadRequests;
      const until = Date.now() + 3_000;
      for (;;) {
        counted = sum(parseMetrics((await request(`${inst.admin}/metrics`)).body), 'gateway_requests_total');
        if (counted === expected || Date.now() > until) break;
        await sleep(50);
      }
    } finally {
      polling = false;
      await poller.catch(() => undefined);
      await traffic.stop();
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
    assert.ok(scrapes > 20, `only ${scrapes} scrapes`);
    for (const name of COUNTERS)
      assert.ok(
        [...highest].some(([series, value]) => series.startsWith(`${name}{`) && value > 0),
        `${name} never counted`,
      );
    assert.deepEqual(drops, [], 'a counter went down');
    assert.deepEqual(traffic.errors, []);
    // Every request counted, before and after each reload: none lost with a replaced tree.
    assert.equal(counted, traffic.samples.length + deadRequests);
  });
});
