import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { renderConfigReference } from '../src/shared/config/reference.js';
import { runCli, startGateway, writeConfig } from './helpers/gateway.js';
import { request } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

const ARTICLE = fileURLToPath(new URL('../../test/fixtures/article-config.yaml', import.meta.url));
const COMPOSE_CONFIG = fileURLToPath(new URL('../../deploy/portico.yaml', import.meta.url));
const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));

describe('portico CLI', () => {
  test('--help explains every command and flag', async () => {
    const { code, stdout } = await runCli(['--help']);
    assert.equal(code, 0);
    for (const word of ['run', 'check', '--config', 'PORTICO_CONFIG', '--version'])
      assert.ok(stdout.includes(word), word);
  });

  test('check accepts a valid config', async () => {
    const file = await writeConfig({ routes: [{ path: '/a', target: 'http://127.0.0.1:1' }] });
    const { code, stdout } = await runCli(['check', '--config', file]);
    assert.equal(code, 0);
    assert.match(stdout, /OK \(1 routes\)/);
  });

  test('the config docker-compose.yml runs is valid', async () => {
    const { code, stdout, stderr } = await runCli(['check', '--config', COMPOSE_CONFIG]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /OK \(3 routes\)/);
  });

  test('the config docker-compose.sentinel.yml runs is valid', async () => {
    const file = fileURLToPath(new URL('../../deploy/portico-sentinel.yaml', import.meta.url));
    const { code, stdout, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /OK \(3 routes\)/);
  });

  test('check prints every problem, one line each with file and key path, and exits 1', async () => {
    const file = await writeConfig(
      'server:\n  port: 0\n  colour: blue\nroutes:\n  - path: /a\n    target: localhost:9\n',
    );
    const { code, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 1);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 3, stderr);
    assert.ok(lines.every((l) => l.startsWith(`${file}:`)));
    assert.match(stderr, /server\.port: /);
    assert.match(stderr, /server\.colour: unknown key/);
    assert.match(stderr, /routes\[0\]\.target: /);
  });

  test('running with an invalid config exits 1 with the same lines', async () => {
    const file = await writeConfig('routes:\n  - path: /a\n    target: http://h\n    middleware: [tracin]\n');
    const { code, stderr } = await runCli(['--config', file]);
    assert.equal(code, 1);
    assert.match(stderr, /routes\[0\]\.middleware\[0\]: unknown middleware "tracin"/);
  });

  test('PORTICO_CONFIG sets the default config file', async () => {
    const file = await writeConfig({ routes: [{ path: '/a', target: 'http://127.0.0.1:1' }] });
    assert.equal((await runCli(['check'], { PORTICO_CONFIG: file })).code, 0);
    const missing = await runCli(['check'], { PORTICO_CONFIG: '/nonexistent/portico.yaml' });
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      '/nonexistent/portico.yaml: config file not found (given by PORTICO_CONFIG)\n',
    );
  });

  test("the reference article's config passes check", async () => {
    const { code, stdout, stderr } = await runCli(['check', '--config', ARTICLE]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /OK \(1 routes\)/);
  });

  test('unknown commands and flags exit 2', async () => {
    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, 'portico: unknown command "frobnicate"\nRun "portico --help" for usage.\n');
    assert.equal((await runCli(['--frob'])).code, 2);
  });

  test('token prints a JWT the gateway accepts, with --sub, --ttl and --claim', async () => {
    const upstream = await startUpstream();
    const config = {
      auth: {
        secret: 'cli-token-secret-cli-token-secret-1234',
        issuer: 'me',
        audience: 'api',
        forward_claims: { sub: 'X-Sub', role: 'X-Role', n: 'X-N' },
      },
      routes: [{ path: '/*', target: upstream.url, middleware: ['auth'] }],
    };
    const gw = await startGateway(config);
    try {
      const file = await writeConfig(config);
      const { code, stdout, stderr } = await runCli([
        'token',
        '--config',
        file,
        '--sub',
        'alice',
        '--ttl',
        '10m',
        '--claim',
        'role=admin',
        '--claim',
        'n=3',
      ]);
      assert.equal(code, 0, stderr);
      const token = stdout.trim();
      assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
      const payload = JSON.parse(
        Buffer.from(token.split('.')[1] as string, 'base64url').toString(),
      ) as Record<string, number | string>;
      assert.equal((payload.exp as number) - (payload.iat as number), 600);
      assert.equal(payload.n, 3);
      const reply = await request(`${gw.url}/x`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(reply.status, 200);
      const headers = reply.json<{ headers: Record<string, string> }>().headers;
      assert.deepEqual([headers['x-sub'], headers['x-role'], headers['x-n']], ['alice', 'admin', '3']);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });

  test('token refuses clearly when the config has no HS secret', async () => {
    const file = await writeConfig({ routes: [{ path: '/a', target: 'http://127.0.0.1:1' }] });
    const { code, stdout, stderr } = await runCli(['token', '--config', file]);
    assert.equal(code, 1);
    assert.equal(stdout, '');
    assert.match(stderr, /^portico token: auth\.secret is not set/);
  });
});

