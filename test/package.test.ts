import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startGateway } from './helpers/gateway.js';
import { request } from './helpers/net.js';
import { startUpstream } from './helpers/upstream.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/*
 * What a user gets from `npm pack`: the tarball installed into an empty directory, as a
 * dependency of the user's own project, then `npx portico` and a library entry file.
 * `npm test` has just built dist/, so packing skips the `prepare` build.
 */
describe('the packed package', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portico-pack-'));
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
      cwd: ROOT,
    });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    assert.ok(packed);
    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'my-gateway', private: true }));
    // --prefer-offline: the dependencies are in npm's cache since `npm ci`.
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, packed.filename)], {
      cwd: dir,
      timeout: 170_000,
    });
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('npx portico runs in the installing project: --version and check', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const version = await run('npx', ['--no-install', 'portico', '--version'], { cwd: dir });
    assert.equal(version.stdout.trim(), pkg.version);
    await writeFile(
      join(dir, 'config.yaml'),
      'routes:\n  - path: /users/:id\n    target: http://127.0.0.1:9002\n    middleware: [logging]\n',
    );
    const check = await run('npx', ['--no-install', 'portico', 'check'], { cwd: dir });
    assert.equal(check.stdout.trim(), './config.yaml: OK (1 routes)');
  });

  test('an entry file imports portico, registers middleware and serves (and the dashboard page)', async () => {
    const upstream = await startUpstream();
    const entry = join(dir, 'gateway.mjs');
    await writeFile(
      entry,
      `import { createGateway, contextOf } from 'portico';
await createGateway(process.argv[3])
  .register('hello', (next) => async function hello(req, res) {
    req.headers['x-hello'] = contextOf(req).params.id;
    await next(req, res);
  })
  .start();
`,
    );
    const gateway = await startGateway(
      { routes: [{ path: '/users/:id', target: upstream.url, middleware: ['hello'] }] },
      { entry, workers: 2 },
    );
    try {
      const reply = await request(`${gateway.url}/users/42`);
      assert.equal(reply.status, 200);
      assert.equal(reply.json<{ headers: Record<string, string> }>().headers['x-hello'], '42');
      // The dashboard's files are in the package, served from it by the admin listener.
      const admin = (await gateway.waitFor((r) => r.msg === 'admin listener ready')).url as string;
      for (const path of ['/', '/dashboard.js', '/dashboard.css', '/favicon.svg'])
        assert.equal((await request(`${admin}${path}`)).status, 200, path);
    } finally {
      await gateway.stop();
      await upstream.close();
    }
  });
});
