import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCa, makeCert, removeCa, type TestCa, type TestCert } from './helpers/certs.js';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { sleep } from './helpers/net.js';
import { get, statusCounts } from './helpers/ratelimit.js';
import {
  integerReply,
  type RunningCluster,
  type RunningRedis,
  type RunningSentinel,
  type RedisTls,
  redisTls,
  startRedisCluster,
  startRedisSentinel,
} from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: `redis.tls` with `redis.sentinel` and with `redis.cluster`, against servers
 * that serve TLS only (`--port 0 --tls-port`) and speak it to each other (replication,
 * sentinels, the cluster bus), all signed by a test CA. Buckets barely refill (0.1 token/s)
 * and `on_store_error: deny`: a connection that fails answers 503, never a silent per-worker
 * limit that could pass for a shared one.
 */
const BURST = 4;

let upstream: Upstream;
let ca: TestCa;
let otherCa: TestCa;
let tls: RedisTls;
/** Signed by the right CA, but for a DNS name only: not for 127.0.0.1, where nodes are announced. */
let dnsOnly: TestCert;
let sentinel: RunningSentinel;
let cluster: RunningCluster;

before(async () => {
  ca = makeCa();
  otherCa = makeCa('Some Other CA');
  tls = redisTls(ca);
  dnsOnly = makeCert(ca, { cn: 'redis.internal', name: 'dns-only' });
  // Both setups at once: creating them is the slow part of this file.
  [upstream, sentinel, cluster] = await Promise.all([
    startUpstream(),
    startRedisSentinel({ tls }),
    startRedisCluster({ replicas: 0, tls }),
  ]);
});
after(async () => {
  await Promise.all([sentinel?.stop(), cluster?.stop(), upstream?.close()]);
  if (ca) removeCa(ca);
  if (otherCa) removeCa(otherCa);
});

const config = (redis: Record<string, unknown>) => ({
  server: { workers: 1, trusted_proxies: ['127.0.0.1'] },
  routes: [{ path: '/ip', target: upstream.url, middleware: ['ratelimit'] }],
  rate_limit: { requests_per_second: 0.1, burst: BURST, on_store_error: 'deny' },
  redis,
});

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

/**
 * 10 concurrent requests per client over two instances: exactly the burst admitted per
 * client, the rest refused (not 503: the store answered every one).
 */
async function sharedExactly(a: RunningGateway, b: RunningGateway, ips: string[]): Promise<void> {
  const answers = await Promise.all(
    ips.flatMap((ip) =>
      Array.from({ length: 10 }, (_, i) =>
        get(`${(i % 2 === 0 ? a : b).url}/ip`, from(ip)).then((r) => ({ ip, r })),
      ),
    ),
  );
  for (const ip of ips) {
    const counts = statusCounts(answers.filter((x) => x.ip === ip).map((x) => x.r));
    assert.deepEqual(counts, { 200: BURST, 429: 10 - BURST }, `${ip}: ${JSON.stringify(counts)}`);
  }
}

/** The gateway exits non-zero with one line on stderr matching `line`, and no stack trace. */
async function failsAtStart(gw: RunningGateway, line: RegExp): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const running = new Promise<'running'>((resolve) => {
    timer = setTimeout(() => resolve('running'), 20_000);
  });
  const code = await Promise.race([gw.exited, running]);
  clearTimeout(timer);
  if (code === 'running') await gw.stop('SIGKILL');
  assert.notEqual(code, 'running', 'the gateway exited at start');
  assert.notEqual(code, 0);
  const lines = gw.stderr().trim().split('\n');
  assert.equal(lines.length, 1, gw.stderr());
  assert.match(lines[0] as string, line);
  assert.doesNotMatch(gw.stderr(), /\n\s+at /, 'no stack trace');
}

/** Runs `check` while `nodes` serve `dnsOnly` (a live TLS reload), then their own pair again. */
async function servingDnsOnly(nodes: RunningRedis[], check: () => Promise<void>): Promise<void> {
  const serve = (cert: string, key: string) =>
    Promise.all(nodes.map((n) => n.command('CONFIG', 'SET', 'tls-cert-file', cert, 'tls-key-file', key)));
  for (const reply of await serve(dnsOnly.cert, dnsOnly.key)) assert.equal(reply, '+OK\r\n');
  try {
    await check();
  } finally {
    await serve(tls.cert, tls.key);
  }
}