/** A config error is one line, `file[:line:col]: [key.path: ]reason`, never a stack, for every command. */
describe('portico: bad config files are one line each, for run, check and token', () => {
  const route = 'routes:\n  - path: /a\n    target: http://127.0.0.1:1\n';
  const billionLaughs = [
    'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
    ...'bcdefghi'.split('').map((n, i) => {
      const prev = 'abcdefghi'[i] as string;
      return `${n}: &${n} [${Array(9).fill(`*${prev}`).join(', ')}]`;
    }),
  ].join('\n');

  /** Runs every command on `config`; each must exit 1 with exactly the expected line on stderr. */
  async function expectLine(
    args: string[],
    expected: RegExp,
    env: NodeJS.ProcessEnv = {},
    commands = ['check', 'run', 'token'],
  ) {
    for (const command of commands) {
      const { code, stdout, stderr } = await runCli([command, ...args], env);
      assert.equal(code, 1, `${command}: ${stderr}`);
      assert.equal(stdout, '', command);
      const lines = stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${command}: one line, got:\n${stderr}`);
      assert.match(lines[0] as string, expected, command);
      assert.doesNotMatch(stderr, /\n\s+at |Error:/, `${command}: no stack trace`);
    }
  }

  test('a YAML alias bomb (billion laughs)', async () => {
    const file = await writeConfig(`${billionLaughs}\n${route}`);
    await expectLine(
      ['--config', file],
      /^\S+config\.yaml:2:\d+: YAML aliases expand too far .*billion laughs/,
    );
  });

  test('${PORT} that is not a number, and a value that is YAML syntax', async () => {
    const file = await writeConfig(`server:\n  port: \${PORT}\n  workers: \${WORKERS}\n${route}`);
    const env = { PORT: '8080', WORKERS: '[1, 2' };
    await expectLine(
      ['--config', file],
      /:3:3: server\.workers: must be an integer 1–256 or auto.*\$\{WORKERS\}/,
      env,
    );
    await expectLine(
      ['--config', file],
      /:2:3: server\.port: .*expected number.*\(the value of \$\{PORT\}\)$/,
      { PORT: 'abc', WORKERS: '2' },
    );
  });

  test('an empty file says it is empty', async () => {
    await expectLine(['--config', await writeConfig('')], /config\.yaml: the file is empty$/);
    await expectLine(
      ['--config', await writeConfig('# nothing yet\n')],
      /config\.yaml: the file has no settings/,
    );
  });

  test('a directory, and a file that is not UTF-8', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-test-'));
    await expectLine(['--config', dir], /: is a directory, not a config file$/);
    const latin1 = join(dir, 'latin1.yaml');
    await writeFile(
      latin1,
      Buffer.concat([Buffer.from('routes:\n  - path: /caf'), Buffer.from([0xe9]), Buffer.from('\n')]),
    );
    await expectLine(['--config', latin1], /latin1\.yaml:2:15: the file is not UTF-8 text/);
  });

  test('a missing file says how its path was chosen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-test-'));
    const missing = join(dir, 'nope.yaml');
    await expectLine(['--config', missing], /nope\.yaml: config file not found \(given by --config\)$/);
    await expectLine([], /nope\.yaml: config file not found \(given by PORTICO_CONFIG\)$/, {
      PORTICO_CONFIG: missing,
    });
    // The default is ./config.yaml in the working directory: run where there is none.
    const { code, stderr } = await runCli(['check'], { PORTICO_CONFIG: '' }, { cwd: dir });
    assert.equal(code, 1);
    assert.equal(
      stderr,
      './config.yaml: config file not found (the default: no --config given and PORTICO_CONFIG is not set)\n',
    );
  });

  test('workers: x says "an integer 1–256 or auto"', async () => {
    const file = await writeConfig(`server:\n  workers: x\n${route}`);
    await expectLine(
      ['--config', file],
      /:2:3: server\.workers: must be an integer 1–256 or auto, got x$/,
      {},
      ['check'],
    );
  });

  test('a route that lists CONNECT is refused: the gateway answers CONNECT 405 whatever the routes say', async () => {
    const file = await writeConfig(
      'routes:\n  - path: /tunnel\n    target: http://127.0.0.1:1\n    methods: [GET, connect]\n',
    );
    await expectLine(
      ['--config', file],
      /:4:20: routes\[0\]\.methods\[1\]: CONNECT is never routed: the gateway answers it 405 \(it tunnels nothing\)$/,
      {},
      ['check'],
    );
  });

  test('a number where a duration belongs says "a duration such as 5s", for every duration field', async () => {
    // Every duration field the schema declares (read from the generated reference), each a bare number.
    const paths = renderConfigReference()
      .split('\n')
      .filter((row) => row.includes('| duration |'))
      .map((row) => (/^\| `([^`]+)`/.exec(row) as RegExpExecArray)[1] as string);
    assert.ok(paths.length >= 17, paths.join(', '));
    const config: Record<string, unknown> = {
      routes: [{ path: '/a', target: 'http://127.0.0.1:1' }],
      upstreams: { pool: { targets: [{ url: 'http://127.0.0.1:1' }] } },
    };
    for (const path of paths) {
      let node = config;
      const keys = path.replace('routes[]', 'routes.0').replace('<name>', 'pool').split('.');
      for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
      node[keys.at(-1) as string] = 5;
    }
    const { code, stderr } = await runCli(['check', '--config', await writeConfig(config)]);
    assert.equal(code, 1);
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, paths.length, stderr);
    for (const line of lines)
      assert.match(line, /: expected a duration such as 5s \(a number with a unit: ms, s, m or h\), got 5$/);
  });

  test('an invalid REDIS_URL at start-up is one line, not a stack', async () => {
    const file = await writeConfig(`${route}    middleware: [ratelimit]\n`);
    const { code, stderr } = await runCli(['--config', file], { REDIS_URL: 'localhost:6379' });
    assert.equal(code, 1);
    assert.equal(stderr, 'REDIS_URL must be a redis:// or rediss:// URL, got "localhost:6379"\n');
  });
});

