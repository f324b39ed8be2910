/*
 * Failed TLS handshakes, counted by a few stable reasons (the `reason` label of
 * `portico_tls_handshake_errors_total`): OpenSSL's own codes are many and change between
 * versions.
 */

export const HANDSHAKE_ERROR_REASONS = [
  'protocol_version',
  'no_client_certificate',
  'bad_client_certificate',
  'plain_http',
  'other',
] as const;
export type HandshakeErrorReason = (typeof HANDSHAKE_ERROR_REASONS)[number];

const counts = new Map<HandshakeErrorReason, number>(HANDSHAKE_ERROR_REASONS.map((r) => [r, 0]));

export function handshakeErrorReason(err: NodeJS.ErrnoException): HandshakeErrorReason {
  const code = `${err.code ?? ''} ${err.message}`.toUpperCase();
  if (/UNSUPPORTED_PROTOCOL|WRONG_VERSION|VERSION_TOO_LOW|PROTOCOL_VERSION/.test(code))
    return 'protocol_version';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/.test(code)) return 'no_client_certificate';
  if (/CERTIFICATE|UNKNOWN_CA|CERT_/.test(code)) return 'bad_client_certificate';
  if (/HTTP_REQUEST/.test(code)) return 'plain_http';
  return 'other';
}

/** The server's `tlsClientError` listener. */
export function countHandshakeError(err: NodeJS.ErrnoException): HandshakeErrorReason {
  const reason = handshakeErrorReason(err);
  countHandshakeFailure(reason);
  return reason;
}

/** A handshake the edge itself refused (a client certificate `require` did not accept). */
export function countHandshakeFailure(reason: HandshakeErrorReason): void {
  counts.set(reason, (counts.get(reason) ?? 0) + 1);
}

/** Counts since the worker started, every reason present (so `rate()` sees the first error). */
export function handshakeErrorCounts(): ReadonlyMap<HandshakeErrorReason, number> {
  return counts;
}
