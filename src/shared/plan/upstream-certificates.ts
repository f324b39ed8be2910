import type { CertificateInfo } from '../config/tls-files.js';
import type { UpstreamPlan } from './types.js';

/*
 * Issue 15: the upstream client certificates of a plan, as the entries of
 * `portico_tls_certificate_expiry_timestamp_seconds{name,source}` (served certificates are
 * the edge's entries of the same gauge).
 */

/** One certificate as the expiry gauge shows it. */
export interface CertificateExpiry {
  /** The first DNS SAN, else the subject's CN. */
  name: string;
  /** The config key that names it: `upstreams.<name>.tls`. */
  source: string;
  /** Epoch milliseconds. */
  notAfter: number;
}

/** How a certificate is named in the gauge: its first DNS SAN, else its CN, else its subject. */
export function certificateName(info: Pick<CertificateInfo, 'altNames' | 'subject'>): string {
  const dns = info.altNames.find((name) => name.startsWith('DNS:'));
  if (dns !== undefined) return dns.slice(4);
  return /(?:^|, )CN=([^,]*)/.exec(info.subject)?.[1] ?? info.subject;
}

/** Every client certificate the plan's upstreams present (implicit pools have none). */
export function upstreamCertificateExpiries(upstreams: readonly UpstreamPlan[]): CertificateExpiry[] {
  const out: CertificateExpiry[] = [];
  for (const upstream of upstreams) {
    const info = upstream.tls.certInfo;
    if (info === null) continue;
    out.push({ name: info.name, source: `upstreams.${upstream.name}.tls`, notAfter: info.notAfter });
  }
  return out;
}
