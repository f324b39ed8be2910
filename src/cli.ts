#!/usr/bin/env node
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createGateway } from './gateway.js';
import { writeDevCertificates } from './dev-cert.js';
import { DevTokenError, parseClaim, signDevToken } from './dev-token.js';
import { loadEntry } from './entry-loader.js';
import { adminTargetOf, requestReload } from './reload-command.js';
import { parseDuration } from './shared/config/duration.js';
import { ConfigError } from './shared/config/errors.js';
import { exitWith, OperatorError } from './shared/errors.js';

const HELP = `portico — an API gateway for Node.js

Usage:
  portico [run] [--config FILE]    start the gateway in the foreground (primary + workers)
  portico check [--config FILE] [--entry JS]
                                   validate a config: exit 0, or print every problem and exit 1
  portico token [--config FILE] [--entry JS] [--sub SUB] [--ttl 1h] [--claim k=v ...]
                                   print a dev JWT signed with the config's auth.secret
  portico cert [--dir ./certs] [--host localhost ...]
                                   write a local dev CA (kept if there) and a certificate
                                   for the hosts, with openssl (see README "TLS")
  portico reload [--config FILE | --admin URL] [--entry JS]
                                   ask the running instance to reload its config file
                                   (POST /admin/reload); exit 0 when it runs the file's config
  portico --help                   show this help
  portico --version                print the version

Options:
  -c, --config FILE   config file (default: $PORTICO_CONFIG, else ./config.yaml; with
                      --entry, the file the entry names)
  --entry JS          your entry file (the one you start with node): it is loaded, not
                      started, so the middleware and verifiers it registers are known
                      (check, token)
  --admin URL         the instance's admin API (reload; default: admin.host and admin.port
                      of the config; a token comes from PORTICO_ADMIN_TOKEN, else admin.token)
  --sub SUB           token subject (token; default: dev-user)
  --ttl DURATION      token lifetime, e.g. 15m, 1h (token; default: 1h)
  --claim KEY=VALUE   extra claim, repeatable; VALUE is parsed as JSON when it is JSON (token)
  --dir DIR           where cert writes (default: ./certs)
  --host NAME         a DNS name or IP the certificate is for, repeatable (cert; default:
                      localhost, 127.0.0.1 and ::1)

Signals: SIGTERM or SIGINT drains in-flight requests (server.drain_timeout), then exits 0;
SIGHUP reloads the config file.
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

/** A command line the CLI cannot run. */
class UsageError extends OperatorError {
  constructor(message: string, options?: ErrorOptions & { helpHint?: boolean }) {
    super('PORTICO_ERR_USAGE', message, {
      ...options,
      lines:
        options?.helpHint === false
          ? [`portico: ${message}`]
          : [`portico: ${message}`, 'Run "portico --help" for usage.'],
    });
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  const command = positionals[0] ?? 'run';
  if (positionals.length > 1 || !['run', 'check', 'token', 'reload', 'cert'].includes(command)) {
    throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  }
  if ((values.dir !== undefined || values.host !== undefined) && command !== 'cert')
    throw new UsageError('--dir and --host are for cert');
  if (command === 'cert')
    return devCert(values.dir ?? './certs', values.host ?? ['localhost', '127.0.0.1', '::1']);
  if (values.entry !== undefined && command === 'run') {
    throw new UsageError('--entry is for check, token and reload; start your entry with node', {
      helpHint: false,
    });
  }
  if (values.admin !== undefined && command !== 'reload') throw new UsageError('--admin is for reload');
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
  return runCommand(command, values, file, origin).catch((err: unknown) => {
    throw withOrigin(err, origin);
  });
}

async function runCommand(
  command: string,
  values: ReturnType<typeof parse>['values'],
  file: string,
  origin: ConfigOrigin,
): Promise<number> {
  if (command === 'run') {
    await createGateway(file).start();
    // Workers keep running on their server; the primary returns here after the drain.
    return cluster.isPrimary ? 0 : -1;
  }
  const adminToken = process.env.PORTICO_ADMIN_TOKEN || undefined;
  if (command === 'reload' && values.admin !== undefined) {
    process.stdout.write(`${await requestReload({ url: values.admin, token: adminToken })}\n`);
    return 0;
  }
  const gateway = values.entry === undefined ? createGateway(file) : await loadEntry(values.entry);
  const config = await gateway.check(origin === 'entry' ? undefined : file);
  if (command === 'reload') {
    const target = adminTargetOf(config.admin);
    process.stdout.write(`${await requestReload({ url: target.url, token: adminToken ?? target.token })}\n`);
    return 0;
  }
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
}

/** `portico cert`: the files, and the config lines that serve them. */
function devCert(dir: string, hosts: string[]): number {
  const files = writeDevCertificates(dir, hosts);
  process.stdout.write(
    [
      `${files.newCa ? 'wrote' : 'kept'} CA:  ${files.ca} (trust it in your client: curl --cacert ${files.ca})`,
      `wrote certificate: ${files.cert} (key ${files.key}), valid 30 days, for ${hosts.join(', ')}`,
      'serve it with (paths are relative to the config file; these are absolute):',
      'server:',
      '  tls:',
      `    certificates: [{ cert: ${files.cert}, key: ${files.key} }]`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** A config file that is not there: the line also says where its path came from. */
function withOrigin(err: unknown, origin: ConfigOrigin): unknown {
  if (!(err instanceof ConfigError) || (err.cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') {
    return err;
  }
  return new ConfigError(
    err.lines.map((line) => `${line} (${ORIGIN_HINT[origin]})`),
    { cause: err.cause, code: err.code },
  );
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string', short: 'c' },
        entry: { type: 'string' },
        admin: { type: 'string' },
        sub: { type: 'string' },
        ttl: { type: 'string' },
        claim: { type: 'string', multiple: true },
        dir: { type: 'string' },
        host: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
}

// The one place an error becomes the user's lines and the exit code.
main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, exitWith);
