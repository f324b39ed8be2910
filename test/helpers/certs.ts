import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Real certificates for TLS tests, made by Debian's `openssl` (no network, no fixtures that
 * expire): a CA per test, and leaf certificates it signs for servers and clients.
 */

export const OPENSSL = process.env.OPENSSL ?? 'openssl';

export interface TestCa {
  /** PEM files of the CA certificate and its key. */
  cert: string;
  key: string;
  dir: string;
}

export interface TestCert {
  cert: string;
  key: string;
  /** The serial as `X509Certificate.serialNumber` prints it (upper-case hex). */
  serial: string;
}

export interface CertOptions {
  /** Subject CN; also the first DNS SAN unless `altNames` is given. */
  cn: string;
  /** `DNS:a.test`, `IP:127.0.0.1`, `URI:spiffe://…` entries. */
  altNames?: string[];
  /** Validity from now; negative values make an already expired certificate. */
  days?: number;
  /** `client` adds clientAuth extended key usage; default serverAuth. */
  usage?: 'server' | 'client';
  /** File name stem inside the CA's directory (default: the CN). */
  name?: string;
}

// Four hex digits, as X509Certificate.serialNumber prints them (no padding to guess).
let serials = 0x1000 + Math.floor(Math.random() * 0x4000);

function openssl(args: string[]): void {
  execFileSync(OPENSSL, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A fresh CA (EC P-256) in its own temporary directory; remove it with `removeCa`. */
export function makeCa(cn = 'Portico Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'portico-certs-'));
  const cert = join(dir, 'ca.pem');
  const key = join(dir, 'ca-key.pem');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '30',
    '-subj',
    `/CN=${cn}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key, dir };
}

/** A leaf certificate signed by `ca`, with a serial unique in this process. */
export function makeCert(ca: TestCa, options: CertOptions): TestCert {
  const stem = join(ca.dir, options.name ?? options.cn.replace(/[^A-Za-z0-9.-]/g, '_'));
  const key = `${stem}-key.pem`;
  const csr = `${stem}.csr`;
  const cert = `${stem}.pem`;
  const ext = `${stem}.ext`;
  const altNames = options.altNames ?? [`DNS:${options.cn}`];
  const serial = (serials++).toString(16).toUpperCase().padStart(4, '0');
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      `extendedKeyUsage=${options.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(altNames.length > 0 ? [`subjectAltName=${altNames.join(',')}`] : []),
    ].join('\n'),
  );
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${options.cn}`,
  ]);
  const days = options.days ?? 30;
  if (days > 0) {
    openssl([
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      `0x${serial}`,
      '-days',
      String(days),
      '-extfile',
      ext,
      '-out',
      cert,
    ]);
  } else {
    // `x509 -days` takes no negative value; `openssl ca` sets explicit dates (an expired one).
    const db = `${stem}.index`;
    writeFileSync(db, '');
    writeFileSync(`${stem}.serial`, `${serial}\n`);
    writeFileSync(
      `${stem}.cnf`,
      [
        '[ca]',
        'default_ca=test',
        '[test]',
        `database=${db}`,
        `serial=${stem}.serial`,
        `new_certs_dir=${ca.dir}`,
        'default_md=sha256',
        'policy=any',
        'unique_subject=no',
        '[any]',
        'commonName=supplied',
      ].join('\n'),
    );
    openssl([
      'ca',
      '-batch',
      '-config',
      `${stem}.cnf`,
      '-in',
      csr,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200102000000Z',
      '-extfile',
      ext,
      '-out',
      cert,
      '-notext',
    ]);
  }
  return { cert, key, serial };
}

export function removeCa(ca: TestCa): void {
  rmSync(ca.dir, { recursive: true, force: true });
}
