import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

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

const HOP_BY_HOP_SET: ReadonlySet<string> = new Set(HOP_BY_HOP);
/**
 * Headers a `Connection` value can never remove. Host and the framing headers: without
 * `Transfer-Encoding` or `Content-Length` the upstream request would carry no body.
 */
const NEVER_NOMINATED: ReadonlySet<string> = new Set(['host', 'content-length', 'transfer-encoding']);
/** `Connection` values that name no other header: the fast path of every keep-alive request. */
const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;

/** Headers nominated as hop-by-hop by a `Connection` value, or `undefined` (the usual case). */
function nominatedBy(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined || (typeof connection === 'string' && PLAIN_CONNECTION.test(connection)))
    return undefined;
  const names = new Set<string>();
  for (const token of String(connection).split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && !NEVER_NOMINATED.has(name)) names.add(name);
  }
  return names;
}

/**
 * Deletes the headers a client's `Connection` nominates, in place. It runs before the
 * gateway sets any header of its own (request id, forwarding headers, and later the
 * middleware's claims and trace context), so a nominated name can never remove one of
 * those; `Connection: x-request-id` only drops the client's own value. The fixed hop-by-hop names
 * are left for `outgoingHeaders` to skip: deleting keys from `req.headers` on every request
 * would push the object into V8's slow dictionary mode.
 */
export function stripNominated(headers: IncomingHttpHeaders): void {
  const nominated = nominatedBy(headers.connection);
  if (nominated !== undefined) for (const name of nominated) delete headers[name];
}

/**
 * The request headers to send upstream as a flat `[name, value, …]` list, which
 * `http.request` serialises without copying them through `setHeader`: everything except
 * the hop-by-hop headers. A body without `Content-Length` is re-framed as chunked on the
 * upstream hop.
 */
export function outgoingHeaders(headers: IncomingHttpHeaders): string[] {
  const list: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (HOP_BY_HOP_SET.has(name)) {
      if (name === 'transfer-encoding') list.push(name, 'chunked');
      continue;
    }
    if (typeof value === 'string') list.push(name, value);
    else for (const item of value) list.push(name, item);
  }
  return list;
}

/** Copies an upstream response's end-to-end headers onto the client response. */
export function copyResponseHeaders(res: ServerResponse, headers: IncomingHttpHeaders): void {
  const nominated = nominatedBy(headers.connection);
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP_SET.has(name) || nominated?.has(name)) continue;
    res.setHeader(name, value);
  }
}

/**
 * Deletes hop-by-hop headers, including every header named in `Connection`, in place. For
 * upgrade requests, which http-proxy-3 forwards with `req.headers` as they are; plain HTTP
 * uses `stripNominated` and `outgoingHeaders` instead.
 */
export function stripHopByHop(headers: IncomingHttpHeaders): void {
  stripNominated(headers);
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) delete headers[name];
  }
}

/**
 * Sets `X-Forwarded-For`, `-Proto` and `-Host`. A trusted proxy's values are kept and the
 * peer is appended to XFF; from anyone else they are replaced, and `Forwarded` is dropped.
 * `X-Real-IP` is always the client address as the gateway determined it: upstreams that
 * read it would otherwise believe whatever a client wrote there.
 */
export function setForwardedHeaders(
  headers: IncomingHttpHeaders,
  peer: string,
  proto: 'http' | 'https',
  trustedPeer: boolean,
  clientIp: string,
): void {
  const host = headers.host;
  headers['x-real-ip'] = clientIp;
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
