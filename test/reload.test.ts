import assert from 'node:assert/strict';
import { chmod, mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { runCli } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, occupyPort, request, sleep, upgradeRequest } from './helpers/net.js';
import { findExecutable, promtoolCheck } from './helpers/prometheus.js';
import { get, statusCounts } from './helpers/ratelimit.js';
import { startRedis } from './helpers/redis.js';
import {
  configView,
  hashChange,
  type Instance,
  load,
  named,
  routeTo,
  start,
  waitForWorkers,
  workerList,
} from './helpers/reload.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: live reload through the real CLI (primary, workers, admin listener), triggered
 * by the file watch, SIGHUP and POST /admin/reload, with traffic running through it.
 */

/** Replaces a file the way editors do: write beside it, rename over it. */
async function renameIntoPlace(file: string, config: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, stringify(config));
  await rename(tmp, file);
}

/**
 * Under load, applies `configs[i % 2]` `times` times through `apply`, waits for each to be
 * acknowledged (the admin hash changes), and checks: no failed request, every answer from
 * one of the two upstreams, and no fresh connection opened after an acknowledgement
 * reaching the previous upstream.
 */
async function reloadUnderLoad(
  inst: Instance,
  ups: [Upstream, Upstream],
  times: number,
  apply: (config: Record<string, unknown>, index: number) => Promise<void>,
  rate = 300,
): Promise<void> {
  const names = ['A', 'B'];
  const traffic = load(`${inst.gw.url}/x`, rate);
  const acks: { at: number; expect: string }[] = [];
  const applied: number[] = [];
  let hash = (await configView(inst.admin)).hash as string;
  try {
    await sleep(300);
    for (let i = 1; i <= times; i++) {
      const next = { ...inst.base, ...routeTo((ups[i % 2] as Upstream).url) };
      applied.push(performance.now());
      await apply(next, i);
      hash = await hashChange(inst.admin, hash);
      acks.push({ at: performance.now(), expect: names[i % 2] as string });
      await sleep(150);
    }
  } finally {
    await traffic.stop();
  }
  assert.deepEqual(traffic.errors, [], 'connection errors');
  assert.ok(traffic.samples.length >= times * 10, `only ${traffic.samples.length} requests`);
  const failed = traffic.samples.filter((s) => s.status !== 200);
  assert.equal(failed.length, 0, `non-2xx: ${JSON.stringify(failed.slice(0, 5))}`);
  for (const sample of traffic.samples) assert.ok(names.includes(sample.upstream), sample.upstream);
  for (const sample of traffic.samples) {
    if (!sample.fresh) continue;
    const index = acks.findLastIndex((a) => a.at < sample.startedAt);
    // Answered before the next reload began: it must come from the one just acknowledged.
    if (index === -1 || (applied[index + 1] ?? Infinity) < sample.endedAt) continue;
    assert.equal(
      sample.upstream,
      (acks[index] as { expect: string }).expect,
      'a fresh connection after the reload reached the old upstream',
    );
  }
}

