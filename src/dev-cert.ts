import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { OperatorError } from './shared/errors.js';

/*
 * `portico cert`: a local CA and a certificate for development hosts, written by the
 * system's `openssl` (Node can verify certificates but not issue them; no dependency is added
 * for a dev helper). The CA is reused when the directory has one, so clients that trust it
 * go on trusting every certificate made after it: run the command again to rotate.
 */

/** Why `portico cert` cannot write (shown as is, after `portico cert: `). */
export class DevCertError extends OperatorError {
  constructor(message: string, options?: ErrorOptions) {
    super('PORTICO_ERR_DEV_CERT', message, { ...options, lines: [`portico cert: ${message}`] });
  }
}

export interface DevCertFiles {
  ca: string;
  cert: string;
  key: string;
  /** True when the CA was made by this run. */
  newCa: boolean;
}

const OPENSSL = process.env.OPENSSL ?? 'openssl';

function openssl(args: string[]): void {
  try {
    execFileSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new DevCertError(`${OPENSSL} not found: install OpenSSL (or set OPENSSL)`);
    throw new DevCertError(
      `openssl ${args[0]} failed: ${e.stderr?.toString().trim().split('\n')[0] ?? e.message}`,
      {
        cause: err,
      },
    );
  }
}

/** Writes `ca.pem`/`ca-key.pem` (unless present) and `<first host>.pem`/`-key.pem` in `dir`. */
export function writeDevCertificates(dir: string, hosts: string[], days = 30): DevCertFiles {
  const out = resolve(dir);
  try {
    mkdirSync(out, { recursive: true });
  } catch (err) {
    throw new DevCertError(`cannot create ${out}: ${(err as NodeJS.ErrnoException).code}`, { cause: err });
  }
  const ca = join(out, 'ca.pem');
  const caKey = join(out, 'ca-key.pem');
  const newCa = !(existsSync(ca) && existsSync(caKey));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  if (newCa) {
    openssl([
      'req',
      '-x509',
      ...ec,
      '-keyout',
      caKey,
      '-out',
      ca,
      '-days',
      '365',
      '-subj',
      '/CN=Portico dev CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const stem = join(out, (hosts[0] as string).replace(/[^A-Za-z0-9.-]/g, '_'));
  const cert = `${stem}.pem`;
  const key = `${stem}-key.pem`;
  const csr = `${stem}.csr`;
  const ext = `${stem}.ext`;
  const san = hosts.map((h) => (isIP(h) !== 0 ? `IP:${h}` : `DNS:${h}`)).join(',');
  writeFileSync(ext, `basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=${san}\n`);
  try {
    openssl(['req', '-new', ...ec, '-keyout', key, '-out', csr, '-subj', `/CN=${hosts[0]}`]);
    const serial = `0x${Date.now().toString(16)}`;
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca,
      '-CAkey',
      caKey,
      '-set_serial',
      serial,
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  return { ca, cert, key, newCa };
}
