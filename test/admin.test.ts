import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { runCli, type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics } from './helpers/metrics.js';
import { freePort, occupyPort, request, sleep } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

/*
 * Black-box: the primary's admin listener through the real CLI: where it binds, its token,
 * readiness across start and drain, and what it reports about routes and workers.
 */

const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));

/** The admin listener's base URL, from its start-up record. */
async function adminOf(gw: RunningGateway): Promise<string> {
  return (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
}

function assertJsonAnswer(reply: { headers: Record<string, unknown> }): void {
  assert.match(String(reply.headers['content-type']), /^application\/json\b/);
  assert.match(String(reply.headers['x-request-id']), /^[0-9a-f-]{36}$/);
}

/** The exit code, or a rejection when the process is still running after `ms`. */
function exitWithin(gw: RunningGateway, ms: number): Promise<number | null> {
  return Promise.race([
    gw.exited,
    sleep(ms).then(() => {
      throw new Error(`still running after ${ms} ms; stderr: ${gw.stderr()}`);
    }),
  ]);
}

describe('admin listener', () => {
  test('binds loopback by default, answers health, readiness and what runs as JSON; 404/405 from the error table', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] });
    try {
      const admin = await adminOf(gw);
      assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);
      const port = new URL(admin).port;
      // Bound to 127.0.0.1 only: another loopback address of this machine is refused.
      await assert.rejects(request(`http://127.0.0.2:${port}/healthz`, { timeoutMs: 2_000 }), /ECONNREFUSED/);

      const health = await request(`${admin}/healthz`);
      assert.equal(health.status, 200);
      assertJsonAnswer(health);
      assert.deepEqual(health.json(), { status: 'ok' });
      const ready = await request(`${admin}/readyz`, { headers: { 'x-request-id': 'probe-1' } });
      assert.equal(ready.status, 200);
      assert.equal(ready.headers['x-request-id'], 'probe-1');
      assert.deepEqual(ready.json(), { status: 'ready', workers: 1 });

      const config = await request(`${admin}/admin/config`);
      assert.equal(config.status, 200);
      assertJsonAnswer(config);
      const body = config.json<{ hash: string; source: string; loaded_at: string; last_reload: null }>();
      assert.match(body.hash, /^[0-9a-f]{64}$/);
      assert.match(body.source, /config\.yaml$/);
      assert.ok(Math.abs(Date.parse(body.loaded_at) - Date.now()) < 60_000, body.loaded_at);
      assert.equal(body.last_reload, null);

      const missing = await request(`${admin}/admin/nope`);
      assert.equal(missing.status, 404);
      assertJsonAnswer(missing);
      assert.deepEqual(missing.json(), { error: 'not found' });
      for (const path of ['/admin/config', '/healthz']) {
        const post = await request(`${admin}${path}`, { method: 'POST' });
        assert.equal(post.status, 405, path);
        assert.equal(post.headers.allow, 'GET, HEAD');
        assertJsonAnswer(post);
      }
      // Metrics are off in this config: /metrics carries the primary's reload health alone.
      const metrics = await request(`${admin}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(String(metrics.headers['content-type']), /^text\/plain; version=0\.0\.4/);
      const names = new Set(parseMetrics(metrics.body).map((s) => s.name));
      assert.deepEqual([...names].sort(), [
        'portico_config_info',
        'portico_config_last_reload_success_timestamp_seconds',
        'portico_config_last_reload_successful',
        'portico_config_reloads_total',
      ]);
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
    }
  });

  test('admin.token (from ${VAR}) guards every /admin/* endpoint; health, readiness and metrics stay open', async () => {
    const upstream = await startUpstream();
    const token = 'admin-secret-0123456789';
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: upstream.url, middleware: ['metrics'] }],
        admin: { token: '${ADMIN_TOKEN}' },
      },
      { env: { ADMIN_TOKEN: token } },
    );
    try {
      const admin = await adminOf(gw);
      for (const path of ['/admin/config', '/admin/routes', '/admin/workers', '/admin/nope']) {
        const without = await request(`${admin}${path}`);
        assert.equal(without.status, 401, path);
        assertJsonAnswer(without);
        assert.deepEqual(without.json(), { error: 'missing token' });
        assert.match(String(without.headers['www-authenticate']), /^Bearer /);
        for (const authorization of [
          `Bearer ${token}x`,
          `Bearer ${token.slice(1)}`,
          `Basic ${token}`,
          token,
        ]) {
          const wrong = await request(`${admin}${path}`, { headers: { authorization } });
          assert.equal(wrong.status, 401, `${path} with ${authorization}`);
          assert.deepEqual(wrong.json(), { error: 'invalid token' });
        }
        const right = await request(`${admin}${path}`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(right.status, path === '/admin/nope' ? 404 : 200, `${path}: ${right.body}`);
      }
      assert.equal((await request(`${admin}/healthz`)).status, 200);
      assert.equal((await request(`${admin}/readyz`)).status, 200);
      const metrics = await request(`${admin}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /gateway_worker_restarts_total/);
      assert.equal((await request(`${gw.url}/metrics`)).status, 200, 'the gateway-port alias still answers');
      assert.ok(!gw.lines.some((l) => l.includes(token)), 'the token is never logged');
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
    }
  });

  test('/readyz is 503 while workers start and while draining; /healthz stays 200', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-admin-'));
    const go = join(dir, 'go');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const upstream = await startUpstream((_req, res) => {
      void held.then(() => res.end('slow done'));
    });
    const gw = await startGateway(
      { routes: [{ path: '/*', target: upstream.url }] },
      { entry: ENTRY, workers: 2, waitReady: false, env: { HOLD_WORKERS_UNTIL: go } },
    );
    try {
      const admin = await adminOf(gw);
      // Workers wait for the file: the primary is up, the instance is not ready.
      const starting = await request(`${admin}/readyz`);
      assert.equal(starting.status, 503);
      assertJsonAnswer(starting);
      assert.deepEqual(starting.json(), { error: 'not ready: workers starting' });
      assert.equal((await request(`${admin}/healthz`)).status, 200);
      await writeFile(go, '');
      await gw.waitFor((r) => r.msg === 'portico ready', 15_000);
      assert.equal((await request(`${admin}/readyz`)).status, 200);

      const slow = request(`${gw.url}/slow`, { timeoutMs: 20_000 });
      while (upstream.seen.length === 0) await sleep(10);
      gw.proc.kill('SIGTERM');
      await gw.waitFor((r) => r.msg === 'shutting down: draining workers');
      const draining = await request(`${admin}/readyz`);
      assert.equal(draining.status, 503);
      assert.deepEqual(draining.json(), { error: 'not ready: draining' });
      assert.equal((await request(`${admin}/healthz`)).status, 200, 'the primary still runs');
      // A reload now would meet draining workers: refused as what it is.
      const reload = await request(`${admin}/admin/reload`, { method: 'POST' });
      assert.equal(reload.status, 503);
      assertJsonAnswer(reload);
      assert.deepEqual(reload.json(), { error: 'gateway is shutting down' });
      const cli = await runCli(['reload', '--admin', admin]);
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /HTTP 503 \(gateway is shutting down\)$/m);
      release();
      assert.equal((await slow).body, 'slow done', 'the in-flight request finished');
      assert.equal(await gw.exited, 0);
    } finally {
      release();
      await gw.stop('SIGKILL');
      await upstream.close();
    }
  });

  test('/admin/routes lists routes in match order, as the start-up log does, in json and text', async () => {
    const routes = [
      { path: '/*', target: 'http://127.0.0.1:1' },
      { path: '/users/*', target: 'http://127.0.0.1:2', middleware: ['logging'] },
      { path: '/users/:id', methods: ['get'], target: 'http://127.0.0.1:3' },
      { path: '/users/:id/orders/:order', target: 'http://127.0.0.1:4' },
      { path: '/users/:id/orders/latest', target: 'http://127.0.0.1:5' },
      {
        path: '/users/me',
        methods: ['GET', 'POST'],
        target: 'http://127.0.0.1:6',
        middleware: ['metrics', 'logging'],
      },
    ];
    // The order the router tries them in: exact, then parameterised (more segments first,
    // literals before parameters), then wildcards longest prefix first.
    const expected = [5, 4, 3, 2, 1, 0];
    const gw = await startGateway({ routes });
    try {
      const admin = await adminOf(gw);
      const listed = (await request(`${admin}/admin/routes`)).json<{
        routes: {
          index: number;
          path: string;
          methods: string[] | null;
          target: string;
          middleware: string[];
        }[];
      }>().routes;
      assert.deepEqual(
        listed.map((r) => r.index),
        expected,
      );
      assert.deepEqual(listed[0], {
        index: 5,
        path: '/users/me',
        methods: ['GET', 'POST'],
        target: 'http://127.0.0.1:6',
        upstream: null,
        middleware: ['metrics', 'logging'],
      });
      assert.deepEqual(listed[3]?.methods, ['GET']);
      assert.equal(listed[2]?.methods, null);
      assert.equal(listed[5]?.methods, null);
      const ready = gw.records().filter((r) => r.msg === 'portico ready');
      assert.equal(ready.length, 1);
      const record = ready[0] as Record<string, unknown>;
      assert.equal(record.gateway, gw.url);
      assert.equal(record.admin, admin);
      assert.deepEqual(record.routes, [
        'GET,POST /users/me → http://127.0.0.1:6 [metrics, logging]',
        '* /users/:id/orders/latest → http://127.0.0.1:5 []',
        '* /users/:id/orders/:order → http://127.0.0.1:4 []',
        'GET /users/:id → http://127.0.0.1:3 []',
        '* /users/* → http://127.0.0.1:2 [logging]',
        '* /* → http://127.0.0.1:1 []',
      ]);
    } finally {
      assert.equal(await gw.stop(), 0);
    }

    // The text format: one line, with the URLs and the routes.
    const text = await startGateway({ routes, logging: { format: 'text' } }, { waitReady: false });
    try {
      const deadline = Date.now() + 15_000;
      while (!text.lines.some((l) => l.includes('portico ready'))) {
        assert.ok(Date.now() < deadline, text.lines.join('\n'));
        await sleep(50);
      }
      const line = text.lines.find((l) => l.includes('portico ready')) as string;
      assert.ok(line.includes(`"gateway":"${text.url}"`), line);
      assert.match(line, /"admin":"http:\/\/127\.0\.0\.1:\d+"/);
      assert.ok(line.includes('GET,POST /users/me → http://127.0.0.1:6 [metrics, logging]'), line);
      assert.ok(line.includes('* /* → http://127.0.0.1:1 []'), line);
      assert.equal(text.lines.filter((l) => l.includes('portico ready')).length, 1);
    } finally {
      assert.equal(await text.stop(), 0);
    }
  });

  test('/admin/workers: a SIGKILLed worker is respawned with a new pid and counted in its slot', async () => {
    const gw = await startGateway({ routes: [{ path: '/*', target: 'http://127.0.0.1:1' }] }, { workers: 2 });
    try {
      const admin = await adminOf(gw);
      type View = {
        slot: number;
        pid: number;
        started_at: string;
        restarts: number;
        config_hash: string;
        listening: boolean;
        rss_bytes: number;
      };
      const workers = async () =>
        (await request(`${admin}/admin/workers`)).json<{ workers: View[] }>().workers;
      const { hash } = (await request(`${admin}/admin/config`)).json<{ hash: string }>();
      const before = await workers();
      assert.deepEqual(
        before.map((w) => [w.slot, w.restarts, w.config_hash, w.listening]),
        [
          [0, 0, hash, true],
          [1, 0, hash, true],
        ],
      );
      for (const w of before) {
        assert.ok(w.rss_bytes > 10 * 1024 * 1024 && w.rss_bytes < 2 ** 33, `rss ${w.rss_bytes}`);
        assert.ok(Number.isInteger(w.pid) && w.pid !== gw.proc.pid);
        assert.ok(!Number.isNaN(Date.parse(w.started_at)));
      }
      const victim = before[0] as View;
      process.kill(victim.pid, 'SIGKILL');
      await gw.waitFor((r) => r.msg === 'worker died; respawning' && r.worker === victim.pid);
      const deadline = Date.now() + 15_000;
      let after = await workers();
      while (!(after[0]?.listening && after[0].pid !== victim.pid)) {
        assert.ok(Date.now() < deadline, JSON.stringify(after));
        await sleep(50);
        after = await workers();
      }
      const [respawned, survivor] = after as [View, View];
      assert.equal(respawned.restarts, 1);
      assert.notEqual(respawned.pid, victim.pid);
      assert.ok(Date.parse(respawned.started_at) > Date.parse(victim.started_at));
      assert.equal(respawned.config_hash, hash);
      assert.deepEqual(survivor, { ...survivor, pid: before[1]?.pid, restarts: 0 });
      assert.equal((await request(`${admin}/readyz`)).status, 200);
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });
});

