import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import type { UpstreamTlsPlan } from './plan/types.js';

/*
 * Issue 15: the TLS options of a connection to an upstream endpoint, the same for the
 * workers' keep-alive agents (requests and WebSocket upgrades) and the primary's health
 * checks, so a check passes only where traffic would too. Verification is on unless
 * `insecure_skip_verify`: Envoy's default of trusting anyone without a CA is the trap the
 * issue names.
 */

/** Why a TLS connection to an upstream failed, as the metric's `reason` label. */
export type UpstreamTlsReason =
  'unknown_ca' | 'name_mismatch' | 'expired' | 'bad_certificate' | 'handshake_refused';

/** OpenSSL's verification codes, as Node reports them on `err.code`. */
const VERIFY_CODES: Readonly<Record<string, UpstreamTlsReason>> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown_ca',
  CERT_UNTRUSTED: 'unknown_ca',
  CERT_REJECTED: 'unknown_ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'name_mismatch',
  CERT_HAS_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'expired',
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: 'bad_certificate',
  CERT_SIGNATURE_FAILURE: 'bad_certificate',
  CERT_REVOKED: 'bad_certificate',
  INVALID_CA: 'bad_certificate',
  INVALID_PURPOSE: 'bad_certificate',
  PATH_LENGTH_EXCEEDED: 'bad_certificate',
  ERROR_IN_CERT_NOT_BEFORE_FIELD: 'bad_certificate',
  ERROR_IN_CERT_NOT_AFTER_FIELD: 'bad_certificate',
};

/**
 * The TLS failure `err` is, or undefined for any other error. `ERR_SSL_*` codes (TLS 1.3) and
 * `EPROTO` with OpenSSL's text (TLS 1.2) are alerts and handshake errors: the upstream refused
 * the handshake (no or an untrusted client certificate, no common protocol or cipher).
 */
export function upstreamTlsReason(err: { code?: unknown; message?: unknown }): UpstreamTlsReason | undefined {
  const code = err.code;
  if (typeof code !== 'string') return undefined;
  const known = VERIFY_CODES[code];
  if (known !== undefined) return known;
  if (code.startsWith('ERR_SSL_')) return 'handshake_refused';
  if (code === 'EPROTO' && typeof err.message === 'string' && err.message.includes('SSL routines'))
    return 'handshake_refused';
  return undefined;
}

/** The failure in words, for logs and health-check reasons. */
export function describeUpstreamTlsFailure(reason: UpstreamTlsReason, err: { message: string }): string {
  const what: Record<UpstreamTlsReason, string> = {
    unknown_ca: 'TLS certificate not trusted (not signed by a CA of tls.ca, or by a default CA without it)',
    name_mismatch: 'TLS certificate does not name the host (see tls.servername)',
    expired: 'TLS certificate expired or not yet valid',
    bad_certificate: 'TLS certificate invalid',
    handshake_refused: 'TLS handshake refused by the upstream (a client certificate missing or not trusted?)',
  };
  return `${what[reason]}: ${err.message}`;
}

/**
 * Options for connections to an `https:` endpoint of target name `targetName` (the target's
 * hostname; undefined for an IP target, whose certificate must then name the IP).
 */
export function upstreamTlsOptions(tls: UpstreamTlsPlan, targetName: string | undefined): ConnectionOptions {
  const name = tls.servername ?? targetName;
  const options: ConnectionOptions = {
    rejectUnauthorized: !tls.insecureSkipVerify,
    // `''` stops Node from deriving SNI from the request's Host header (the client's): no SNI
    // is sent for an IP, and the certificate is checked against the address connected to.
    servername: name === undefined || isIP(name) !== 0 ? '' : name,
  };
  if (name !== undefined && isIP(name) !== 0) {
    // A `servername` that is an IP: checked as such, though it is not sent (RFC 6066).
    options.checkServerIdentity = (_host: string, cert: PeerCertificate) => checkServerIdentity(name, cert);
  }
  if (tls.ca !== null) options.ca = tls.ca;
  if (tls.cert !== null && tls.key !== null) {
    options.cert = tls.cert;
    options.key = tls.key;
  }
  return options;
}