describe('reload', () => {
  test('under load, 20 file rewrites alternating two upstreams: no failed request, old upstream gone after each', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start(routeTo(ups[0].url));
    try {
      await reloadUnderLoad(inst, ups, 20, (config) => writeFile(inst.file, stringify(config)));
      const reloads = inst.gw.records().filter((r) => r.msg === 'reload: new config in force');
      assert.equal(reloads.length, 20);
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('an editor-style rename into place is seen and applied under load', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start(routeTo(ups[0].url));
    try {
      await reloadUnderLoad(inst, ups, 4, (config) => renameIntoPlace(inst.file, config), 100);
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('a ConfigMap-style ..data symlink swap is seen and applied under load', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    let mount = '';
    // Kubernetes mounts config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/.
    const writeVersion = async (config: unknown, version: number) => {
      const dir = join(mount, `..v${version}`);
      await mkdir(dir);
      await writeFile(join(dir, 'config.yaml'), stringify(config));
      await symlink(`..v${version}`, join(mount, '..data_tmp'));
      await rename(join(mount, '..data_tmp'), join(mount, '..data'));
    };
    const inst = await start(routeTo(ups[0].url), {
      beforeStart: async (file) => {
        mount = dirname(file);
        await rename(file, join(mount, 'initial.yaml'));
        await mkdir(join(mount, '..v0'));
        await rename(join(mount, 'initial.yaml'), join(mount, '..v0', 'config.yaml'));
        await symlink('..v0', join(mount, '..data'));
        await symlink(join('..data', 'config.yaml'), file);
      },
    });
    try {
      await reloadUnderLoad(inst, ups, 4, (config, i) => writeVersion(config, i), 100);
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('SIGHUP reloads (with reload.watch: false the file alone does nothing)', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), reload: { watch: false } });
    try {
      inst.base = { ...inst.base, reload: { watch: false } };
      const before = (await configView(inst.admin)).hash as string;
      await writeFile(inst.file, stringify({ ...inst.base, ...routeTo(ups[1].url) }));
      await sleep(1_000);
      assert.equal((await configView(inst.admin)).hash, before, 'reload.watch: false still watched');
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'A');
      await writeFile(inst.file, stringify({ ...inst.base, ...routeTo(ups[0].url) }));
      await reloadUnderLoad(
        inst,
        ups,
        4,
        async (config) => {
          await writeFile(inst.file, stringify(config));
          inst.gw.proc.kill('SIGHUP');
        },
        100,
      );
      assert.equal(inst.gw.proc.exitCode, null);
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('POST /admin/reload answers success with the hash, then unchanged; last_reload and metrics say so', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), reload: { watch: false }, metrics: {} });
    try {
      inst.base = { ...inst.base, reload: { watch: false }, metrics: {} };
      let answers: Record<string, unknown>[] = [];
      await reloadUnderLoad(
        inst,
        ups,
        4,
        async (config) => {
          await writeFile(inst.file, stringify(config));
          const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
          assert.equal(reply.status, 200, reply.body);
          answers.push(reply.json());
        },
        100,
      );
      assert.ok(answers.every((a) => a.result === 'success' && typeof a.hash === 'string'));
      const view = await configView(inst.admin);
      assert.equal((answers.at(-1) as Record<string, unknown>).hash, view.hash);
      answers = [];
      const same = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
      assert.equal(same.status, 200);
      assert.deepEqual(same.json(), { result: 'unchanged', hash: view.hash });
      const last = (await configView(inst.admin)).last_reload as Record<string, unknown>;
      assert.equal(last.result, 'unchanged');
      assert.deepEqual(last.errors, []);
      const workers = (await request(`${inst.admin}/admin/workers`)).json<{
        workers: { config_hash: string }[];
      }>().workers;
      assert.ok(
        workers.every((w) => w.config_hash === view.hash),
        JSON.stringify(workers),
      );
      assert.equal((await request(`${inst.admin}/readyz`)).status, 200);

      const text = (await request(`${inst.admin}/metrics`)).body;
      const samples = parseMetrics(text);
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'success' }), 4);
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'unchanged' }), 1);
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'failure' }), 0);
      assert.equal(sum(samples, 'portico_config_last_reload_successful'), 1);
      assert.ok(
        sum(samples, 'portico_config_last_reload_success_timestamp_seconds') > Date.now() / 1000 - 60,
      );
      assert.equal(sum(samples, 'portico_config_info', { hash: view.hash as string }), 1);
      assert.equal(sum(samples, 'portico_config_info'), 1, 'one active hash');
      const promtool = await findExecutable('promtool');
      if (promtool) {
        const { code, output } = await promtoolCheck(promtool, text);
        assert.equal(code, 0, output);
      }
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('an invalid config leaves the old one serving; errors in the answer, /admin/config, the log and the metric; the fix applies', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), metrics: {} });
    try {
      inst.base = { ...inst.base, metrics: {} };
      const keyFile = join(dirname(inst.file), 'public.pem');
      await writeFile(keyFile, 'not read');
      await chmod(keyFile, 0o000);
      const broken: [string, Record<string, unknown>, string][] = [
        ['unknown key', { ...inst.base, ...routeTo(ups[1].url), surprise: 1 }, 'surprise'],
        [
          'bad middleware',
          { ...inst.base, routes: [{ path: '/*', target: ups[1].url, middleware: ['nope'] }] },
          'routes[0].middleware[0]',
        ],
        [
          'unreadable key file',
          {
            ...inst.base,
            routes: [{ path: '/*', target: ups[1].url, middleware: ['auth'] }],
            auth: { public_key: 'public.pem' },
          },
          'auth.public_key',
        ],
      ];
      const hash = (await configView(inst.admin)).hash;
      for (const [what, config, path] of broken) {
        await writeFile(inst.file, stringify(config));
        const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
        assert.equal(reply.status, 422, `${what}: ${reply.body}`);
        const body = reply.json<{ result: string; errors: Record<string, unknown>[] }>();
        assert.equal(body.result, 'failure');
        const problem = body.errors.find((e) => e.path === path);
        assert.ok(problem, `${what}: ${reply.body}`);
        assert.equal(typeof problem.line, 'number', reply.body);
        assert.equal(typeof problem.column, 'number', reply.body);
        const view = await configView(inst.admin);
        assert.equal(view.hash, hash);
        assert.deepEqual((view.last_reload as Record<string, unknown>).errors, body.errors);
        assert.equal((view.last_reload as Record<string, unknown>).result, 'failure');
        assert.equal(
          (await request(`${inst.gw.url}/x`)).body,
          'A',
          `${what}: the old config stopped serving`,
        );
        // Logged at error level, one record per problem, with file:line:col and the key path.
        await inst.gw.waitFor(
          (r) =>
            r.level === 50 &&
            String(r.msg).startsWith(`${inst.file}:`) &&
            String(r.msg).includes(`${path}: `),
        );
        const samples = parseMetrics((await request(`${inst.admin}/metrics`)).body);
        assert.equal(sum(samples, 'portico_config_last_reload_successful'), 0);
      }
      const samples = parseMetrics((await request(`${inst.admin}/metrics`)).body);
      // The watch saw the broken writes too: three or more, never a success.
      assert.ok(sum(samples, 'portico_config_reloads_total', { result: 'failure' }) >= 3);
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'success' }), 0);
      // The watch saw the broken writes too; the fixed file applies by itself.
      await writeFile(inst.file, stringify({ ...inst.base, ...routeTo(ups[1].url) }));
      await hashChange(inst.admin, hash as string);
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'B');
      const after = parseMetrics((await request(`${inst.admin}/metrics`)).body);
      assert.equal(sum(after, 'portico_config_last_reload_successful'), 1);
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('with metrics off, the admin /metrics still reports reload health', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), reload: { watch: false } });
    const reloadWith = async (config: Record<string, unknown>) => {
      await writeFile(inst.file, stringify({ ...inst.base, reload: { watch: false }, ...config }));
      return (await request(`${inst.admin}/admin/reload`, { method: 'POST' })).json<{ hash?: string }>();
    };
    const scrape = async () => parseMetrics((await request(`${inst.admin}/metrics`)).body);
    try {
      assert.equal((await request(`${inst.gw.url}/metrics`)).body, 'A', 'the gateway port serves no metrics');
      let samples = await scrape();
      assert.equal(sum(samples, 'portico_config_reloads_total'), 0);
      assert.equal(sum(samples, 'portico_config_last_reload_successful'), 1);
      await reloadWith({ ...routeTo(ups[1].url), surprise: 1 });
      samples = await scrape();
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'failure' }), 1);
      assert.equal(sum(samples, 'portico_config_last_reload_successful'), 0);
      const { hash } = await reloadWith(routeTo(ups[1].url));
      samples = await scrape();
      assert.equal(sum(samples, 'portico_config_reloads_total', { result: 'success' }), 1);
      assert.equal(sum(samples, 'portico_config_last_reload_successful'), 1);
      assert.equal(sum(samples, 'portico_config_info', { hash: hash as string }), 1);
      assert.equal(sum(samples, 'portico_config_info'), 1);
      assert.ok(!samples.some((s) => s.name.startsWith('gateway_')), 'worker metrics while metrics are off');
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('the admin listener answers metrics at metrics.prometheus.path as it changes with a reload', async () => {
    const up = await named('A');
    const config = (path: string) => ({
      ...routeTo(up.url),
      metrics: { prometheus: { path } },
      reload: { watch: false },
    });
    const inst = await start(config('/stats'));
    const status = async (url: string) => (await request(url)).status;
    try {
      assert.equal(await status(`${inst.admin}/stats`), 200);
      await writeFile(inst.file, stringify({ ...inst.base, ...config('/scrape') }));
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
      assert.equal(reply.json().result, 'success', reply.body);
      const scraped = await request(`${inst.admin}/scrape`);
      assert.equal(scraped.status, 200);
      assert.match(scraped.body, /^portico_config_reloads_total\{result="success"\} 1$/m);
      assert.equal(await status(`${inst.admin}/stats`), 404, 'the old path still answered');
      assert.equal(await status(`${inst.admin}/metrics`), 200);
      // The gateway port follows too: the old path is an ordinary request again.
      assert.match((await request(`${inst.gw.url}/scrape`)).body, /portico_config_reloads_total/);
      assert.equal((await request(`${inst.gw.url}/stats`)).body, 'A');
    } finally {
      await inst.gw.stop();
      await up.close();
    }
  });

  test('an admin listener change is refused whole with a clear error (restart required)', async () => {
    const up = await named('A');
    const inst = await start({ ...routeTo(up.url), reload: { watch: false } });
    try {
      const admin = { ...(inst.base.admin as object), port: await freePort() };
      await writeFile(inst.file, stringify({ ...inst.base, reload: { watch: false }, admin }));
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
      assert.equal(reply.status, 422);
      assert.deepEqual(reply.json(), {
        result: 'failure',
        errors: [
          {
            path: 'admin',
            message: 'admin changed: restart required (not yet applied by reload)',
            line: null,
            column: null,
          },
        ],
      });
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'A');
    } finally {
      await inst.gw.stop();
      await up.close();
    }
  });

  test('server.workers 2 → 3 → 2 under load: workers replaced one at a time, no failed request', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const counted = (target: string) => ({
      routes: [{ path: '/*', target, middleware: ['metrics'] }],
      reload: { watch: false },
      metrics: {},
    });
    const inst = await start(counted(ups[0].url));
    const server = inst.base.server as Record<string, unknown>;
    const traffic = load(`${inst.gw.url}/x`, 200);
    let answered: number | undefined;
    // Readiness is polled all along: a rollout never takes the instance out of rotation.
    const readiness: number[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        readiness.push((await request(`${inst.admin}/readyz`)).status);
        await sleep(25);
      }
    })();
    try {
      let pids = (await workerList(inst.admin)).map((w) => w.pid);
      await sleep(300);
      // The last step changes only the route: the replaced workers switch in place.
      for (const [count, up, name, replaced] of [
        [3, ups[1], 'B', true],
        [2, ups[0], 'A', true],
        [2, ups[1], 'B', false],
      ] as const) {
        await writeFile(
          inst.file,
          stringify({ ...inst.base, ...counted(up.url), server: { ...server, workers: count } }),
        );
        const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 60_000 });
        assert.equal(reply.status, 200, reply.body);
        const { hash } = reply.json<{ hash: string }>();
        const list = await workerList(inst.admin);
        assert.equal(list.length, count, JSON.stringify(list));
        for (const w of list) {
          assert.equal(w.config_hash, hash, JSON.stringify(list));
          assert.equal(w.listening, true, JSON.stringify(list));
          assert.equal(w.restarts, 0, 'a replaced worker counted as a restart');
          assert.equal(!pids.includes(w.pid), replaced, `worker ${w.pid} replaced: ${!replaced}`);
        }
        pids = list.map((w) => w.pid);
        assert.equal((await request(`${inst.admin}/readyz`)).status, 200);
        assert.equal((await request(`${inst.gw.url}/x`)).body, name);
        await sleep(300);
      }
      await traffic.stop();
      polling = false;
      await poller;
      // The replaced workers' counts are kept: the counter never went back.
      answered = sum(parseMetrics((await request(`${inst.admin}/metrics`)).body), 'gateway_requests_total');
    } finally {
      polling = false;
      await poller.catch(() => undefined);
      await traffic.stop();
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
    assert.deepEqual(traffic.errors, [], 'connection errors');
    assert.ok(traffic.samples.length >= 100, `only ${traffic.samples.length} requests`);
    const failed = traffic.samples.filter((s) => s.status !== 200);
    assert.equal(failed.length, 0, `non-2xx: ${JSON.stringify(failed.slice(0, 5))}`);
    for (const sample of traffic.samples) assert.ok(['A', 'B'].includes(sample.upstream), sample.upstream);
    assert.equal(answered, traffic.samples.length + 3);
    assert.ok(readiness.length > 20, `readiness polled ${readiness.length} times`);
    assert.deepEqual(new Set(readiness), new Set([200]), 'readyz left 200 during a rollout');
    // Replaced workers drained; none of them counted as dying.
    assert.equal(inst.gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
  });

  test('a server.port change: in-flight requests on the old port finish, the new port answers, the old one closes', async () => {
    const slow = await startUpstream((req, res) => {
      const answer = () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(req.url === '/slow' ? 'slow' : 'A');
      };
      if (req.url === '/slow') setTimeout(answer, 1_500);
      else answer();
    });
    const inst = await start({ ...routeTo(slow.url), reload: { watch: false } });
    const server = inst.base.server as { port: number };
    const oldPort = server.port;
    let holder: Awaited<ReturnType<typeof occupyPort>> | undefined;
    try {
      const port = await freePort();
      await writeFile(
        inst.file,
        stringify({ ...inst.base, reload: { watch: false }, server: { ...server, port } }),
      );
      // Started before the reload, on the old port: keep-alive and fresh connections alike.
      const agent = new Agent({ keepAlive: true });
      const inFlight = Array.from({ length: 6 }, (_, i) =>
        get(`${inst.gw.url}/slow`, i % 2 === 0 ? { agent } : {}),
      );
      await sleep(200);
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 60_000 });
      assert.equal(reply.status, 200, reply.body);
      const { hash } = reply.json<{ hash: string }>();
      const answers = await Promise.all(inFlight);
      agent.destroy();
      assert.deepEqual(
        answers.map((a) => [a.status, a.body]),
        Array.from({ length: 6 }, () => [200, 'slow']),
      );
      assert.equal((await request(`http://127.0.0.1:${port}/x`)).body, 'A');
      const list = await workerList(inst.admin);
      assert.equal(list.length, 2);
      assert.ok(
        list.every((w) => w.config_hash === hash && w.listening),
        JSON.stringify(list),
      );
      assert.equal((await request(`${inst.admin}/readyz`)).status, 200);
      // A worker that dies after the rollout is respawned with the new config, on the new port.
      process.kill(list[0]?.pid as number, 'SIGKILL');
      await waitForWorkers(inst.admin, (rows) => rows[0]?.restarts === 1 && rows[0].listening);
      const respawned = await workerList(inst.admin);
      assert.ok(
        respawned.every((w) => w.config_hash === hash && w.listening),
        JSON.stringify(respawned),
      );
      for (let i = 0; i < 4; i++) assert.equal((await request(`http://127.0.0.1:${port}/x`)).body, 'A');
      // No worker listens on the old port any more, so the primary let it go: we can take it.
      const until = Date.now() + 10_000;
      while (holder === undefined) {
        holder = await occupyPort(oldPort).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== 'EADDRINUSE' || Date.now() > until) throw err;
          return undefined;
        });
        if (holder === undefined) await sleep(100);
      }
    } finally {
      holder?.close();
      await inst.gw.stop();
      await slow.close();
    }
  });

  test('a server.port change to a port that is taken fails with the reason; the old workers keep serving', async () => {
    const up = await named('A');
    const inst = await start({ ...routeTo(up.url), reload: { watch: false } });
    const taken = await occupyPort(await freePort());
    try {
      const before = await workerList(inst.admin);
      const hash = (await configView(inst.admin)).hash;
      const port = (taken.address() as { port: number }).port;
      const server = inst.base.server as Record<string, unknown>;
      await writeFile(
        inst.file,
        stringify({ ...inst.base, reload: { watch: false }, server: { ...server, port } }),
      );
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 60_000 });
      assert.equal(reply.status, 422, reply.body);
      const body = reply.json<{ result: string; errors: { message: string }[] }>();
      assert.equal(body.result, 'failure');
      assert.match(body.errors[0]?.message ?? '', new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
      assert.equal((await configView(inst.admin)).hash, hash);
      assert.deepEqual(
        (await workerList(inst.admin)).map((w) => [w.pid, w.config_hash]),
        before.map((w) => [w.pid, w.config_hash]),
      );
      for (let i = 0; i < 4; i++) assert.equal((await request(`${inst.gw.url}/x`)).body, 'A');
      assert.equal((await request(`${inst.admin}/readyz`)).status, 200);
      assert.equal(inst.gw.proc.exitCode, null);
    } finally {
      taken.close();
      await inst.gw.stop();
      await up.close();
    }
  });

  for (const store of ['embedded', 'redis'] as const) {
    test(`rate-limit buckets survive a reload that does not touch them (${store} store)`, async () => {
      const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
      const redis = store === 'redis' ? await startRedis() : undefined;
      const limited = (target: string) => ({
        routes: [{ path: '/*', target, middleware: ['ratelimit'] }],
        rate_limit: { requests_per_second: 0.01, burst: 3 },
        reload: { watch: false },
        ...(redis ? { redis: { url: redis.url } } : {}),
      });
      const inst = await start(limited(ups[0].url));
      try {
        const answers = [];
        for (let i = 0; i < 5; i++) answers.push(await get(`${inst.gw.url}/x`));
        assert.deepEqual(statusCounts(answers), { 200: 3, 429: 2 });
        await writeFile(inst.file, stringify({ ...inst.base, ...limited(ups[1].url) }));
        const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
        assert.equal(reply.json().result, 'success', reply.body);
        const after = [];
        for (let i = 0; i < 4; i++) after.push(await get(`${inst.gw.url}/x`));
        assert.deepEqual(statusCounts(after), { 429: 4 }, 'the bucket started again after the reload');
      } finally {
        await inst.gw.stop();
        await redis?.stop();
        await Promise.all(ups.map((u) => u.close()));
      }
    });
  }

  test('an open WebSocket survives a reload that keeps its route', async () => {
    const echo = await startUpstream();
    echo.server.on('upgrade', (_req, socket: Socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
      socket.on('data', (data: Buffer) => socket.write(data));
      socket.on('end', () => socket.end());
    });
    const other = await named('B');
    const config = (extra: string) => ({
      routes: [
        { path: '/ws/*', target: echo.url },
        { path: `/${extra}/*`, target: other.url },
      ],
      reload: { watch: false },
    });
    const inst = await start(config('one'), { workers: 1 });
    try {
      const { socket } = await upgradeRequest(`${inst.gw.url}/ws/chat`);
      const roundTrip = (text: string) =>
        new Promise<string>((resolve) => {
          socket.once('data', (d: Buffer) => resolve(d.toString()));
          socket.write(text);
        });
      assert.equal(await roundTrip('before'), 'before');
      let closed = false;
      socket.on('close', () => (closed = true));
      await writeFile(inst.file, stringify({ ...inst.base, ...config('two') }));
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST' });
      assert.equal(reply.json().result, 'success', reply.body);
      assert.equal((await request(`${inst.gw.url}/two/x`)).body, 'B');
      assert.equal(await roundTrip('after'), 'after');
      assert.equal(closed, false);
      socket.destroy();
    } finally {
      await inst.gw.stop();
      await echo.close();
      await other.close();
    }
  });

  test('a config of 2,500 routes reloads', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const many = (target: string) => ({
      routes: Array.from({ length: 2_500 }, (_, i) => ({
        path: `/service-${i}/items/:id`,
        target,
        methods: ['GET'],
        middleware: ['logging'],
      })),
      reload: { watch: false },
    });
    const inst = await start(many(ups[0].url), { workers: 1 });
    try {
      assert.equal((await request(`${inst.gw.url}/service-2499/items/1`)).body, 'A');
      await writeFile(inst.file, stringify({ ...inst.base, ...many(ups[1].url) }));
      const reply = await request(`${inst.admin}/admin/reload`, { method: 'POST', timeoutMs: 30_000 });
      assert.equal(reply.json().result, 'success', reply.body);
      assert.equal((await request(`${inst.gw.url}/service-2499/items/1`)).body, 'B');
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });
});

