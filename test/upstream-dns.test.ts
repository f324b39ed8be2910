import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startDns, type TestDns } from './helpers/dns.js';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics } from './helpers/metrics.js';
import { freePort, request, sleep } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * DNS discovery through the running CLI: a real DNS server on loopback (TTL 1 s) names real
 * upstreams on 127.0.0.1 and 127.0.0.2; the gateway asks it through `discovery.resolvers`.
 * Every name is under `.test` and asked only of that server.
 */

let dns: TestDns;
const upstreams: Upstream[] = [];
const gateways: RunningGateway[] = [];
before(async () => {
  dns = await startDns({ ttl: 1 });
});
after(async () => {
  await Promise.all(gateways.map((gw) => gw.stop()));
  await Promise.all(upstreams.map((u) => u.close()));
  await dns?.stop();
});

/** An upstream that names itself in `x-upstream`. */
async function named(name: string, at: { host?: string; port?: number } = {}): Promise<Upstream> {
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': name });
    res.end(name);
  }, at);
  upstreams.push(upstream);
  return upstream;
}

async function gateway(
  upstream: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<RunningGateway> {
  const gw = await startGateway(
    {
      upstreams: { app: { ...upstream } },
      routes: [{ path: '/app', upstream: 'app' }],
      ...extra,
    },
    { workers: 2 },
  );
  gateways.push(gw);
  return gw;
}

interface Sent {
  at: number;
  status: number;
  by: string;
}

/** Sequential requests until `ms` passed (bounded: one at a time, at most 2000). */
async function sendFor(url: string, ms: number, during?: (elapsed: number) => void): Promise<Sent[]> {
  const sent: Sent[] = [];
  const start = Date.now();
  while (Date.now() - start < ms && sent.length < 2_000) {
    const at = Date.now() - start;
    during?.(at);
    try {
      const reply = await request(url);
      const by = reply.headers['x-upstream'];
      sent.push({ at, status: reply.status, by: typeof by === 'string' ? by : reply.body });
    } catch (err) {
      sent.push({ at, status: 0, by: (err as Error).message });
    }
    await sleep(10);
  }
  return sent;
}

const tally = (sent: Sent[]) => {
  const by: Record<string, number> = {};
  for (const s of sent) by[s.by] = (by[s.by] ?? 0) + 1;
  return by;
};

describe('DNS discovery through the CLI', () => {
  test('change the answer from A to B: within 2 s traffic moves to B with no failed request', async () => {
    const a = await named('A');
    const b = await named('B', { host: '127.0.0.2', port: a.port });
    dns.set('app.move.test', { a: ['127.0.0.1'] });
    const gw = await gateway({
      targets: [{ url: `http://app.move.test:${a.port}` }],
      discovery: { resolvers: [dns.server] },
    });
    const url = `${gw.url}/app`;
    const before = await sendFor(url, 500);
    assert.deepEqual(tally(before), { A: before.length });

    let flippedAt = -1;
    const sent = await sendFor(url, 4_000, (elapsed) => {
      if (flippedAt < 0 && elapsed >= 500) {
        flippedAt = elapsed;
        dns.set('app.move.test', { a: ['127.0.0.2'] });
      }
    });
    assert.deepEqual(
      sent.filter((s) => s.status !== 200),
      [],
      'no failed request',
    );
    const late = sent.filter((s) => s.at >= flippedAt + 2_000);
    assert.ok(late.length > 10, `requests after the move: ${late.length}`);
    assert.deepEqual(tally(late), { B: late.length }, 'only B, 2 s after the change');
    assert.ok(b.seen.length > 0);

    // A is out of the pool: stopping it costs nothing.
    await a.close();
    const after = await sendFor(url, 500);
    assert.deepEqual(tally(after), { B: after.length });
  });

  test('SRV with two priorities: only the lower priority gets traffic while usable', async () => {
    const first = await named('first');
    const backup = await named('backup');
    dns.set('first.srv.test', { a: ['127.0.0.1'] });
    dns.set('backup.srv.test', { a: ['127.0.0.1'] });
    dns.set('_http._tcp.app.srv.test', {
      srv: [
        { target: 'backup.srv.test', port: backup.port, priority: 20, weight: 1 },
        { target: 'first.srv.test', port: first.port, priority: 10, weight: 1 },
      ],
    });
    const gw = await gateway({
      targets: [{ url: 'srv://_http._tcp.app.srv.test' }],
      discovery: { srv: true, resolvers: [dns.server] },
      outlier_detection: { consecutive_failures: 1 },
    });
    const url = `${gw.url}/app`;
    const sent = await sendFor(url, 1_000);
    assert.deepEqual(tally(sent), { first: sent.length });

    // Priority 10 unusable (refused connections eject it): priority 20 takes over.
    await first.close();
    const failover = await sendFor(url, 1_500);
    const late = failover.slice(-10);
    assert.deepEqual(tally(late), { backup: late.length }, JSON.stringify(tally(failover)));
  });

  test('an SRV record that changes its weight or priority at the same address is taken over (the list the workers get)', async () => {
    const one = await named('one');
    dns.set('one.reweigh.test', { a: ['127.0.0.1'] });
    const srv = (weight: number, priority: number) =>
      dns.set('_http._tcp.reweigh.test', {
        srv: [{ target: 'one.reweigh.test', port: one.port, priority, weight }],
      });
    srv(1, 10);
    const adminPort = await freePort();
    await gateway(
      {
        targets: [{ url: 'srv://_http._tcp.reweigh.test' }],
        discovery: { srv: true, resolvers: [dns.server] },
      },
      { admin: { port: adminPort } },
    );
    const listed = async () =>
      (await request(`http://127.0.0.1:${adminPort}/admin/upstreams`))
        .json<{ upstreams: { name: string; endpoints: { weight: number; priority: number }[] }[] }>()
        .upstreams.find((u) => u.name === 'app')?.endpoints[0];
    assert.deepEqual(await listed(), { ...(await listed()), weight: 1, priority: 10 });
    srv(5, 20);
    // SRV names are read again at least every 5 s.
    const deadline = Date.now() + 8_000;
    let seen = await listed();
    while (Date.now() < deadline && (seen?.weight !== 5 || seen.priority !== 20)) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      seen = await listed();
    }
    assert.equal(seen?.weight, 5);
    assert.equal(seen?.priority, 20);
  });

  test('resolver down: traffic keeps flowing to the last answer', async () => {
    const a = await named('A');
    dns.set('app.down.test', { a: ['127.0.0.1'] });
    const adminPort = await freePort();
    const gw = await gateway(
      {
        targets: [{ url: `http://app.down.test:${a.port}` }],
        discovery: { resolvers: [dns.server] },
      },
      { admin: { port: adminPort }, metrics: { prometheus: {} } },
    );
    const url = `${gw.url}/app`;
    /** The target's failure count; absent (undefined) when there is no such series. */
    const failures = async () =>
      parseMetrics((await request(`http://127.0.0.1:${adminPort}/metrics`)).body).find(
        (m) =>
          m.name === 'portico_upstream_dns_failures_total' &&
          m.labels.upstream === 'app' &&
          m.labels.target === `http://app.down.test:${a.port}`,
      )?.value;
    // The series exists from the start, at 0, so rate() and alerts see it.
    assert.equal(await failures(), 0);
    await dns.stop();
    try {
      // Refresh rounds fail for 4 s (the record's TTL is 1 s).
      const sent = await sendFor(url, 4_000);
      assert.deepEqual(tally(sent), { A: sent.length });
      const errors = gw
        .records()
        .filter((r) => typeof r.msg === 'string' && r.msg.startsWith('cannot resolve upstream target'));
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0]?.level, 50);
      assert.match(String(errors[0]?.msg), /http:\/\/app\.down\.test:\d+ .*keeping its last 1 endpoint/);
      // Every failed round is counted, though logged once.
      assert.ok(((await failures()) ?? 0) >= 2, String(await failures()));
    } finally {
      await dns.start();
    }
    await gw.waitFor((r) => String(r.msg).startsWith('upstream target http://app.down.test'), 10_000);
  });

  test('a resolver that does not answer does not hold start-up: the name joins once it answers', async () => {
    const a = await named('A');
    dns.set('app.late.test', { a: ['127.0.0.1'] });
    dns.mute = true;
    let gw: RunningGateway;
    try {
      gw = await gateway({
        targets: [{ url: `http://app.late.test:${a.port}` }],
        discovery: { resolvers: [dns.server] },
      });
      // Ready with no endpoint for the name (the query gave up, or the 5 s bound of the first
      // resolution ran out), and said why.
      await gw.waitFor((r) =>
        String(r.msg).startsWith('cannot resolve upstream target http://app.late.test'),
      );
      const early = await request(`${gw.url}/app`);
      assert.equal(early.status, 503, early.body);
    } finally {
      dns.mute = false;
    }
    await gw.waitFor((r) => String(r.msg).startsWith('upstream target http://app.late.test'), 10_000);
    // The workers hear of it right after (the primary may batch its broadcasts briefly).
    const deadline = Date.now() + 5_000;
    while ((await request(`${gw.url}/app`)).headers['x-upstream'] !== 'A') {
      assert.ok(Date.now() < deadline, 'the name never got traffic');
      await sleep(50);
    }
    const sent = await sendFor(`${gw.url}/app`, 300);
    assert.deepEqual(tally(sent), { A: sent.length });
  });
});
