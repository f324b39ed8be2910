#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGateway } from './gateway.js';
import { DevTokenError, parseClaim, signDevToken } from './dev-token.js';
import { parseDuration } from './shared/config/duration.js';
import { ConfigError } from './shared/config/errors.js';

const HELP = `portico — an API gateway for Node.js

Usage:
  portico [run] [--config FILE]    start the gateway in the foreground (primary + workers)
  portico check [--config FILE]    validate a config: exit 0, or print every problem and exit 1
  portico token [--config FILE] [--sub SUB] [--ttl 1h] [--claim k=v ...]
                                   print a dev JWT signed with the config's auth.secret
  portico --help                   show this help
  portico --version                print the version

Options:
  -c, --config FILE   config file (default: $PORTICO_CONFIG, else ./config.yaml)
  --sub SUB           token subject (token; default: dev-user)
  --ttl DURATION      token lifetime, e.g. 15m, 1h (token; default: 1h)
  --claim KEY=VALUE   extra claim, repeatable; VALUE is parsed as JSON when it is JSON (token)

Signals: SIGTERM or SIGINT drains in-flight requests (server.drain_timeout), then exits 0;
SIGHUP is logged and ignored.
Docs: README.md (config reference, middleware API).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`portico: ${(err as Error).message}\nRun "portico --help" for usage.\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  if (positionals.length > 1 || !['run', 'check', 'token'].includes(command)) {
    process.stderr.write(
      `portico: unknown command "${positionals.join(' ')}"\nRun "portico --help" for usage.\n`,
    );
    return 2;
  }
  const file = values.config ?? process.env.PORTICO_CONFIG ?? './config.yaml';
  const gateway = createGateway(file);
  if (command === 'token') {
    try {
      const ttlMs = parseDuration(values.ttl ?? '1h');
      if (ttlMs === undefined) throw new DevTokenError(`--ttl: invalid duration "${values.ttl}"`);
      const claims = Object.fromEntries((values.claim ?? []).map(parseClaim));
      const token = await signDevToken(await gateway.check(), {
        sub: values.sub ?? 'dev-user',
        ttlSeconds: Math.ceil(ttlMs / 1000),
        claims,
      });
      process.stdout.write(`${token}\n`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) process.stderr.write(`${err.lines.join('\n')}\n`);
      else if (err instanceof DevTokenError) process.stderr.write(`portico token: ${err.message}\n`);
      else throw err;
      return 1;
    }
  }
  if (command === 'check') {
    try {
      const config = await gateway.check();
      process.stdout.write(`${file}: OK (${config.routes.length} routes)\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.lines.join('\n')}\n`);
      return 1;
    }
  }
  try {
    await gateway.start();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.lines.join('\n')}\n`);
    return 1;
  }
  // Workers keep running on their server; the primary returns here after the drain.
  return cluster.isPrimary ? 0 : -1;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      sub: { type: 'string' },
      ttl: { type: 'string' },
      claim: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`portico: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