describe('portico check|token --entry: configs that use your registered middleware and verifiers', () => {
  const config = {
    auth: { secret: 'entry-token-secret-entry-token-secret!', issuer: 'me', audience: 'api' },
    routes: [
      { path: '/ordered/*', target: 'http://127.0.0.1:1', middleware: ['first', 'auth'] },
      {
        path: '/custom-auth',
        target: 'http://127.0.0.1:1',
        middleware: ['auth'],
        auth: { type: 'static-tokens', options: { tokens: { 'let-me-in': 'zoe' } } },
      },
    ],
  };

  test('without --entry, check names the unknown middleware and verifier', async () => {
    const { code, stderr } = await runCli(['check', '--config', await writeConfig(config)]);
    assert.equal(code, 1);
    assert.match(stderr, /routes\[0\]\.middleware\[0\]: unknown middleware "first"/);
    assert.match(stderr, /routes\[1\]\.auth\.type: .*static-tokens/);
  });

  test('with --entry, check loads the entry without starting it and passes', async () => {
    const file = await writeConfig({ ...config, server: { port: 1 } });
    const { code, stdout, stderr } = await runCli(['check', '--entry', ENTRY, '--config', file]);
    assert.equal(code, 0, stderr);
    // Started, it would log "portico ready" (or fail to bind port 1) and never exit.
    assert.equal(stdout, `${file}: OK (2 routes)\n`);
    assert.equal(stderr, '');
  });

  test('token --entry signs for a config with a custom-verifier route; the gateway accepts it', async () => {
    const upstream = await startUpstream();
    const routes = config.routes.map((r) => ({ ...r, target: upstream.url }));
    const gw = await startGateway({ ...config, routes }, { entry: ENTRY });
    try {
      const file = await writeConfig({ ...config, routes });
      const { code, stdout, stderr } = await runCli([
        'token',
        '--entry',
        ENTRY,
        '--config',
        file,
        '--sub',
        'ann',
      ]);
      assert.equal(code, 0, stderr);
      const hs = await request(`${gw.url}/ordered/x`, {
        headers: { authorization: `Bearer ${stdout.trim()}` },
      });
      assert.equal(hs.status, 200, hs.body);
      const custom = await request(`${gw.url}/custom-auth`, {
        headers: { authorization: 'Bearer let-me-in' },
      });
      assert.equal(custom.status, 200, custom.body);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });

  test('an entry that cannot load, or never calls start(), is one clear line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-test-'));
    const file = await writeConfig(config);
    const broken = await runCli(['check', '--entry', join(dir, 'missing.js'), '--config', file]);
    assert.equal(broken.code, 1);
    assert.match(broken.stderr, /^portico: --entry \S+missing\.js: cannot load it: .*\n$/);
    const idle = join(dir, 'idle.mjs');
    await writeFile(idle, 'export const nothing = 1;\n');
    const noStart = await runCli(['check', '--entry', idle, '--config', file]);
    assert.equal(noStart.code, 1);
    assert.match(
      noStart.stderr,
      /^portico: --entry \S+idle\.mjs: the file ran to its end without calling start\(\) on a gateway\n$/,
    );
    assert.equal((await runCli(['run', '--entry', idle])).code, 2, 'run takes no --entry');
  });
});
