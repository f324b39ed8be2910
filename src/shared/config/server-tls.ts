import type { ServerTlsPlan, TlsCertificatePlan } from '../plan/types.js';
import type { ConfigProblem } from './load.js';
import type { Config } from './schema.js';
import type { CertificateInfo, TlsFileReader } from './tls-files.js';

/**
 * Issue 15: reads and checks the files `server.tls` names (through the one `TlsFileReader`
 * of the validation, so they are watched with every other TLS file) and returns what the
 * workers serve: PEM text, never paths. Problems land in `problems` at their key path;
 * returns null without `server.tls`, undefined after a problem.
 */
export function checkServerTls(
  server: Config['server'],
  tls: TlsFileReader,
  problems: ConfigProblem[],
): ServerTlsPlan | null | undefined {
  const section = server.tls;
  if (server.http_redirect_port !== 0) {
    if (section === undefined)
      problems.push({
        path: ['server', 'http_redirect_port'],
        message: 'redirects to HTTPS need server.tls',
      });
    else if (server.http_redirect_port === server.port)
      problems.push({
        path: ['server', 'http_redirect_port'],
        message: `must differ from server.port (${server.port})`,
      });
  }
  if (section === undefined) return null;
  const before = problems.length;
  const certificates: TlsCertificatePlan[] = [];
  section.certificates.forEach((entry, index) => {
    const at = ['server', 'tls', 'certificates', index];
    const pair = tls.keyPair(entry.cert, entry.key, [...at, 'cert'], [...at, 'key']);
    if (pair === undefined) return;
    certificates.push({
      certPem: pair.cert.pem,
      keyPem: pair.key.pem,
      certFile: pair.cert.file,
      source: `server.tls.certificates[${index}]`,
      name: certificateName(pair.info),
      dnsNames: dnsNamesOf(pair.info),
      info: pair.info,
    });
  });
  let clientCaPem: string | null = null;
  if (section.client_ca !== undefined) {
    clientCaPem = tls.caBundle(section.client_ca, ['server', 'tls', 'client_ca'])?.pem ?? null;
  } else if (section.client_auth !== 'none') {
    problems.push({
      path: ['server', 'tls', 'client_auth'],
      message: `client_auth: ${section.client_auth} needs server.tls.client_ca (the CAs client certificates are verified against)`,
    });
  }
  if (section.forward_client_cert && section.client_auth === 'none')
    problems.push({
      path: ['server', 'tls', 'forward_client_cert'],
      message: 'needs client_auth: request or require (no client certificate is asked for)',
    });
  if (problems.length > before) return undefined;
  return {
    certificates,
    minVersion: section.min_version,
    http2: section.http2,
    clientAuth: section.client_auth,
    clientCaPem,
    forwardClientCert: section.forward_client_cert,
  };
}

/** `DNS:` names of a certificate's SAN, lower-case (what SNI names are matched against). */
function dnsNamesOf(info: CertificateInfo): string[] {
  return info.altNames.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4).toLowerCase());
}

/** The metric's `name`: the first DNS SAN, else the subject's CN, else the subject. */
export function certificateName(info: CertificateInfo): string {
  const dns = info.altNames.find((n) => n.startsWith('DNS:'));
  if (dns !== undefined) return dns.slice(4);
  const cn = /(?:^|, )CN=([^,]*)/.exec(info.subject);
  return cn?.[1] ?? info.subject;
}