describe('portico reload (the CLI)', () => {
  test('reloads the file the instance runs, says unchanged, refuses a bad file with its lines', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), reload: { watch: false } });
    const write = (config: Record<string, unknown>) =>
      writeFile(inst.file, stringify({ ...inst.base, ...config, reload: { watch: false } }));
    try {
      await write(routeTo(ups[1].url));
      const done = await runCli(['reload', '--config', inst.file]);
      assert.equal(done.code, 0, done.stderr);
      assert.match(done.stdout, /^reload: success \(config [0-9a-f]{12}\)\n$/);
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'B');

      const again = await runCli(['reload', '--config', inst.file]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /^reload: unchanged /);

      // With --config the file is read to find the admin listener: a bad one is reported as
      // `check` reports it, and nothing is asked of the instance.
      await write({ ...routeTo(ups[0].url), colour: 'blue' });
      const local = await runCli(['reload', '--config', inst.file]);
      assert.equal(local.code, 1);
      assert.match(local.stderr, /^\S+config\.yaml:\d+:1: colour: unknown key$/m);
      // Through --admin the instance reads it, refuses it and says why, line by line.
      const refused = await runCli(['reload', '--admin', inst.admin]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^portico: reload refused: \d+:1: colour: unknown key$/m);
      assert.match(refused.stderr, /^portico: the config in force is unchanged$/m);
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'B', 'the old config still serves');
      assert.equal(((await configView(inst.admin)).last_reload as { result: string }).result, 'failure');
    } finally {
      await inst.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });

  test('--admin with admin.token: the token comes from PORTICO_ADMIN_TOKEN; no instance is one line', async () => {
    const ups: [Upstream, Upstream] = [await named('A'), await named('B')];
    const inst = await start({ ...routeTo(ups[0].url), reload: { watch: false } });
    const adminPort = (inst.base.admin as { port: number }).port;
    try {
      await writeFile(
        inst.file,
        stringify({ ...inst.base, ...routeTo(ups[1].url), reload: { watch: false } }),
      );
      const url = `http://127.0.0.1:${adminPort}`;
      const ok = await runCli(['reload', '--admin', url]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await request(`${inst.gw.url}/x`)).body, 'B');
    } finally {
      await inst.gw.stop();
    }
    const gone = await runCli(['reload', '--admin', `http://127.0.0.1:${adminPort}`]);
    assert.equal(gone.code, 1);
    assert.match(
      gone.stderr,
      /^portico: cannot reach the admin API at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\n$/,
    );

    const guarded = await start({
      ...routeTo(ups[0].url),
      reload: { watch: false },
      admin: { token: 't0ken-t0ken' },
    });
    try {
      const url = `http://127.0.0.1:${(guarded.base.admin as { port: number }).port}`;
      const refused = await runCli(['reload', '--admin', url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /wants admin\.token/);
      const allowed = await runCli(['reload', '--admin', url], { PORTICO_ADMIN_TOKEN: 't0ken-t0ken' });
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stdout, /^reload: unchanged /);
    } finally {
      await guarded.gw.stop();
      await Promise.all(ups.map((u) => u.close()));
    }
  });
});
