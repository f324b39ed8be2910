import assert from 'node:assert/strict';
import { promises as dns } from 'node:dns';
import { after, before, describe, test } from 'node:test';
import {
  createServerResolver,
  createSystemResolver,
  type Resolver,
} from '../src/primary/upstreams/resolver.js';
import { startDns, type TestDns } from './helpers/dns.js';
import { sleep } from './helpers/net.js';

/*
 * One contract, every resolver (STYLE principle 4), against a real DNS server on loopback.
 *
 * The system resolver is built with a c-ares resolver pointed at the test server, as a
 * /etc/resolv.conf naming it would (this machine's file names a server off loopback, and no
 * test traffic goes there). Its fallback is the real `dns.lookup`, except that names under
 * `.test` (RFC 6761) fail at once instead of being sent by getaddrinfo to that server: as on
 * a machine whose /etc/hosts does not list them and that has no other DNS.
 */

let server: TestDns;
before(async () => {
  server = await startDns({ ttl: 7 });
});
after(async () => {
  await server?.stop();
});

const notFound = () => Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
const guardedLookup = (host: string, options: { all: true }) =>
  host.endsWith('.test') ? Promise.reject(notFound()) : dns.lookup(host, options);

const implementations: [string, () => Resolver][] = [
  ['explicit servers (discovery.resolvers)', () => createServerResolver([server.server])],
  [
    'system (c-ares, then the system lookup)',
    () => {
      const cares = new dns.Resolver({ timeout: 1_000, tries: 2 });
      cares.setServers([server.server]);
      return createSystemResolver({ cares, lookup: guardedLookup });
    },
  ],
];

for (const [name, make] of implementations) {
  describe(`resolver contract: ${name}`, () => {
    test('every A and AAAA address, with its TTL', async () => {
      server.set('both.test', { a: ['127.0.0.1', '127.0.0.2'], aaaa: ['::1'] });
      const found = await make().resolveAddresses('both.test');
      assert.deepEqual(
        found.sort((a, b) => (a.address < b.address ? -1 : 1)),
        [
          { address: '127.0.0.1', family: 4, ttl: 7 },
          { address: '127.0.0.2', family: 4, ttl: 7 },
          { address: '::1', family: 6, ttl: 7 },
        ],
      );
    });

    test('a name with only A records (no AAAA) resolves', async () => {
      server.set('v4.test', { a: ['127.0.0.3'] });
      assert.deepEqual(await make().resolveAddresses('v4.test'), [
        { address: '127.0.0.3', family: 4, ttl: 7 },
      ]);
    });

    test('each query asks the server again: a changed answer is seen', async () => {
      const resolver = make();
      server.set('moving.test', { a: ['127.0.0.1'] });
      assert.equal((await resolver.resolveAddresses('moving.test'))[0]?.address, '127.0.0.1');
      server.set('moving.test', { a: ['127.0.0.2'] });
      assert.equal((await resolver.resolveAddresses('moving.test'))[0]?.address, '127.0.0.2');
    });

    test('SRV records give host, port, priority and weight', async () => {
      server.set('_http._tcp.svc.test', {
        srv: [
          { target: 'a.svc.test', port: 9001, priority: 10, weight: 5 },
          { target: 'b.svc.test', port: 9002, priority: 20, weight: 1 },
        ],
      });
      const found = await make().resolveService('_http._tcp.svc.test');
      assert.deepEqual(
        found.sort((a, b) => a.port - b.port),
        [
          { host: 'a.svc.test', port: 9001, priority: 10, weight: 5 },
          { host: 'b.svc.test', port: 9002, priority: 20, weight: 1 },
        ],
      );
    });

    test('NXDOMAIN rejects with ENOTFOUND', async () => {
      const resolver = make();
      await assert.rejects(resolver.resolveAddresses('nowhere.test'), isCode('ENOTFOUND'));
      await assert.rejects(resolver.resolveService('_http._tcp.nowhere.test'), isCode('ENOTFOUND'));
    });

    test('a name without records of the type asked rejects with ENODATA', async () => {
      server.set('empty.test', {});
      const resolver = make();
      await assert.rejects(resolver.resolveAddresses('empty.test'), isCode('ENODATA'));
      await assert.rejects(resolver.resolveService('empty.test'), isCode('ENODATA'));
    });

    test('a DNS server that does not answer makes it reject within a few seconds', async () => {
      server.set('silent.test', { a: ['127.0.0.1'] });
      server.mute = true;
      try {
        await assert.rejects(make().resolveAddresses('silent.test'), isCode('ETIMEOUT'));
      } finally {
        server.mute = false;
      }
    });

    test('a DNS server that is down makes it reject', async () => {
      server.set('down.test', { a: ['127.0.0.1'] });
      await server.stop();
      try {
        await assert.rejects(make().resolveAddresses('down.test'), isCode('ECONNREFUSED'));
      } finally {
        await server.start();
      }
    });

    test('cancel() ends the queries in flight', async () => {
      server.set('silent.test', { a: ['127.0.0.1'] });
      server.mute = true;
      try {
        const resolver = make();
        const pending = resolver.resolveAddresses('silent.test');
        await sleep(50);
        resolver.cancel();
        await assert.rejects(pending, isCode('ECANCELLED'));
      } finally {
        server.mute = false;
      }
    });
  });
}

describe('system resolver: names DNS does not know', () => {
  test('localhost resolves through the system lookup (/etc/hosts), with no TTL and no DNS query', async () => {
    const cares = new dns.Resolver({ timeout: 1_000, tries: 2 });
    cares.setServers([server.server]);
    const asked = server.queries.length;
    const found = await createSystemResolver({ cares }).resolveAddresses('localhost');
    assert.ok(found.length > 0);
    for (const entry of found) {
      assert.ok(entry.address === '127.0.0.1' || entry.address === '::1', entry.address);
      assert.equal(entry.ttl, null);
    }
    assert.deepEqual(server.queries.slice(asked), []);
  });

  test('a name DNS does not know falls back to the system lookup', async () => {
    const cares = new dns.Resolver({ timeout: 1_000, tries: 2 });
    cares.setServers([server.server]);
    // As an /etc/hosts line would: the system lookup knows the name, DNS answers NXDOMAIN.
    const hosts = (host: string, options: { all: true }) =>
      host === 'hosts-only.test' ? dns.lookup('127.0.0.5', options) : guardedLookup(host, options);
    const found = await createSystemResolver({ cares, lookup: hosts }).resolveAddresses('hosts-only.test');
    assert.deepEqual(found, [{ address: '127.0.0.5', family: 4, ttl: null }]);
    assert.ok(server.queries.includes('A hosts-only.test'), 'DNS was asked first');
  });

  test('localhost resolves even when no DNS server is reachable', async () => {
    const down = await startDns();
    const cares = new dns.Resolver({ timeout: 1_000, tries: 2 });
    cares.setServers([down.server]);
    await down.stop();
    const found = await createSystemResolver({ cares }).resolveAddresses('localhost');
    assert.ok(found.some((entry) => entry.address === '127.0.0.1' || entry.address === '::1'));
  });
});

function isCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.equal((err as { code?: unknown }).code, code, err.message);
    return true;
  };
}