describe('TLS to Redis behind Sentinel (sentinels and servers TLS only)', () => {
  test('redis.sentinel with redis.tls.ca: two instances share exact limits on the master', async () => {
    const settings = config({
      sentinel: { name: sentinel.name, nodes: sentinel.sentinels },
      tls: { ca: ca.cert },
    });
    const [a, b] = await Promise.all([startGateway(settings), startGateway(settings)]);
    try {
      await sharedExactly(a, b, ['10.20.0.1', '10.20.0.2']);
      assert.ok(integerReply(await sentinel.master.command('DBSIZE')) >= 2, 'buckets on the master');
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a CA that did not sign the sentinels’ certificate fails the start with one clear line', async () => {
    const gw = await startGateway(
      config({ sentinel: { name: sentinel.name, nodes: sentinel.sentinels }, tls: { ca: otherCa.cert } }),
      { waitReady: false },
    );
    const first = (sentinel.sentinels[0] as string).replace(/\./g, '\\.');
    await failsAtStart(
      gw,
      new RegExp(`^redis\\.sentinel\\.nodes: TLS to Redis at ${first} failed: .*certificate`),
    );
  });

  test('a master whose certificate does not name the address the sentinels announce fails the start', async () => {
    await servingDnsOnly([sentinel.master, sentinel.replica], async () => {
      const gw = await startGateway(
        config({ sentinel: { name: sentinel.name, nodes: sentinel.sentinels }, tls: { ca: ca.cert } }),
        { waitReady: false },
      );
      await failsAtStart(
        gw,
        new RegExp(
          `^redis\\.sentinel\\.nodes: TLS to Redis at 127\\.0\\.0\\.1:${sentinel.master.port}, the master the sentinel at .* names, failed: .*altnames.* \\(its certificate must name the address it is reached at\\)$`,
        ),
      );
    });
  });
  test('a master certificate that stops verifying at run time is said once, in words; shared limiting returns with a good one', async () => {
    const gw = await startGateway(
      config({ sentinel: { name: sentinel.name, nodes: sentinel.sentinels }, tls: { ca: ca.cert } }),
    );
    try {
      assert.equal((await get(`${gw.url}/ip`, from('10.22.0.1'))).status, 200);
      await servingDnsOnly([sentinel.master, sentinel.replica], async () => {
        // The gateway's connection drops; reconnecting meets the new certificate.
        await sentinel.master.command('CLIENT', 'KILL', 'TYPE', 'normal');
        const failed = await gw.waitFor((r) => String(r.msg).startsWith('redis TLS connection failed'));
        assert.equal(failed.level, 50);
        assert.match(String(failed.msg), /altnames/);
        assert.doesNotMatch(
          String(failed.msg),
          /no TLS session/,
          'a session was made: its certificate failed',
        );
        assert.equal((await get(`${gw.url}/ip`, from('10.22.0.1'))).status, 503, 'deny');
      });
      // The worker finds the store again on a request after its probe interval.
      let status = 0;
      for (const deadline = Date.now() + 20_000; status !== 200 && Date.now() < deadline;) {
        await sleep(500);
        status = (await get(`${gw.url}/ip`, from('10.22.0.1'))).status;
      }
      assert.equal(status, 200, 'shared limiting resumed');
      await gw.waitFor((r) => String(r.msg).startsWith('rate-limit store available again'));
      const failures = gw.records().filter((r) => String(r.msg).startsWith('redis TLS connection failed'));
      assert.equal(failures.length, 1, 'said once');
    } finally {
      await gw.stop();
    }
  });
});

describe('TLS to Redis Cluster (3 masters, TLS only, TLS cluster bus)', () => {
  test('redis.cluster with redis.tls.ca: two instances share exact limits across the masters', async () => {
    const settings = config({ cluster: { nodes: cluster.seeds.slice(0, 2) }, tls: { ca: ca.cert } });
    const [a, b] = await Promise.all([startGateway(settings), startGateway(settings)]);
    try {
      const ips = ['10.21.0.1', '10.21.0.2', '10.21.0.3', '10.21.0.4'];
      await sharedExactly(a, b, ips);
      // Each bucket is on the master that serves its slot: the keys are spread over the nodes.
      const holders = new Set<number>();
      for (const ip of ips) {
        const key = `portico:rl:{g|ip:${ip}}`;
        const node = cluster.nodes[0];
        assert.ok(node);
        const owner = await cluster.masterOf(integerReply(await node.command('CLUSTER', 'KEYSLOT', key)));
        assert.equal(integerReply(await owner.command('EXISTS', key)), 1, `${ip}'s bucket on its master`);
        holders.add(owner.port);
      }
      assert.ok(holders.size >= 2, `buckets on ${holders.size} master(s)`);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  test('a CA that did not sign the nodes’ certificate fails the start with one clear line', async () => {
    const gw = await startGateway(
      config({ cluster: { nodes: cluster.seeds.slice(0, 2) }, tls: { ca: otherCa.cert } }),
      { waitReady: false },
    );
    const first = (cluster.seeds[0] as string).replace(/\./g, '\\.');
    await failsAtStart(
      gw,
      new RegExp(`^redis\\.cluster\\.nodes: TLS to Redis at ${first} failed: .*certificate`),
    );
  });

  test('masters whose certificates do not name the addresses the cluster announces fail the start', async () => {
    // The seed's own certificate verifies; the other masters', found through it, do not.
    const [seed, ...others] = cluster.nodes as [RunningRedis, ...RunningRedis[]];
    await servingDnsOnly(others, async () => {
      const gw = await startGateway(
        config({ cluster: { nodes: [`127.0.0.1:${seed.port}`] }, tls: { ca: ca.cert } }),
        { waitReady: false },
      );
      const announced = others.map((n) => n.port).join('|');
      await failsAtStart(
        gw,
        new RegExp(
          `^redis\\.cluster\\.nodes: TLS to Redis at 127\\.0\\.0\\.1:(${announced}), a master the cluster announces, failed: .*altnames.* \\(its certificate must name the address it is reached at\\)$`,
        ),
      );
    });
  });
});
