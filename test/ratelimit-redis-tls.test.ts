import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeCa, removeCa, type TestCa } from './helpers/certs.js';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { get, statusCounts } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, redisTls, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: TLS to a redis-server that serves TLS only (`--port 0 --tls-port`), with a test
 * CA; and an ACL user (the `default` user switched off).
 */
const BURST = 3;
const PASSWORD = 'acl-s3cret-pw';

let upstream: Upstream;
let ca: TestCa;
let otherCa: TestCa;
let tlsRedis: RunningRedis;
let aclRedis: RunningRedis;

before(async () => {
  ca = makeCa();
  otherCa = makeCa('Some Other CA');
  [upstream, tlsRedis, aclRedis] = await Promise.all([
    startUpstream(),
    startRedis({ tls: redisTls(ca) }),
    startRedis({ username: 'portico', password: PASSWORD }),
  ]);
});
after(async () => {
  await Promise.all([tlsRedis?.stop(), aclRedis?.stop(), upstream?.close()]);
  if (ca) removeCa(ca);
  if (otherCa) removeCa(otherCa);
});

const config = (redis: Record<string, unknown>) => ({
  server: { workers: 1 },
  routes: [{ path: '/ip', target: upstream.url, middleware: ['ratelimit'] }],
  rate_limit: { requests_per_second: 0.1, burst: BURST, on_store_error: 'deny' },
  redis,
});

/** `BURST + 2` requests: the burst admitted, the rest refused (deny mode: 503 if Redis failed). */
async function limitedThroughRedis(gw: RunningGateway): Promise<void> {
  const answers = [];
  for (let i = 0; i < BURST + 2; i++) answers.push(await get(`${gw.url}/ip`));
  assert.deepEqual(statusCounts(answers), { 200: BURST, 429: 2 });
}

describe('TLS to Redis', () => {
  test('rediss:// with redis.tls.ca: buckets live in the TLS-only Redis', async () => {
    const gw = await startGateway(config({ url: tlsRedis.url, tls: { ca: ca.cert } }));
    try {
      await limitedThroughRedis(gw);
      assert.ok(integerReply(await tlsRedis.command('DBSIZE')) >= 1);
    } finally {
      await gw.stop();
    }
  });

  test('a CA that did not sign the server certificate fails the start with one clear line', async () => {
    const gw = await startGateway(config({ url: tlsRedis.url, tls: { ca: otherCa.cert } }), {
      waitReady: false,
    });
    const code = await gw.exited;
    assert.notEqual(code, 0);
    const lines = gw.stderr().trim().split('\n');
    assert.equal(lines.length, 1, gw.stderr());
    assert.match(
      lines[0] as string,
      new RegExp(`redis\\.url: TLS to Redis at 127\\.0\\.0\\.1:${tlsRedis.port} failed: .*certificate`),
    );
    assert.doesNotMatch(gw.stderr(), /\n\s+at /, 'no stack trace');
  });

  test('redis.tls with a plain redis:// URL is a config error at its key path', async () => {
    const gw = await startGateway(config({ url: aclRedis.url, tls: { ca: ca.cert } }), { waitReady: false });
    assert.notEqual(await gw.exited, 0);
    assert.match(gw.stderr(), /redis\.url: redis\.tls is set: use a rediss:\/\/ URL/);
  });
});

describe('ACL user', () => {
  test('redis.username and redis.password (from the environment) authenticate; the password is never logged', async () => {
    const gw = await startGateway(
      config({
        url: `redis://127.0.0.1:${aclRedis.port}`,
        username: 'portico',
        password: '${REDIS_PASSWORD}',
      }),
      { env: { REDIS_PASSWORD: PASSWORD } },
    );
    try {
      await limitedThroughRedis(gw);
      assert.ok(integerReply(await aclRedis.command('DBSIZE')) >= 1);
      assert.ok(!gw.lines.join('\n').includes(PASSWORD));
    } finally {
      await gw.stop();
    }
  });

  test('a wrong password is said once, in words, and the password stays out of the log', async () => {
    const gw = await startGateway(
      config({ url: `redis://127.0.0.1:${aclRedis.port}`, username: 'portico', password: 'wrong-pw-123' }),
    );
    try {
      const answer = await get(`${gw.url}/ip`);
      assert.equal(answer.status, 503, 'deny: the store cannot answer');
      const failed = gw.records().filter((r) => String(r.msg).includes('authentication failed'));
      assert.equal(failed.length, 1);
      assert.ok(!gw.lines.join('\n').includes('wrong-pw-123'));
    } finally {
      await gw.stop();
    }
  });
});
