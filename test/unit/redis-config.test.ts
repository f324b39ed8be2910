import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildPlan } from '../../src/primary/plan/build.js';
import { ConfigError, configDirOf, loadConfigText } from '../../src/shared/config/load.js';
import type { Plan } from '../../src/shared/plan/types.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';
import { describeRedis } from '../../src/worker/middleware/ratelimit/redis-connection.js';

const file = '/tmp/portico-redis-config.yaml';
const BASE = `routes:\n  - path: /a\n    target: http://127.0.0.1:9000\n    middleware: [ratelimit]\n`;

function plan(redis: string, env: NodeJS.ProcessEnv = {}): Plan {
  const yaml = `${BASE}redis:\n${redis}`;
  return buildPlan(loadConfigText(yaml, file, new MiddlewareRegistry(), env), file, configDirOf(file), env);
}

function problems(redis: string): string[] {
  try {
    plan(redis);
  } catch (err) {
    if (err instanceof ConfigError) return err.lines;
    throw err;
  }
  return [];
}

const storeOf = (p: Plan) => {
  const store = p.limiter?.store;
  assert.equal(store?.kind, 'redis');
  return store.redis;
};

describe('redis config: url, sentinel or cluster', () => {
  test('sentinel: name, nodes (IPv6 too) and the sentinel password from the environment', () => {
    const redis = storeOf(
      plan(
        '  sentinel:\n    name: mymaster\n    nodes: [10.0.0.1:26379, "[::1]:26380"]\n    password: ${SP}\n  username: app\n  password: ${RP}\n',
        { SP: 'sentinel-secret', RP: 'redis-secret' },
      ),
    );
    assert.deepEqual(redis, {
      mode: 'sentinel',
      url: '',
      sentinelName: 'mymaster',
      nodes: [
        { host: '10.0.0.1', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      sentinelPassword: 'sentinel-secret',
      username: 'app',
      password: 'redis-secret',
    });
    assert.equal(describeRedis(redis), 'sentinel mymaster via 10.0.0.1:26379,[::1]:26380');
  });

  test('cluster: seed nodes; an empty sentinel password is no password', () => {
    const redis = storeOf(plan('  cluster:\n    nodes: [a:7000, b:7001]\n'));
    assert.equal(redis.mode, 'cluster');
    assert.deepEqual(redis.nodes, [
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
    ]);
    const sentinel = storeOf(plan('  sentinel:\n    name: m\n    nodes: [a:1]\n    password: ""\n'));
    assert.equal(sentinel.sentinelPassword, undefined);
  });

  test('rediss:// alone means TLS with the system CAs; credentials are masked in descriptions', () => {
    const redis = storeOf(plan('  url: rediss://user:pw@h:6380/2\n'));
    assert.deepEqual(redis.tls, {});
    assert.equal(describeRedis(redis), 'rediss://***@h:6380/2');
  });

  test('more than one of url, sentinel, cluster is one line at the second key', () => {
    const lines = problems('  url: redis://h:6379\n  cluster:\n    nodes: [a:7000]\n');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(
      lines[0] as string,
      /:7:3: redis\.cluster: set exactly one of redis\.url, redis\.sentinel, redis\.cluster/,
    );
  });

  test('bad nodes, braces in key_prefix, a cert without its key, a missing CA file: each at its key path', () => {
    const lines = problems(
      '  cluster:\n    nodes: [a, b:99999]\n  key_prefix: "x{y}"\n  tls:\n    cert: c.pem\n    ca: /nonexistent/ca.pem\n',
    );
    const text = lines.join('\n');
    assert.match(text, /redis\.cluster\.nodes\[0\]: must be host:port/);
    assert.match(text, /redis\.cluster\.nodes\[1\]: port must be 1-65535/);
    assert.match(text, /redis\.key_prefix: must not contain \{ or \}/);
    assert.match(text, /redis\.tls\.key: tls\.cert and tls\.key go together/);
  });

  test('a CA file that cannot be read is reported at redis.tls.ca', () => {
    const lines = problems('  url: rediss://h:6380\n  tls:\n    ca: /nonexistent/ca.pem\n');
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(lines[0] as string, /redis\.tls\.ca: cannot read \/nonexistent\/ca\.pem: no such file/);
  });
});
