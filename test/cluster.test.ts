import assert from 'node:assert/strict';
import { readFile, rm, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, startGateway } from './helpers/gateway.js';
import { request, sleep } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));
const IMPORT_LOG = fileURLToPath(new URL('./fixtures/import-log.js', import.meta.url));

describe('cluster supervision', () => {
  test('a worker that dies is respawned and traffic continues', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] }, { workers: 2 });
    try {
      // Workers log asynchronously: their lines may reach the pipe after the primary's "ready".
      const listeningLines = () => gw.records().filter((r) => r.msg === 'worker listening');
      const deadline = Date.now() + 5_000;
      while (listeningLines().length < 2 && Date.now() < deadline) await sleep(20);
      const listening = listeningLines();
      assert.equal(listening.length, 2);
      const victim = listening[0]?.pid as number;
      process.kill(victim, 'SIGKILL');
      const died = await gw.waitFor((r) => r.msg === 'worker died; respawning');
      assert.equal(died.worker, victim);
      await gw.waitFor(
        (r) => r.msg === 'worker listening' && r.pid !== victim && !listening.some((l) => l.pid === r.pid),
      );
      for (let i = 0; i < 10; i++) assert.equal((await request(`${gw.url}/x`)).status, 200);
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
    }
  });

  test('quick deaths are respawned with growing delays; the fifth within a minute stops the instance', async () => {
    const gw = await startGateway(
      { routes: [{ path: '/*', target: 'http://127.0.0.1:1' }] },
      { entry: ENTRY, workers: 1, waitReady: false, env: { CRASH_WORKERS: '1' } },
    );
    try {
      // Below the give-up threshold every death is respawned, after a delay that doubles.
      // Count deaths, not seconds: how fast a worker boots depends on the machine's load,
      // but the primary must wait at least the announced delay before each respawn.
      assert.equal(await Promise.race([gw.exited, sleep(30_000).then(() => 'running')]), 1);
      const deaths = gw.records().filter((r) => r.msg === 'worker died; respawning');
      assert.equal(deaths.length, 4, `${deaths.length} respawns before giving up`);
      const delays = deaths.map((r) => r.respawn_in_ms as number);
      assert.deepEqual(delays, [100, 200, 400, 800]);
      const times = deaths.map((r) => Date.parse(r.time as string));
      for (let i = 1; i < times.length; i++) {
        const gap = (times[i] as number) - (times[i - 1] as number);
        assert.ok(
          gap >= (delays[i - 1] as number),
          `death ${i} came ${gap} ms after the previous, before its ${delays[i - 1]} ms delay`,
        );
      }
      // The fifth death within 60 s, with no worker up for 60 s, is not respawned.
      const gaveUp = gw.records().find((r) => r.msg === 'workers keep dying; giving up');
      assert.equal(gaveUp?.level, 50);
      assert.equal(gaveUp?.error_code, 'PORTICO_ERR_CRASH_LOOP');
      assert.equal(
        gw.stderr(),
        'portico: workers keep dying (5 deaths within 60 s, none stayed up 60 s; last: exit code 3); not respawning\n',
      );
    } finally {
      await gw.stop('SIGKILL');
    }
  });
});

