import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { type CertificateInfo, certificateInfo } from '../../shared/config/tls-files.js';

/** A client certificate the handshake verified against `server.tls.client_ca`. */
export interface ClientCertificate extends CertificateInfo {
  /** The `URI:` SAN entries without their prefix (SPIFFE ids and the like). */
  uris: string[];
}

// Per connection, not per request: a keep-alive connection (or an h2 session) sends many
// requests with one certificate. `null`: none, or not verified.
const CERT = Symbol('portico.clientCert');
type Carrier = TLSSocket & { [CERT]?: ClientCertificate | null };

/** The verified client certificate of the request's connection, or `undefined`. */
export function verifiedClientCert(socket: TLSSocket): ClientCertificate | undefined {
  const carrier = socket as Carrier;
  let cert = carrier[CERT];
  if (cert === undefined) {
    const x509 = socket.authorized ? socket.getPeerX509Certificate() : undefined;
    if (x509 === undefined) {
      cert = null;
    } else {
      const info = certificateInfo(x509);
      cert = {
        ...info,
        uris: info.altNames.filter((n) => n.startsWith('URI:')).map((n) => n.slice(4)),
      };
    }
    carrier[CERT] = cert;
  }
  return cert ?? undefined;
}

/** The headers `forward_client_cert` sends upstream (lower-case, as Node keeps them). */
export const CLIENT_CERT_HEADERS = {
  subject: 'x-client-cert-subject',
  uri: 'x-client-cert-uri',
  fingerprint: 'x-client-cert-fingerprint',
} as const;

// The header values of a certificate, made once per connection with it.
const headerValues = new WeakMap<ClientCertificate, [string, string, string]>();

/** Header values carry visible ASCII only: anything else in a subject becomes `?`. */
const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?');

export function setClientCertHeaders(headers: IncomingHttpHeaders, cert: ClientCertificate): void {
  let values = headerValues.get(cert);
  if (values === undefined) {
    values = [
      printable(cert.subject),
      printable(cert.uris.join(',')),
      // Lower-case hex without colons, as `sha256sum` and Envoy's XFCC `Hash=` print it.
      cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    ];
    headerValues.set(cert, values);
  }
  headers[CLIENT_CERT_HEADERS.subject] = values[0];
  if (values[1] !== '') headers[CLIENT_CERT_HEADERS.uri] = values[1];
  headers[CLIENT_CERT_HEADERS.fingerprint] = values[2];
}

/**
 * Deletes every `X-Client-Cert-*` field a client sent, whatever TLS is configured: an
 * upstream that reads them must only ever see the gateway's. Looks at the raw names (one
 * length and char test each in the usual case), so nothing is allocated when there is none.
 */
export function stripClientCertHeaders(headers: IncomingHttpHeaders, raw: string[]): void {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    // 'x-client-cert-' is 14 characters; `| 32` lower-cases an ASCII letter.
    if (name.length > 14 && (name.charCodeAt(0) | 32) === 120 && name.charCodeAt(1) === 45) {
      const lower = name.toLowerCase();
      if (lower.startsWith('x-client-cert-')) delete headers[lower];
    }
  }
}
