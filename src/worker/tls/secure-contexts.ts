import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import type { ServerTlsPlan, TlsCertificatePlan } from '../../shared/plan/types.js';

/*
 * The edge's certificates as secure contexts, built once per plan (a handshake only looks
 * one up): the certificate whose DNS SAN matches the client's SNI name, else the first.
 */

/** What a TLS server is given for its default context (and `setSecureContext` on a rotation). */
export function contextOptions(tls: ServerTlsPlan, cert: TlsCertificatePlan): SecureContextOptions {
  return {
    cert: cert.certPem,
    key: cert.keyPem,
    minVersion: tls.minVersion,
    // Client certificates are verified against the configured CAs only, never the system's.
    ...(tls.clientCaPem !== null ? { ca: tls.clientCaPem } : {}),
  };
}

/**
 * The server-level options `client_auth` sets (read by Node per connection). A certificate
 * is never rejected by Node itself: it drops a connection whose certificate does not verify
 * without telling anyone why, so `require` is enforced by the edge server on
 * `secureConnection`, where the reason can be counted.
 */
export function clientAuthOptions(tls: ServerTlsPlan): { requestCert: boolean; rejectUnauthorized: boolean } {
  return { requestCert: tls.clientAuth !== 'none', rejectUnauthorized: false };
}

export interface SniTable {
  /** `undefined`: the server's default context (the first certificate). */
  lookup(servername: string): SecureContext | undefined;
}

export function sniTable(tls: ServerTlsPlan): SniTable {
  const exact = new Map<string, SecureContext>();
  const wildcard = new Map<string, SecureContext>();
  // The first certificate is the default context: it needs no entry, and an earlier
  // certificate wins a name two of them carry.
  tls.certificates.forEach((cert, index) => {
    const context = index === 0 ? undefined : createSecureContext(contextOptions(tls, cert));
    for (const name of cert.dnsNames) {
      const table = name.startsWith('*.') ? wildcard : exact;
      const key = name.startsWith('*.') ? name.slice(2) : name;
      if (!table.has(key)) table.set(key, context as SecureContext);
    }
  });
  return {
    lookup(servername) {
      const name = servername.toLowerCase();
      if (exact.has(name)) return exact.get(name);
      // RFC 6125: `*.example.com` matches exactly one label.
      const dot = name.indexOf('.');
      return dot === -1 ? undefined : wildcard.get(name.slice(dot + 1));
    },
  };
}