describe('graceful shutdown', () => {
  test('SIGTERM lets an in-flight request finish, then exits 0 and stops listening', async () => {
    const upstream = await startUpstream((_req, res) =>
      setTimeout(() => res.end('slow but complete'), 1_000),
    );
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] }, { workers: 2 });
    try {
      const inFlight = request(`${gw.url}/slow`);
      await sleep(300);
      gw.proc.kill('SIGTERM');
      const reply = await inFlight;
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'slow but complete');
      assert.equal(await gw.exited, 0);
      await assert.rejects(request(`${gw.url}/after`, { timeoutMs: 2_000 }), /ECONNREFUSED/);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });

  test('SIGINT (Ctrl-C) drains too', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({ routes: [{ path: '/*', target: upstream.url }] });
    assert.equal((await request(`${gw.url}/x`)).status, 200);
    assert.equal(await gw.stop('SIGINT'), 0);
    await upstream.close();
  });

  test('drain is bounded by server.drain_timeout when a request never finishes', async () => {
    const upstream = await startUpstream(() => {}); // never answers
    const gw = await startGateway({
      server: { drain_timeout: '500ms' },
      routes: [{ path: '/*', target: upstream.url, timeout: '60s' }],
    });
    try {
      const outcome = new Promise<string>((resolve) => {
        const req = httpRequest(`${gw.url}/stuck`, { agent: false }, () => resolve('response'));
        req.on('error', () => resolve('connection closed'));
        req.end();
      });
      await sleep(200);
      const started = Date.now();
      gw.proc.kill('SIGTERM');
      assert.equal(await gw.exited, 0);
      assert.ok(Date.now() - started < 4_000, `took ${Date.now() - started} ms`);
      assert.equal(await outcome, 'connection closed');
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});

describe('config handover to workers', () => {
  test('workers run on the validated config without loading the YAML parser or zod', async () => {
    const upstream = await startUpstream();
    const log = join(tmpdir(), `portico-imports-${process.pid}-${Date.now()}.log`);
    const gw = await startGateway(
      {
        routes: [
          { path: '/users/:id', target: upstream.url, middleware: ['logging', 'metrics', 'ratelimit'] },
        ],
        metrics: { prometheus: {} },
      },
      { workers: 2, env: { NODE_OPTIONS: `--import ${IMPORT_LOG}`, IMPORT_LOG: log } },
    );
    try {
      assert.equal((await request(`${gw.url}/users/7`)).status, 200);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      const imported = (role: string) =>
        new Set(lines.filter((l) => l.split(' ')[1] === role).map((l) => l.split(' ')[2]));
      const primary = imported('primary');
      const workers = imported('worker');
      // The log works: the primary validates the file, so it loads both.
      assert.ok(primary.has('yaml') && primary.has('zod'), `primary imports: ${[...primary].join(', ')}`);
      assert.ok(workers.has('pino'), `worker imports: ${[...workers].join(', ')}`);
      assert.ok(!workers.has('yaml'), 'a worker loaded the YAML parser');
      assert.ok(!workers.has('zod'), 'a worker loaded zod');
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
      await rm(log, { force: true });
    }
  });

  test('a config of 2,500 routes (over 200 KB of YAML) passes check, starts with 2 workers and routes each request', async () => {
    const upstream = await startUpstream();
    const log = join(tmpdir(), `portico-imports-${process.pid}-${Date.now()}-big.log`);
    // Every other route rewrites its path: each route's own template must reach the workers.
    const routes = Array.from({ length: 2500 }, (_, i) =>
      i % 2 === 0
        ? { path: `/service-${i}/*`, methods: ['GET', 'POST'], target: upstream.url, strip_prefix: true }
        : {
            path: `/service-${i}/items/:id`,
            target: `${upstream.url}/v${i}`,
            rewrite: '/things/:id',
            timeout: '5s',
          },
    );
    const gw = await startGateway(
      { routes },
      {
        workers: 2,
        env: { NODE_OPTIONS: `--import ${IMPORT_LOG}`, IMPORT_LOG: log },
        async beforeStart(file) {
          // Past what one environment string may hold (128 KiB): it used to fail with spawn E2BIG.
          assert.ok((await stat(file)).size > 200_000, `config is only ${(await stat(file)).size} bytes`);
          const check = await runCli(['check', '--config', file]);
          assert.equal(check.code, 0, check.stderr);
        },
      },
    );
    try {
      for (const i of [0, 1, 1248, 1777, 2498, 2499]) {
        const reply = await request(`${gw.url}/service-${i}/items/${i}`);
        assert.equal(reply.status, 200);
        assert.equal(reply.json().url, i % 2 === 0 ? `/items/${i}` : `/v${i}/things/${i}`);
      }
      // The primary says ready once both workers listen.
      assert.equal((await gw.waitFor((r) => r.msg === 'portico ready')).workers, 2);
      const lines = (await readFile(log, 'utf8')).trim().split('\n');
      const workerImports = new Set(
        lines.filter((l) => l.split(' ')[1] === 'worker').map((l) => l.split(' ')[2]),
      );
      assert.ok(workerImports.has('pino'), `worker imports: ${[...workerImports].join(', ')}`);
      assert.ok(!workerImports.has('yaml'), 'a worker loaded the YAML parser');
      assert.ok(!workerImports.has('zod'), 'a worker loaded zod');
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
      await rm(log, { force: true });
    }
  });
});
