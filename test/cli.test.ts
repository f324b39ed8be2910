import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, writeConfig } from './helpers/gateway.js';

const ARTICLE = fileURLToPath(new URL('../../test/fixtures/article-config.yaml', import.meta.url));

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
    const file = await writeConfig('routes:\n  - path: /a\n    target: http://h\n    middleware: [auth]\n');
    const { code, stderr } = await runCli(['--config', file]);
    assert.equal(code, 1);
    assert.match(stderr, /routes\[0\]\.middleware\[0\]: middleware "auth" is not available yet/);
  });

  test('PORTICO_CONFIG sets the default config file', async () => {
    const file = await writeConfig({ routes: [{ path: '/a', target: 'http://127.0.0.1:1' }] });
    assert.equal((await runCli(['check'], { PORTICO_CONFIG: file })).code, 0);
    const missing = await runCli(['check'], { PORTICO_CONFIG: '/nonexistent/portico.yaml' });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\/nonexistent\/portico\.yaml: cannot read config/);
  });

  test("the reference article's config is accepted except for built-ins not implemented yet", async () => {
    const { stderr } = await runCli(['check', '--config', ARTICLE]);
    const lines = stderr.trim().split('\n').filter(Boolean);
    for (const line of lines) assert.match(line, /is not available yet/);
  });

  test('unknown commands and flags exit 2', async () => {
    assert.equal((await runCli(['frobnicate'])).code, 2);
    assert.equal((await runCli(['--frob'])).code, 2);
  });
});
