import type { Plan } from './types.js';

/** One certificate the gateway presents: a series of `portico_tls_certificate_expiry_timestamp_seconds`. */
export interface TlsCertificateEntry {
  /** The certificate's first DNS SAN, else its CN. */
  name: string;
  /** The config key naming it: `server.tls.certificates[0]`, `upstreams.<name>.tls`. */
  source: string;
  /** Its file (absolute path), for logs. */
  file: string;
  /** `notAfter`, epoch milliseconds. */
  notAfter: number;
}

/**
 * Every certificate of the plan the gateway presents, for the expiry metric and warning. The
 * edge's served certificates; upstream client certificates are to be added here
 * (`source: upstreams.<name>.tls`) where the plan carries them.
 */
export function tlsCertificateEntries(plan: Plan): TlsCertificateEntry[] {
  return (plan.serverTls?.certificates ?? []).map((cert) => ({
    name: cert.name,
    source: cert.source,
    file: cert.certFile,
    notAfter: cert.info.notAfter,
  }));
}
