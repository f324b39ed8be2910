import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { freePort, occupyPort, request, sleep } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

/** The exit code, or a rejection when the process is still running after `ms`. */
function exitWithin(gw: RunningGateway, ms: number): Promise<number | null> {
  return Promise.race([
    gw.exited,
    sleep(ms).then(() => {
      const log = gw
        .records()
        .map((r) => `${String(r.pid)} ${String(r.msg)}`)
        .join('; ');
      throw new Error(`still running after ${ms} ms; stderr: ${gw.stderr()}; log: ${log}`);
    }),
  ]);
}

/** Pids of the workers that said they listen and have not been reported dead. */
function liveWorkers(gw: RunningGateway): number[] {
  const records = gw.records();
  const dead = new Set(records.filter((r) => r.msg === 'worker died; respawning').map((r) => r.worker));
  return records.filter((r) => r.msg === 'worker listening' && !dead.has(r.pid)).map((r) => r.pid as number);
}

describe('listen failures stop the instance with one line', () => {
  test('a gateway port already in use: exit 1, one line, no respawn', async () => {
    const port = await freePort();
    const blocker = await occupyPort(port);
    const gw = await startGateway(
      { server: { port, host: '127.0.0.1' }, routes: [{ path: '/*', target: 'http://127.0.0.1:1' }] },
      { workers: 2, waitReady: false },
    );
    try {
      assert.equal(await exitWithin(gw, 15_000), 1);
      assert.equal(gw.stderr(), `portico: cannot listen on 127.0.0.1:${port}: address already in use\n`);
      assert.equal(gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
      const stopping = gw.records().find((r) => r.msg === 'cannot listen; stopping');
      assert.equal(stopping?.level, 50);
      assert.equal(stopping?.error_code, 'PORTICO_ERR_LISTEN');
    } finally {
      await gw.stop('SIGKILL');
      blocker.close();
    }
  });

  test('an address this machine does not have: exit 1, one line', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned, so binding it fails with EADDRNOTAVAIL.
    const gw = await startGateway(
      { server: { host: '192.0.2.1' }, routes: [{ path: '/*', target: 'http://127.0.0.1:1' }] },
      { waitReady: false },
    );
    try {
      assert.equal(await exitWithin(gw, 15_000), 1);
      assert.equal(
        gw.stderr(),
        `portico: cannot listen on 192.0.2.1:${gw.port}: address not available on this machine\n`,
      );
    } finally {
      await gw.stop('SIGKILL');
    }
  });

  test('the metrics admin port already in use: exit 1, one line naming the key', async () => {
    const adminPort = await freePort();
    const blocker = await occupyPort(adminPort);
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: 'http://127.0.0.1:1', middleware: ['metrics'] }],
        metrics: { prometheus: { port: adminPort } },
      },
      { waitReady: false },
    );
    try {
      assert.equal(await exitWithin(gw, 15_000), 1);
      assert.equal(
        gw.stderr(),
        `portico: cannot listen on 127.0.0.1:${adminPort} (metrics.prometheus.port): address already in use\n`,
      );
      assert.ok(!gw.records().some((r) => r.msg === 'worker listening'), 'no worker was started');
      const stopping = gw.records().find((r) => r.msg === 'cannot listen; stopping');
      assert.equal(stopping?.error_code, 'PORTICO_ERR_LISTEN');
    } finally {
      await gw.stop('SIGKILL');
      blocker.close();
    }
  });
});

describe('stop requests while workers are still starting', () => {
  test('SIGTERM while a worker builds its first tree (waiting for Redis) stops the instance without the backstop', async () => {
    // A "Redis" that accepts and never answers: the worker's ratelimit waits for it (up to
    // 4 × store_timeout) before it listens, which holds the worker in its build.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const connected = once(silent, 'connection');
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: 'http://127.0.0.1:1', middleware: ['ratelimit'] }],
        rate_limit: { requests_per_second: 10, burst: 10, store_timeout: '1s' },
        redis: { url: `redis://127.0.0.1:${(silent.address() as { port: number }).port}` },
      },
      { waitReady: false },
    );
    try {
      await connected; // the worker has its plan and is building
      const asked = performance.now();
      gw.proc.kill('SIGTERM');
      // The build ends within 4 s; the primary's backstop would take drain_timeout + 5 s (15 s).
      assert.equal(await exitWithin(gw, 9_000), 0);
      assert.ok(performance.now() - asked < 9_000);
    } finally {
      await gw.stop('SIGKILL');
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });
});

