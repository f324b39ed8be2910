import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/shared/config/load.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const registry = new MiddlewareRegistry();

function problems(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfigText(yaml, 'test.yaml', registry, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.lines;
  }
  return [];
}

const minimal = 'routes:\n  - path: /a\n    target: http://127.0.0.1:1\n';

describe('config defaults', () => {
  test('a minimal config gets every documented default', () => {
    const config = parseConfigText(minimal, 'test.yaml', registry, {});
    assert.deepEqual(config.server, {
      port: 8080,
      host: '0.0.0.0',
      workers: 'auto',
      trusted_proxies: [],
      drain_timeout: 10_000,
      max_header_size: 32_768,
      max_headers: 100,
      keep_alive_timeout: 5_000,
      request_timeout: 300_000,
      max_body_size: 0,
      max_connections: 0,
      http_redirect_port: 0,
    });
    assert.deepEqual(config.logging, { format: 'json', level: 'info' });
    assert.deepEqual(config.routes[0], {
      path: '/a',
      target: 'http://127.0.0.1:1',
      middleware: [],
      strip_prefix: false,
    });
  });
});

describe('config problems: one line each, with file, line and key path', () => {
  const table: [name: string, yaml: string, expected: RegExp[]][] = [
    ['unknown top-level key', `${minimal}bogus: 1\n`, [/^test\.yaml:4:1: bogus: unknown key$/]],
    [
      'unknown nested key',
      `server:\n  prot: 80\n${minimal}`,
      [/^test\.yaml:2:3: server\.prot: unknown key$/],
    ],
    ['port out of range', `server:\n  port: 70000\n${minimal}`, [/^test\.yaml:2:\d+: server\.port: .*65535/]],
    ['wrong type', `server:\n  port: "80"\n${minimal}`, [/server\.port: .*expected number/]],
    [
      'target without scheme',
      'routes:\n  - path: /a\n    target: localhost:9002\n',
      [/routes\[0\]\.target: target must use http:\/\/ or https:\/\//],
    ],
    [
      'unknown middleware',
      'routes:\n  - path: /a\n    target: http://h\n    middleware: [logging, tracin]\n',
      [/^test\.yaml:4:\d+: routes\[0\]\.middleware\[1\]: unknown middleware "tracin" \(known: /],
    ],
    [
      'duplicate path+method',
      'routes:\n  - path: /u/:id\n    target: http://h\n  - path: /u/:name\n    methods: [get]\n    target: http://h\n',
      [/routes\[1\]\.path: duplicates routes\[0\] \(\/u\/:name\) for GET/],
    ],
    [
      'bad route path',
      'routes:\n  - path: /a/*/b\n    target: http://h\n',
      [/routes\[0\]\.path: invalid route path/],
    ],
    [
      'strip_prefix on exact route',
      'routes:\n  - path: /a\n    target: http://h\n    strip_prefix: true\n',
      [/routes\[0\]\.strip_prefix: only applies/],
    ],
    [
      'rewrite with unknown param',
      'routes:\n  - path: /a/:id\n    target: http://h\n    rewrite: /b/:name\n',
      [/routes\[0\]\.rewrite: uses ":name"/],
    ],
    [
      'bad duration',
      'routes:\n  - path: /a\n    target: http://h\n    timeout: 5 seconds\n',
      [/routes\[0\]\.timeout: invalid duration/],
    ],
    [
      'bad method',
      'routes:\n  - path: /a\n    target: http://h\n    methods: [FETCH]\n',
      [/routes\[0\]\.methods\[0\]: /],
    ],
    [
      'bad trusted proxy',
      `server:\n  trusted_proxies: [10.0.0.0/33]\n${minimal}`,
      [/server\.trusted_proxies\[0\]: must be an IP address or CIDR/],
    ],
    ['no routes', 'server:\n  port: 1\n', [/routes: /]],
    ['yaml syntax', 'routes: [\n', [/^test\.yaml:\d+:\d+: YAML syntax/]],
    ['bad log level', `logging:\n  level: loud\n${minimal}`, [/logging\.level: /]],
    [
      'otel endpoint with scheme',
      `otel:\n  endpoint: http://localhost:4317\n${minimal}`,
      [/otel\.endpoint: must be host:port/],
    ],
  ];
  for (const [name, yaml, expected] of table) {
    test(name, () => {
      const lines = problems(yaml);
      assert.equal(lines.length, expected.length, lines.join('\n'));
      for (const [i, re] of expected.entries()) assert.match(lines[i] as string, re);
    });
  }

  test('every problem is reported, not just the first', () => {
    const lines = problems('server:\n  port: 0\n  nope: 1\nroutes:\n  - path: x\n    target: ftp://h\n');
    assert.equal(lines.length, 4, lines.join('\n'));
  });
});

describe('environment expansion', () => {
  const yaml = 'routes:\n  - path: /a\n    target: ${TARGET}\nauth:\n  secret: ${SECRET:-fallback}\n';
  test('${VAR} and ${VAR:-default} are expanded', () => {
    const config = parseConfigText(yaml, 'test.yaml', registry, { TARGET: 'http://up:1' });
    assert.equal(config.routes[0]?.target, 'http://up:1');
    assert.equal(config.auth?.secret, 'fallback');
  });
  test('an unset variable without default is an error naming the key', () => {
    assert.deepEqual(
      problems(yaml).map((l) => l.replace(/^test\.yaml:\d+:\d+: /, '')),
      ['routes[0].target: environment variable TARGET is not set and has no default'],
    );
  });
  test('$${ is a literal ${', () => {
    const config = parseConfigText(
      yaml.replace('${SECRET:-fallback}', () => 'a$${b}'),
      'test.yaml',
      registry,
      { TARGET: 'http://h' },
    );
    assert.equal(config.auth?.secret, 'a${b}');
  });
});

describe("the reference article's config", () => {
  const text = readFileSync(new URL('../../../test/fixtures/article-config.yaml', import.meta.url), 'utf8');
  test('loads unchanged, with every middleware it names', () => {
    assert.deepEqual(problems(text), []);
  });
});

describe('typed environment references', () => {
  const yaml =
    'server:\n  port: ${PORT:-8080}\nroutes:\n  - path: /a\n    target: http://h\nauth:\n  secret: "${SECRET}"\n';
  test('an unquoted whole reference takes the type of its value; a quoted one stays a string', () => {
    const config = parseConfigText(yaml, 'test.yaml', registry, { PORT: '9999', SECRET: '12345' });
    assert.equal(config.server.port, 9999);
    assert.equal(config.auth?.secret, '12345');
    assert.equal(parseConfigText(yaml, 'test.yaml', registry, { SECRET: 's' }).server.port, 8080);
  });
  test('a value that is YAML syntax stays text, and the problem names its variable', () => {
    for (const PORT of ['[1, 2', '{a: 1}', 'a: b', '8080 # note', 'abc']) {
      assert.deepEqual(problems(yaml, { PORT, SECRET: 's' }), [
        'test.yaml:2:3: server.port: Invalid input: expected number, received string (the value of ${PORT})',
      ]);
    }
  });
});
