#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGateway } from './gateway.js';
import { DevTokenError, parseClaim, signDevToken } from './dev-token.js';
import { EntryError, loadEntry } from './entry-loader.js';
import { parseDuration } from './shared/config/duration.js';
import { ConfigError } from './shared/config/errors.js';

const HELP = `portico — an API gateway for Node.js

Usage:
  portico [run] [--config FILE]    start the gateway in the foreground (primary + workers)
  portico check [--config FILE] [--entry JS]
                                   validate a config: exit 0, or print every problem and exit 1
  portico token [--config FILE] [--entry JS] [--sub SUB] [--ttl 1h] [--claim k=v ...]
                                   print a dev JWT signed with the config's auth.secret
  portico --help                   show this help
  portico --version                print the version

Options:
  -c, --config FILE   config file (default: $PORTICO_CONFIG, else ./config.yaml; with
                      --entry, the file the entry names)
  --entry JS          your entry file (the one you start with node): it is loaded, not
                      started, so the middleware and verifiers it registers are known
                      (check, token)
  --sub SUB           token subject (token; default: dev-user)
  --ttl DURATION      token lifetime, e.g. 15m, 1h (token; default: 1h)
  --claim KEY=VALUE   extra claim, repeatable; VALUE is parsed as JSON when it is JSON (token)

Signals: SIGTERM or SIGINT drains in-flight requests (server.drain_timeout), then exits 0;
SIGHUP is logged and ignored.
Docs: README.md (config reference, middleware API).`;

/** Where the config path came from, so "not found" can say which setting to fix. */
type ConfigOrigin = '--config' | 'PORTICO_CONFIG' | 'default' | 'entry';

const ORIGIN_HINT: Record<ConfigOrigin, string> = {
  '--config': 'given by --config',
  PORTICO_CONFIG: 'given by PORTICO_CONFIG',
  default: 'the default: no --config given and PORTICO_CONFIG is not set',
  entry: 'named by the --entry file',
};

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
  if (values.entry !== undefined && command === 'run') {
    process.stderr.write('portico: --entry is for check and token; start your entry with node\n');
    return 2;
  }
  // Set but empty counts as unset, as in a shell's `PORTICO_CONFIG= portico check`.
  const fromEnv = process.env.PORTICO_CONFIG || undefined;
  const origin: ConfigOrigin =
    values.config !== undefined
      ? '--config'
      : values.entry !== undefined
        ? 'entry'
        : fromEnv !== undefined
          ? 'PORTICO_CONFIG'
          : 'default';
  const file = values.config ?? fromEnv ?? './config.yaml';
  try {
    if (command === 'run') {
      await createGateway(file).start();
      // Workers keep running on their server; the primary returns here after the drain.
      return cluster.isPrimary ? 0 : -1;
    }
    const gateway = values.entry === undefined ? createGateway(file) : await loadEntry(values.entry);
    const config = await gateway.check(origin === 'entry' ? undefined : file);
    if (command === 'check') {
      process.stdout.write(
        `${origin === 'entry' ? values.entry : file}: OK (${config.routes.length} routes)\n`,
      );
      return 0;
    }
    const ttlMs = parseDuration(values.ttl ?? '1h');
    if (ttlMs === undefined) throw new DevTokenError(`--ttl: invalid duration "${values.ttl}"`);
    const claims = Object.fromEntries((values.claim ?? []).map(parseClaim));
    const token = await signDevToken(config, {
      sub: values.sub ?? 'dev-user',
      ttlSeconds: Math.ceil(ttlMs / 1000),
      claims,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      const notFound = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
      const lines = notFound ? err.lines.map((l) => `${l} (${ORIGIN_HINT[origin]})`) : err.lines;
      process.stderr.write(`${lines.join('\n')}\n`);
    } else if (err instanceof DevTokenError) process.stderr.write(`portico token: ${err.message}\n`);
    else if (err instanceof EntryError) process.stderr.write(`portico: ${err.message}\n`);
    else throw err;
    return 1;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      entry: { type: 'string' },
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
    process.stderr.write(`${lastResort(err)}\n`);
    process.exit(1);
  },
);

/**
 * What reaches here was not handled on purpose. An error that names itself with a `code`
 * (a system error such as EADDRINUSE, or a PORTICO_ERR_*) is expected in operation: one
 * line. Anything else is a bug, and its stack is what a bug report needs.
 */
function lastResort(err: unknown): string {
  if (err instanceof ConfigError) return err.lines.join('\n');
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof Error && typeof code === 'string') return `portico: ${err.message}`;
  return `portico: ${(err as Error | null)?.stack ?? String(err)}`;
}
