import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DevTokenError } from '../../src/dev-token.js';
import { EntryError } from '../../src/entry-loader.js';
import { createGateway } from '../../src/index.js';
import { ConfigError } from '../../src/shared/config/errors.js';
import { ERRORS, exitReport, GatewayError, OperatorError, PorticoError } from '../../src/shared/errors.js';
import { StartupError } from '../../src/shared/startup-error.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Every `.ts` file under src/, as [path relative to src, text]. */
function sources(): [string, string][] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => [file, readFileSync(join(SRC, file), 'utf8')]);
}

describe('the error table is the home of every error', () => {
  test('every error class in src/ descends from PorticoError, so it carries a table code', () => {
    const bases = new Map<string, string>();
    for (const [, text] of sources()) {
      for (const [, name, base] of text.matchAll(/\bclass\s+(\w+)\s+extends\s+(\w+)/g)) {
        bases.set(name as string, base as string);
      }
    }
    const strays: string[] = [];
    for (const name of bases.keys()) {
      if (name === 'PorticoError') continue;
      const chain = [name];
      let base = bases.get(name) as string;
      while (base !== 'PorticoError' && bases.has(base)) {
        chain.push(base);
        base = bases.get(base) as string;
      }
      // `base` is now PorticoError, or the first one not declared in src/ (Error, EventEmitter…).
      if (base !== 'PorticoError' && /Error$/.test(base)) strays.push(`${chain.join(' → ')} → ${base}`);
    }
    assert.deepEqual(strays, []);
  });

  test('no HTTP error status is written outside the error table', () => {
    const raw = /(?:writeHead\(\s*|statusCode\s*=\s*|HTTP\/1\.[01] )[45]\d\d/;
    const offenders = sources()
      .filter(([file, text]) => file !== join('shared', 'errors.ts') && raw.test(text))
      .map(([file]) => file);
    assert.deepEqual(offenders, []);
  });

  test('each error that stops a command: its stderr lines, and the exit code from the table', () => {
    const cases: [unknown, string[], number][] = [
      [
        new ConfigError(['a.yaml:1:1: server.port: bad', 'a.yaml:2:1: x: unknown key']),
        ['a.yaml:1:1: server.port: bad', 'a.yaml:2:1: x: unknown key'],
        1,
      ],
      [
        new StartupError('PORTICO_ERR_LISTEN', 'cannot listen on 127.0.0.1:1: permission denied'),
        ['portico: cannot listen on 127.0.0.1:1: permission denied'],
        1,
      ],
      [new DevTokenError('auth.secret is not set'), ['portico token: auth.secret is not set'], 1],
      [
        new EntryError('--entry x.js: cannot load it: nope'),
        ['portico: --entry x.js: cannot load it: nope'],
        1,
      ],
      [
        Object.assign(new Error('EACCES: permission denied, open x'), { code: 'EACCES' }),
        ['portico: EACCES: permission denied, open x'],
        1,
      ],
    ];
    for (const [err, lines, exitCode] of cases) {
      assert.deepEqual(exitReport(err), { lines, exitCode });
      if (err instanceof OperatorError) assert.equal(ERRORS[err.code].exit, exitCode, err.code);
    }
    const bug = exitReport(new TypeError('x is undefined'));
    assert.equal(bug.exitCode, 1);
    assert.match(bug.lines[0] as string, /^portico: TypeError: x is undefined\n\s+at /);
  });

  test('answers and stopping errors carry their kind from the table', () => {
    const answer = new GatewayError('PORTICO_ERR_RATE_LIMITED');
    assert.ok(answer instanceof PorticoError);
    assert.deepEqual(
      [answer.code, answer.status, answer.message],
      ['PORTICO_ERR_RATE_LIMITED', 429, 'rate limit exceeded'],
    );
    for (const [code, entry] of Object.entries(ERRORS)) {
      assert.ok('status' in entry !== 'exit' in entry, `${code}: exactly one of status and exit`);
    }
  });

  test('gateway.check(): an unreadable file and an invalid one are told apart by code', async () => {
    await assert.rejects(createGateway('/nonexistent/portico.yaml').check(), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'PORTICO_ERR_CONFIG_UNREADABLE');
      assert.deepEqual(err.lines, ['/nonexistent/portico.yaml: config file not found']);
      return true;
    });
    await assert.rejects(createGateway({ routes: [], colour: 'red' }).check(), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.code, 'PORTICO_ERR_CONFIG');
      assert.equal(err.exitCode, 1);
      return true;
    });
  });
});
