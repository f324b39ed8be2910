import type { IncomingHttpHeaders } from 'node:http';

// RFC 9110 §7.6.1 plus the de-facto ones (Keep-Alive, Proxy-Connection) and the
// proxy credentials, which are meant for this hop only.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/**
 * Deletes hop-by-hop headers, including every header named in `Connection`, in place.
 * Used in both directions.
 */
export function stripHopByHop(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of String(connection).split(',')) {
      const name = token.trim().toLowerCase();
      // Never let a client use Connection to strip end-to-end headers the gateway relies on.
      if (name !== '' && name !== 'host' && name !== 'content-length') delete headers[name];
    }
  }
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) delete headers[name];
  }
}

/**
 * Sets `X-Forwarded-For`, `-Proto` and `-Host`. A trusted proxy's values are kept and the
 * peer is appended to XFF; from anyone else they are replaced, and `Forwarded` is dropped.
 */
export function setForwardedHeaders(
  headers: IncomingHttpHeaders,
  peer: string,
  proto: 'http' | 'https',
  trustedPeer: boolean,
): void {
  const host = headers.host;
  if (trustedPeer) {
    const xff = headers['x-forwarded-for'];
    headers['x-forwarded-for'] = xff ? `${String(xff)}, ${peer}` : peer;
    if (!headers['x-forwarded-proto']) headers['x-forwarded-proto'] = proto;
    if (!headers['x-forwarded-host'] && host) headers['x-forwarded-host'] = host;
    return;
  }
  headers['x-forwarded-for'] = peer;
  headers['x-forwarded-proto'] = proto;
  if (host) headers['x-forwarded-host'] = host;
  else delete headers['x-forwarded-host'];
  if (headers.forwarded !== undefined) delete headers.forwarded;
}
