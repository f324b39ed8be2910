import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createDiscovery, type DiscoveredEndpoint } from '../src/primary/upstreams/discovery.js';
import { createServerResolver } from '../src/primary/upstreams/resolver.js';
import type { TargetPlan, UpstreamPlan } from '../src/shared/plan/types.js';
import { startDns, type TestDns } from './helpers/dns.js';
import { sleep } from './helpers/net.js';
import { testUpstreamPlan } from './helpers/plans.js';

/*
 * Discovery against a real DNS server on loopback, in real time: TTL 1 s answers, so a change
 * must show within 2 s.
 */

let dns: TestDns;
before(async () => {
  dns = await startDns({ ttl: 1 });
});
after(async () => {
  await dns?.stop();
});

let seq = 0;
/** A fresh name per test: the server's table is shared. */
const unique = (label: string) => `${label}-${++seq}.test`;

function target(url: string, weight = 1): TargetPlan {
  if (url.startsWith('srv://')) {
    return { url, discovery: 'srv', protocol: 'http:', host: url.slice(6), port: 0, weight };
  }
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    url,
    discovery: /^[\d.]+$|:/.test(host) ? 'address' : 'dns',
    protocol: u.protocol === 'https:' ? 'https:' : 'http:',
    host,
    port: Number(u.port),
    weight,
  };
}

function upstream(targets: TargetPlan[], dnsRefresh: 'ttl' | number = 'ttl'): UpstreamPlan {
  return testUpstreamPlan(
    {},
    { targets, discovery: { dnsRefresh, srv: true, resolvers: [dns.server] }, fingerprint: 'test' },
  );
}

interface Logged {
  level: number;
  msg: string;
}
function capture() {
  const lines: Logged[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Logged) });
  return {
    logger,
    errors: () => lines.filter((l) => l.level === 50).map((l) => l.msg),
    infos: () => lines.filter((l) => l.level === 30).map((l) => l.msg),
  };
}

/** Starts a discovery and records every list it announces. */
async function run(plan: UpstreamPlan, options: { startTimeoutMs?: number } = {}) {
  const log = capture();
  const discovery = createDiscovery(plan, log.logger, {
    resolver: createServerResolver([dns.server]),
    ...options,
  });
  const changes: DiscoveredEndpoint[][] = [];
  const waiters: (() => void)[] = [];
  const first = await discovery.start((endpoints) => {
    changes.push(endpoints);
    for (const wake of waiters.splice(0)) wake();
  });
  /** The next announced list, or a failure after `ms`. */
  const nextChange = (ms: number) =>
    new Promise<DiscoveredEndpoint[]>((resolve, reject) => {
      const seen = changes.length;
      const timer = setTimeout(() => reject(new Error(`no change within ${ms} ms`)), ms);
      waiters.push(() => {
        clearTimeout(timer);
        resolve(changes[seen] as DiscoveredEndpoint[]);
      });
    });
  return { discovery, first, changes, nextChange, log };
}

const ids = (endpoints: DiscoveredEndpoint[]) => endpoints.map((e) => `${e.host}:${e.port}`);