describe('SIGHUP', () => {
  test('SIGHUP to the primary and to its process group reloads (here: unchanged) and stops nothing; in-flight requests finish', async () => {
    const upstream = await startUpstream((_req, res) =>
      setTimeout(() => res.end('slow but complete'), 1_500),
    );
    const gw = await startGateway(
      { routes: [{ path: '/*', target: upstream.url }] },
      { workers: 2, detached: true },
    );
    try {
      const inFlight = request(`${gw.url}/slow`);
      await sleep(300);
      gw.proc.kill('SIGHUP');
      // A terminal hang-up signals every process of the group: the primary and its workers.
      process.kill(-(gw.proc.pid as number), 'SIGHUP');
      const reply = await inFlight;
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'slow but complete');
      await gw.waitFor((r) => r.msg === 'reload: config unchanged' && r.trigger === 'SIGHUP');
      for (let i = 0; i < 4; i++) assert.equal((await request(`${gw.url}/again`)).status, 200);
      assert.ok(!gw.records().some((r) => r.msg === 'worker died; respawning'), 'no worker died');
      assert.equal(await gw.stop(), 0);
    } finally {
      await gw.stop('SIGKILL');
      await upstream.close();
    }
  });
});

/** Opens a connection, sends `head`, then one more header byte every 400 ms; resolves with the answer. */
function slowClient(port: number, head: string, trickle: string): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const started = Date.now();
    let answer = '';
    let timer: NodeJS.Timeout | undefined;
    let i = 0;
    const done = () => {
      clearInterval(timer);
      resolve({ answer, ms: Date.now() - started });
    };
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
    });
    socket.on('close', done);
    socket.on('error', (err) => {
      clearInterval(timer);
      if (answer === '') reject(err);
    });
    socket.connect(port, '127.0.0.1', () => {
      socket.write(head);
      timer = setInterval(() => {
        if (socket.writable) socket.write(trickle[i++ % trickle.length] as string);
      }, 400);
    });
  });
}

describe('client timeouts fire on time', () => {
  const LIMIT = 3_000;
  // Node sweeps for expired requests on an interval; within a second of the limit is on time.
  const LATE = 1_500;

  test('a slowloris client (headers never finish) gets its 408 within a second of request_timeout', async () => {
    const gw = await startGateway({
      server: { request_timeout: '3s' },
      routes: [{ path: '/*', target: 'http://127.0.0.1:1' }],
    });
    try {
      const { answer, ms } = await slowClient(gw.port, 'GET /x HTTP/1.1\r\nHost: a\r\nX-Slow: ', 'abcdef');
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /\{"error":"request timeout"/);
      assert.ok(ms >= LIMIT - 100 && ms <= LIMIT + LATE, `408 after ${ms} ms for a ${LIMIT} ms limit`);
    } finally {
      await gw.stop();
    }
  });

  test('a client that never finishes its body gets its 408 within a second of request_timeout', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      server: { request_timeout: '3s' },
      routes: [{ path: '/*', target: upstream.url }],
    });
    try {
      const head = 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n';
      const { answer, ms } = await slowClient(gw.port, head, 'x');
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.ok(ms >= LIMIT - 100 && ms <= LIMIT + LATE, `408 after ${ms} ms for a ${LIMIT} ms limit`);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });

  test('an idle keep-alive connection is closed within a second of keep_alive_timeout', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      server: { keep_alive_timeout: '2s' },
      routes: [{ path: '/*', target: upstream.url }],
    });
    try {
      const socket = new Socket();
      let answer = '';
      let answeredAt = 0;
      socket.on('data', (chunk: Buffer) => {
        answer += chunk.toString('latin1');
        answeredAt = Date.now();
      });
      socket.connect(gw.port, '127.0.0.1', () => socket.write('GET /x HTTP/1.1\r\nHost: a\r\n\r\n'));
      socket.setTimeout(10_000, () => socket.destroy());
      await once(socket, 'close');
      assert.match(answer, /^HTTP\/1\.1 200 /);
      assert.match(answer, /\r\nkeep-alive: timeout=2\r\n/i);
      // Node closes one second after the timeout it announces, so that a client reusing the
      // connection at the announced moment does not race the close.
      const idle = Date.now() - answeredAt - 1_000;
      assert.ok(
        idle >= 2_000 - 100 && idle <= 2_000 + LATE,
        `closed after ${idle} ms idle (past the 1 s grace) for a 2000 ms limit`,
      );
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});

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
