import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../shared/errors.js';

const BAD_HOST = new GatewayError('PORTICO_ERR_BAD_HOST');
const TOO_MANY_HEADERS = new GatewayError('PORTICO_ERR_HEADERS_TOO_LARGE');

/**
 * How many `Host` fields the request carries. Node keeps the first of several in
 * `req.headers`, so only the raw list tells; names are compared only at length 4.
 */
function hostCount(raw: string[]): number {
  let count = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && (name === 'host' || name === 'Host' || name.toLowerCase() === 'host')) count++;
  }
  return count;
}

/**
 * Header fields as `max_headers` counts them: an HTTP/2 request's raw list also holds its
 * pseudo-header fields (`:method`, `:path`…), which are its request line, not headers.
 */
function fieldCount(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let fields = raw.length >>> 1;
  if (req.httpVersionMajor === 2)
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).charCodeAt(0) === 0x3a) fields--;
  return fields;
}

/**
 * Why a request head cannot be served, or `undefined` (the usual case). Looks only at
 * `req.rawHeaders`: past the field limit Node 20 has already dropped fields from
 * `req.headers` (the server keeps one more than `maxFields`, so "too many" shows here).
 */
export function headRefusal(req: IncomingMessage, maxFields: number): GatewayError | undefined {
  const raw = req.rawHeaders;
  if (raw.length > maxFields * 2 && fieldCount(req) > maxFields) return TOO_MANY_HEADERS;
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or any request with two, is a 400.
  const hosts = hostCount(raw);
  if (hosts > 1 || (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1)) return BAD_HOST;
  return undefined;
}
