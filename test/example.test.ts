import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { runCli } from './helpers/gateway.js';
import { freePort, occupyPort, request } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Spawns a command in its own process group (so we can Ctrl-C it like a terminal does). */
function spawnGroup(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const proc = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (c: Buffer) => {
    output += c.toString();
  });
  proc.stderr.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = once(proc, 'exit').then(([code, signal]) => (code as number | null) ?? (signal as string));
  const waitForText = async (text: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!output.includes(text)) {
      if (Date.now() > deadline || proc.exitCode !== null)
        throw new Error(`"${text}" not seen; output:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { proc, exited, waitForText, output: () => output };
}

/** Best-effort cleanup of a group we started; it may already be gone. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

describe('examples', () => {
  test('npm start runs the gateway and its mock services; Ctrl-C stops everything', async () => {
    const [port, usersPort, ordersPort, adminPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const run = spawnGroup('npm', ['start', '--silent'], {
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      USERS_PORT: String(usersPort),
      ORDERS_PORT: String(ordersPort),
    });
    try {
      await run.waitForText('portico ready');
      const user = await request(`http://127.0.0.1:${port}/users/42`);
      assert.equal(user.status, 200);
      assert.deepEqual(
        { service: user.json().service, path: user.json().path },
        { service: 'users', path: '/users/42' },
      );
      // logging.format: text renders each request as one line for humans, not as JSON or a block.
      await run.waitForText('GET /users/42 200 ');
      assert.match(
        run.output(),
        /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\] INFO: GET \/users\/42 200 [\d.]+ms route=\/users\/:id request_id=[0-9a-f-]{36} client_ip=\S+ worker=\d$/m,
      );
      assert.doesNotMatch(run.output(), /^\s+status: /m);
      assert.doesNotMatch(run.output(), /^\{"level"/m);

      // The README's curl sequence, sent as fast as a paste: its documented answers.
      assert.equal((await request(`http://127.0.0.1:${port}/orders/7`)).status, 401, 'orders need a token');
      const token = async (sub: string) => {
        const signed = await runCli(['token', '--config', 'examples/config.yaml', '--sub', sub]);
        assert.equal(signed.code, 0, signed.stderr);
        return { authorization: `Bearer ${signed.stdout.trim()}` };
      };
      const alice = await token('alice');
      const order = await request(`http://127.0.0.1:${port}/orders/7`, { headers: alice });
      assert.deepEqual(
        { service: order.json().service, path: order.json().path, user: order.json().user },
        { service: 'orders', path: '/7', user: 'alice' },
      );
      const bob = await token('bob');
      const codes: number[] = [];
      for (let i = 0; i < 7; i++)
        codes.push((await request(`http://127.0.0.1:${port}/orders/7`, { headers: bob })).status);
      assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
      const metrics = await request(`http://127.0.0.1:${port}/metrics`);
      assert.match(metrics.body, /gateway_requests_total\{method="GET",path="\/users\/:id",status="200"\} 1/);
      process.kill(-(run.proc.pid as number), 'SIGINT');
      // npm re-raises the Ctrl-C it got once its script has exited; the gateway itself drained.
      assert.ok([0, 'SIGINT'].includes(await run.exited), run.output());
      assert.match(run.output(), /all workers stopped/);
      await assert.rejects(request(`http://127.0.0.1:${port}/users`, { timeoutMs: 2_000 }), /ECONNREFUSED/);
      await assert.rejects(request(`http://127.0.0.1:${usersPort}/`, { timeoutMs: 2_000 }), /ECONNREFUSED/);
    } finally {
      killGroup(run.proc.pid as number);
    }
  });

  test("a SIGHUP to npm start's process group reloads the gateway; the mock services stay", async () => {
    const [port, usersPort, ordersPort, adminPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const run = spawnGroup('npm', ['start', '--silent'], {
      PORT: String(port),
      ADMIN_PORT: String(adminPort),
      USERS_PORT: String(usersPort),
      ORDERS_PORT: String(ordersPort),
    });
    const pgid = run.proc.pid as number;
    try {
      await run.waitForText('portico ready');
      // As a terminal's hang-up does. npm itself forwards only SIGINT and SIGTERM, and exits.
      process.kill(-pgid, 'SIGHUP');
      await run.waitForText('reload: config unchanged');
      const user = await request(`http://127.0.0.1:${port}/users/42`);
      assert.equal(user.status, 200, 'the mock services went with the hang-up');
      assert.equal(user.json().service, 'users');
      // The wrapper is still there to stop everything on Ctrl-C.
      process.kill(-pgid, 'SIGINT');
      await run.waitForText('all workers stopped');
      for (const p of [port, usersPort, ordersPort]) {
        const until = Date.now() + 5_000;
        for (;;) {
          const refused = await request(`http://127.0.0.1:${p}/`, { timeoutMs: 2_000 }).then(
            () => false,
            (err: Error) => /ECONNREFUSED/.test(err.message),
          );
          if (refused) break;
          assert.ok(Date.now() < until, `port ${p} still answers`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      killGroup(pgid);
    }
  });

  test('npm start with a port already taken: one line, exit 1, nothing left running', async () => {
    for (const taken of ['PORT', 'USERS_PORT'] as const) {
      const ports = { PORT: await freePort(), USERS_PORT: await freePort(), ORDERS_PORT: await freePort() };
      const env = { ...ports, ADMIN_PORT: await freePort() };
      const blocker = await occupyPort(ports[taken]);
      const run = spawnGroup('npm', ['start', '--silent'], {
        PORT: String(env.PORT),
        ADMIN_PORT: String(env.ADMIN_PORT),
        USERS_PORT: String(env.USERS_PORT),
        ORDERS_PORT: String(env.ORDERS_PORT),
      });
      try {
        const code = await Promise.race([
          run.exited,
          new Promise<string>((r) => setTimeout(() => r('still running after 20 s'), 20_000)),
        ]);
        assert.equal(code, 1, run.output());
        const line =
          taken === 'PORT'
            ? `portico: cannot listen on 0.0.0.0:${ports.PORT}: address already in use\n`
            : `portico: cannot listen on 127.0.0.1:${ports.USERS_PORT} (USERS_PORT): address already in use\n`;
        assert.ok(run.output().includes(line), run.output());
        assert.doesNotMatch(run.output(), /\n\s+at /, 'no stack trace');
        // Whatever had started is stopped.
        for (const port of Object.values(ports).filter((p) => p !== ports[taken]))
          await assert.rejects(request(`http://127.0.0.1:${port}/`, { timeoutMs: 2_000 }), /ECONNREFUSED/);
      } finally {
        killGroup(run.proc.pid as number);
        blocker.close();
      }
    }
  });

  test('the custom-middleware example registers middleware that every worker runs', async () => {
    const upstream = await startUpstream();
    const port = await freePort();
    const run = spawnGroup(
      process.execPath,
      ['dist/examples/custom-middleware.js', '--config', 'examples/custom-middleware.yaml'],
      { PORT: String(port), USERS_URL: upstream.url },
    );
    try {
      await run.waitForText('portico ready');
      for (let i = 0; i < 6; i++) {
        const ok = await request(`http://127.0.0.1:${port}/users/42`);
        assert.equal(ok.json<{ headers: Record<string, string> }>().headers['x-user-id'], '42');
      }
      const robot = await request(`http://127.0.0.1:${port}/users/42`, {
        headers: { 'user-agent': 'GoodBot/1.0' },
      });
      assert.equal(robot.status, 403);
      process.kill(run.proc.pid as number, 'SIGTERM');
      assert.equal(await run.exited, 0);
    } finally {
      killGroup(run.proc.pid as number);
      await upstream.close();
    }
  });
});
