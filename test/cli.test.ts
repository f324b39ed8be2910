import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, startGateway, writeConfig } from './helpers/gateway.js';
import { request } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

const ARTICLE = fileURLToPath(new URL('../../test/fixtures/article-config.yaml', import.meta.url));
const COMPOSE_CONFIG = fileURLToPath(new URL('../../deploy/portico.yaml', import.meta.url));

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
    assert.match(missing.stderr, /\/nonexistent\/portico\.yaml: cannot read config/);
  });

  test("the reference article's config passes check", async () => {
    const { code, stdout, stderr } = await runCli(['check', '--config', ARTICLE]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /OK \(1 routes\)/);
  });

  test('unknown commands and flags exit 2', async () => {
    assert.equal((await runCli(['frobnicate'])).code, 2);
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