describe('admin listener configuration', () => {
  test('the deprecated metrics.prometheus.port still serves /metrics, with a warning; admin.port wins over it', async () => {
    const aliasPort = await freePort();
    const gw = await startGateway({
      routes: [{ path: '/*', target: 'http://127.0.0.1:1', middleware: ['metrics'] }],
      metrics: { prometheus: { port: aliasPort } },
    });
    try {
      assert.equal(await adminOf(gw), `http://127.0.0.1:${aliasPort}`);
      const metrics = await request(`http://127.0.0.1:${aliasPort}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /gateway_worker_restarts_total/);
      const warning = await gw.waitFor((r) => r.key === 'metrics.prometheus.port');
      assert.equal(warning.level, 40);
      assert.equal(warning.msg, 'metrics.prometheus.port is deprecated; use admin.port');
    } finally {
      assert.equal(await gw.stop(), 0);
    }

    // Both given: admin.port is used and the alias is named as ignored.
    const held = await occupyPort(await freePort());
    const ignored = (held.address() as { port: number }).port;
    const both = await startGateway({
      routes: [{ path: '/*', target: 'http://127.0.0.1:1', middleware: ['metrics'] }],
      admin: { port: await freePort() },
      metrics: { prometheus: { port: ignored } },
    });
    try {
      const admin = await adminOf(both);
      assert.notEqual(new URL(admin).port, String(ignored));
      assert.equal((await request(`${admin}/metrics`)).status, 200);
      const warning = await both.waitFor((r) => r.key === 'metrics.prometheus.port');
      assert.equal(warning.msg, 'metrics.prometheus.port is deprecated and ignored: admin.port is set');
    } finally {
      assert.equal(await both.stop(), 0);
      held.close();
    }
  });

  test('admin.port already in use: exit 1, one line naming admin.port, no worker started', async () => {
    const port = await freePort();
    const blocker = await occupyPort(port);
    const gw = await startGateway(
      { routes: [{ path: '/*', target: 'http://127.0.0.1:1' }], admin: { port } },
      { waitReady: false },
    );
    try {
      assert.equal(await exitWithin(gw, 15_000), 1);
      assert.equal(
        gw.stderr(),
        `portico: cannot listen on 127.0.0.1:${port} (admin.port): address already in use\n`,
      );
      assert.ok(!gw.records().some((r) => r.msg === 'worker listening'), 'no worker was started');
    } finally {
      await gw.stop('SIGKILL');
      blocker.close();
    }
  });

  test('a non-loopback admin.host without a token is warned about', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no machine: the listener cannot bind it, so nothing is ever
    // opened to other machines, and the warning comes before the attempt.
    const gw = await startGateway(
      { routes: [{ path: '/*', target: 'http://127.0.0.1:1' }], admin: { host: '192.0.2.1' } },
      { waitReady: false },
    );
    try {
      assert.equal(await exitWithin(gw, 15_000), 1);
      assert.match(
        gw.stderr(),
        /^portico: cannot listen on 192\.0\.2\.1:\d+ \(admin\.port\): address not available/,
      );
      const warning = gw.records().find((r) => String(r.msg).startsWith('admin listener reachable'));
      assert.ok(warning, gw.lines.join('\n'));
      assert.equal(warning.level, 40);
    } finally {
      await gw.stop('SIGKILL');
    }
  });
});
