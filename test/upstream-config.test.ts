import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli, writeConfig } from './helpers/gateway.js';

/*
 * `portico check` on the `upstreams:` section and `routes[].upstream`: every mistake is one
 * line `file:line:col: key.path: reason`, exit 1, and one run shows them all.
 */

const POOL = `upstreams:
  users:
    targets:
      - url: http://127.0.0.1:9002
`;
const ROUTE = `routes:
  - path: /u/*
    upstream: users
`;

/** [what, YAML, the one expected line after the file name] */
const CASES: [string, string, RegExp][] = [
  [
    'an unknown upstream name on a route',
    `${POOL}routes:\n  - path: /u/*\n    upstream: user\n`,
    /^:7:5: routes\[0\]\.upstream: unknown upstream "user" \(defined: users\)$/,
  ],
  [
    'an upstream name with no upstreams defined',
    'routes:\n  - path: /u/*\n    upstream: users\n',
    /^:3:5: routes\[0\]\.upstream: unknown upstream "users" \(no upstreams are defined\)$/,
  ],
  [
    'both target and upstream',
    `${POOL}routes:\n  - path: /u/*\n    target: http://127.0.0.1:1\n    upstream: users\n`,
    /^:8:5: routes\[0\]\.upstream: a route needs exactly one of target and upstream, it has both$/,
  ],
  [
    'neither target nor upstream',
    `${POOL}routes:\n  - path: /u/*\n`,
    /^:6:5: routes\[0\]: a route needs exactly one of target and upstream, it has neither$/,
  ],
  [
    'a target URL with a path',
    `upstreams:\n  users:\n    targets:\n      - url: http://127.0.0.1:9002/api\n${ROUTE}`,
    /^:4:9: upstreams\.users\.targets\[0\]\.url: an upstream target is scheme:\/\/host:port without a path, got "http:\/\/127\.0\.0\.1:9002\/api"/,
  ],
  [
    'a target URL with a query',
    `upstreams:\n  users:\n    targets:\n      - url: http://127.0.0.1:9002?x=1\n${ROUTE}`,
    /^:4:9: upstreams\.users\.targets\[0\]\.url: target must not contain a query, fragment or credentials$/,
  ],
  [
    'a target URL with another scheme',
    `upstreams:\n  users:\n    targets:\n      - url: ftp://127.0.0.1:9002\n${ROUTE}`,
    /^:4:9: upstreams\.users\.targets\[0\]\.url: target must use http:\/\/, https:\/\/ or srv:\/\/, got "ftp:\/\/127\.0\.0\.1:9002"$/,
  ],
  [
    'a healthy_threshold out of range',
    `${POOL}    health_check:\n      healthy_threshold: 0\n${ROUTE}`,
    /^:6:7: upstreams\.users\.health_check\.healthy_threshold: must be an integer 1–100, got 0$/,
  ],
  [
    'an unhealthy_threshold out of range',
    `${POOL}    health_check:\n      unhealthy_threshold: 101\n${ROUTE}`,
    /^:6:7: upstreams\.users\.health_check\.unhealthy_threshold: must be an integer 1–100, got 101$/,
  ],
  [
    'consecutive_failures out of range',
    `${POOL}    outlier_detection:\n      consecutive_failures: -1\n${ROUTE}`,
    /^:6:7: upstreams\.users\.outlier_detection\.consecutive_failures: must be an integer 0–1000, got -1$/,
  ],
  [
    'a weight out of range',
    `upstreams:\n  users:\n    targets:\n      - url: http://127.0.0.1:9002\n        weight: 0\n${ROUTE}`,
    /^:5:9: upstreams\.users\.targets\[0\]\.weight: must be an integer 1–1000, got 0$/,
  ],
  [
    'health_check.timeout not shorter than interval',
    `${POOL}    health_check:\n      interval: 1s\n      timeout: 1s\n${ROUTE}`,
    /^:7:7: upstreams\.users\.health_check\.timeout: must be shorter than interval$/,
  ],
  [
    'hash_on without balance: hash',
    `${POOL}    hash_on: ip\n${ROUTE}`,
    /^:5:5: upstreams\.users\.hash_on: only applies to balance: hash \(balance is least_request\)$/,
  ],
  [
    'a discovery resolver given by name (nothing would resolve it)',
    `${POOL}    discovery:\n      resolvers: [dns.internal:53]\n${ROUTE}`,
    /^:\d+:\d+: upstreams\.users\.discovery\.resolvers\[0\]: must be ip:port, e\.g\. 10\.0\.0\.53:53 or \[::1\]:53$/,
  ],
];

describe('portico check: upstreams', () => {
  for (const [what, yaml, expected] of CASES) {
    test(`${what}: one line with file:line:col and key path, exit 1`, async () => {
      const file = await writeConfig(yaml);
      const { code, stdout, stderr } = await runCli(['check', '--config', file]);
      assert.equal(code, 1, stderr);
      assert.equal(stdout, '');
      const lines = stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, stderr);
      const line = lines[0] as string;
      assert.ok(line.startsWith(file), line);
      assert.match(line.slice(file.length), expected);
    });
  }

  test('cross-key checks run even when other keys of the same block are wrong: one run shows every problem', async () => {
    const file = await writeConfig(
      [
        'upstreams:',
        '  users:',
        '    targets:',
        '      - url: http://127.0.0.1:9002',
        '        weight: 0',
        '    hash_on: ip',
        '    health_check:',
        '      interval: 1s',
        '      timeout: 2s',
        '      healthy_threshold: 0',
        'routes:',
        '  - path: /u/*',
        '    upstream: nope',
        '',
      ].join('\n'),
    );
    const { code, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 1);
    const lines = stderr
      .trimEnd()
      .split('\n')
      .map((l) => l.slice(file.length));
    assert.deepEqual(lines, [
      ':5:9: upstreams.users.targets[0].weight: must be an integer 1–1000, got 0',
      ':6:5: upstreams.users.hash_on: only applies to balance: hash (balance is least_request)',
      ':9:7: upstreams.users.health_check.timeout: must be shorter than interval',
      ':10:7: upstreams.users.health_check.healthy_threshold: must be an integer 1–100, got 0',
      ':13:5: routes[0].upstream: unknown upstream "nope" (defined: users)',
    ]);
  });

  test('expect_status may be a bare number (YAML reads 200 as one)', async () => {
    const file = await writeConfig(`${POOL}    health_check:\n      expect_status: 204\n${ROUTE}`);
    const { code, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 0, stderr);
  });
});
