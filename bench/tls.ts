/*
 * The TLS side of the bench (issue 15's `portico-bare-tls`, `portico-bare-h2`, nginx with
 * TLS): one CA and one server certificate for 127.0.0.1/localhost per run, made with
 * test/helpers/certs.ts (Debian's openssl), and a probe of whether the gateway under test
 * serves `server.tls` at all (a checkout from before issue 15 does not: its TLS targets are
 * skipped with a notice instead of failing the run).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { makeCa, makeCert, OPENSSL, removeCa } from '../test/helpers/certs.js';
import { onExit } from './processes.js';

export interface BenchTls {
  cert: string;
  key: string;
  /** PEM text of the CA, for clients that verify. */
  caPem: string;
}

let made: { tls: BenchTls } | { error: string } | undefined;

/** The run's certificate (made on first use), or why there is none. */
export function benchTls(): { tls: BenchTls } | { error: string } {
  if (made !== undefined) return made;
  if (spawnSync(OPENSSL, ['version'], { timeout: 5_000 }).status !== 0) {
    made = { error: 'openssl is not installed (Debian: apt-get install openssl)' };
    return made;
  }
  const ca = makeCa('Portico Bench CA');
  onExit(() => removeCa(ca));
  const leaf = makeCert(ca, { cn: 'localhost', altNames: ['DNS:localhost', 'IP:127.0.0.1'] });
  made = { tls: { cert: leaf.cert, key: leaf.key, caPem: readFileSync(ca.cert, 'utf8') } };
  return made;
}

/** Issue 15's `server.tls` section for the bench certificate. */
export const serverTls = (tls: BenchTls, http2: boolean) => ({
  certificates: [{ cert: tls.cert, key: tls.key }],
  http2,
});

const probed = new Map<string, string | undefined>();

/**
 * Why `cli` cannot serve the bench's TLS targets, or undefined if it can: `portico check` on
 * a config with `server.tls` (http2 on) must pass.
 */
export function gatewayTlsProblem(cli: string): string | undefined {
  if (probed.has(cli)) return probed.get(cli);
  const certs = benchTls();
  let problem: string | undefined;
  if ('error' in certs) problem = certs.error;
  else {
    const dir = mkdtempSync(join(tmpdir(), 'portico-bench-tls-'));
    try {
      const file = join(dir, 'config.yaml');
      writeFileSync(
        file,
        stringify({
          server: { port: 8443, host: '127.0.0.1', workers: 1, tls: serverTls(certs.tls, true) },
          routes: [{ path: '/bench', target: 'http://127.0.0.1:9' }],
        }),
      );
      const check = spawnSync(process.execPath, [cli, 'check', '--config', file], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      if (check.status !== 0) {
        const first = `${check.stderr}${check.stdout}`.trim().split('\n')[0] ?? '';
        problem = `this gateway does not accept server.tls (portico check: ${first})`;
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  probed.set(cli, problem);
  return problem;
}