describe('DNS discovery', () => {
  test('every A and AAAA address of a hostname is its own endpoint, named by the hostname', async () => {
    const name = unique('multi');
    dns.set(name, { a: ['127.0.0.2', '127.0.0.1'], aaaa: ['::1'] });
    const { discovery, first } = await run(
      upstream([target(`http://${name}:9001`, 3), target('http://127.0.0.9:9009')]),
    );
    discovery.close();
    assert.deepEqual(
      first.map((e) => ({ ...e })),
      [
        { host: '127.0.0.9', port: 9009, protocol: 'http:', weight: 1, priority: 0 },
        { host: '127.0.0.1', port: 9001, protocol: 'http:', servername: name, weight: 3, priority: 0 },
        { host: '127.0.0.2', port: 9001, protocol: 'http:', servername: name, weight: 3, priority: 0 },
        { host: '::1', port: 9001, protocol: 'http:', servername: name, weight: 3, priority: 0 },
      ],
    );
  });

  test('TTL 1 s: the answer changes from A to B, onChange has B within 2 s', async () => {
    const name = unique('move');
    dns.set(name, { a: ['127.0.0.1'] });
    const { discovery, first, nextChange } = await run(upstream([target(`http://${name}:9001`)]));
    try {
      assert.deepEqual(ids(first), ['127.0.0.1:9001']);
      const changed = nextChange(2_000);
      dns.set(name, { a: ['127.0.0.2'] });
      assert.deepEqual(ids(await changed), ['127.0.0.2:9001']);
    } finally {
      discovery.close();
    }
  });

  test('an unchanged answer (even in another order) does not call onChange', async () => {
    const name = unique('steady');
    dns.set(name, { a: ['127.0.0.1', '127.0.0.2'] });
    const { discovery, changes } = await run(upstream([target(`http://${name}:9001`)]));
    try {
      const before = dns.queries.filter((q) => q === `A ${name}`).length;
      dns.set(name, { a: ['127.0.0.2', '127.0.0.1'] });
      await sleep(2_500);
      assert.ok(dns.queries.filter((q) => q === `A ${name}`).length > before, 'resolved again');
      assert.deepEqual(changes, []);
    } finally {
      discovery.close();
    }
  });

  test('SRV with two priorities: hosts resolved to addresses, with port, priority and weight', async () => {
    const name = `_http._tcp.${unique('srv')}`;
    const [primary, backup] = [unique('primary'), unique('backup')];
    dns.set(primary, { a: ['127.0.0.1', '127.0.0.2'] });
    dns.set(backup, { a: ['127.0.0.3'] });
    dns.set(name, {
      srv: [
        { target: backup, port: 9003, priority: 20, weight: 0 },
        { target: primary, port: 9001, priority: 10, weight: 5 },
      ],
    });
    const { discovery, first, nextChange } = await run(upstream([target(`srv://${name}`, 2)]));
    try {
      assert.deepEqual(
        first.map((e) => ({ ...e })),
        [
          { host: '127.0.0.1', port: 9001, protocol: 'http:', servername: primary, weight: 10, priority: 10 },
          { host: '127.0.0.2', port: 9001, protocol: 'http:', servername: primary, weight: 10, priority: 10 },
          { host: '127.0.0.3', port: 9003, protocol: 'http:', servername: backup, weight: 2, priority: 20 },
        ],
      );
      // The records' hosts are followed too: a host's new address shows up.
      const changed = nextChange(2_000);
      dns.set(backup, { a: ['127.0.0.4'] });
      assert.deepEqual(ids(await changed), ['127.0.0.1:9001', '127.0.0.2:9001', '127.0.0.4:9003']);
    } finally {
      discovery.close();
    }
  });

  test('resolver down: the last answer is kept, the error logged once, the recovery once', async () => {
    const name = unique('down');
    dns.set(name, { a: ['127.0.0.1'] });
    const { discovery, first, changes, nextChange, log } = await run(
      upstream([target(`http://${name}:9001`)]),
    );
    try {
      assert.deepEqual(ids(first), ['127.0.0.1:9001']);
      await dns.stop();
      // Several refresh rounds fail (retries after 1 s, 2 s, …).
      await sleep(3_500);
      assert.deepEqual(changes, [], 'the endpoints stay as they were');
      const errors = log.errors();
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(
        errors[0] ?? '',
        new RegExp(`cannot resolve upstream target http://${name}:9001 .*keeping its last 1 endpoint`),
      );
      dns.set(name, { a: ['127.0.0.2'] });
      const changed = nextChange(6_000);
      await dns.start();
      assert.deepEqual(ids(await changed), ['127.0.0.2:9001']);
      assert.equal(log.infos().filter((m) => m.includes('resolves again')).length, 1);
      assert.equal(log.errors().length, 1);
    } finally {
      discovery.close();
      await dns.start();
    }
  });

  test('NXDOMAIN or an empty answer keeps the last answer', async () => {
    const name = unique('vanish');
    dns.set(name, { a: ['127.0.0.1'] });
    const { discovery, changes, log } = await run(upstream([target(`http://${name}:9001`)]));
    try {
      dns.set(name, undefined);
      await sleep(1_800);
      dns.set(name, {});
      await sleep(1_800);
      assert.deepEqual(changes, []);
      assert.equal(log.errors().length, 1, log.errors().join('\n'));
    } finally {
      discovery.close();
    }
  });

  test('a resolver that never answers does not hold start(): it starts without the name, which joins later', async () => {
    const name = unique('late');
    dns.set(name, { a: ['127.0.0.2'] });
    dns.mute = true;
    let run1: Awaited<ReturnType<typeof run>> | undefined;
    try {
      run1 = await run(upstream([target(`http://${name}:9001`), target('http://127.0.0.1:9000')]), {
        startTimeoutMs: 300,
      });
      assert.deepEqual(ids(run1.first), ['127.0.0.1:9000']);
      assert.match(
        run1.log.errors()[0] ?? '',
        /cannot resolve upstream target .*\(no answer within 0\.3 s\): it has no endpoints until it resolves/,
      );
      const changed = run1.nextChange(8_000);
      dns.mute = false;
      assert.deepEqual(ids(await changed), ['127.0.0.1:9000', '127.0.0.2:9001']);
      assert.equal(run1.log.errors().length, 1, run1.log.errors().join('\n'));
    } finally {
      dns.mute = false;
      run1?.discovery.close();
    }
  });

  test('a fixed dns_refresh resolves on that period, whatever the TTL', async () => {
    const name = unique('fixed');
    dns.set(name, { a: ['127.0.0.1'] });
    const { discovery } = await run(upstream([target(`http://${name}:9001`)], 3_000));
    try {
      await sleep(2_200);
      // TTL 1 s would have asked twice by now; the fixed 3 s period not yet.
      assert.equal(dns.queries.filter((q) => q === `A ${name}`).length, 1);
    } finally {
      discovery.close();
    }
  });

  test('close() stops resolving', async () => {
    const name = unique('closed');
    dns.set(name, { a: ['127.0.0.1'] });
    const { discovery, changes } = await run(upstream([target(`http://${name}:9001`)]));
    discovery.close();
    const asked = dns.queries.filter((q) => q === `A ${name}`).length;
    dns.set(name, { a: ['127.0.0.2'] });
    await sleep(1_500);
    assert.equal(dns.queries.filter((q) => q === `A ${name}`).length, asked);
    assert.deepEqual(changes, []);
  });
});
