import type { IncomingMessage } from 'node:http';
import type { HashOn } from '../../shared/plan/types.js';
import { internalContextOf } from '../context.js';

/** A request's key for `balance: hash`, or undefined when it has none (the fallback balancer serves it). */
export type HashKey = (req: IncomingMessage) => string | undefined;

/** The key function for `hash_on`, built once per pool; `null` for other balancers. */
export function hashKeyOf(hashOn: HashOn | null): HashKey | null {
  if (hashOn === null) return null;
  switch (hashOn.kind) {
    case 'ip':
      return function clientIpKey(req) {
        return internalContextOf(req).clientIp || undefined;
      };
    case 'header': {
      const name = hashOn.name;
      return function headerKey(req) {
        const value = req.headers[name];
        // A repeated header (other than the few Node joins) arrives as a list: its first value.
        const key = typeof value === 'string' ? value : value?.[0];
        return key === '' ? undefined : key;
      };
    }
    case 'cookie': {
      const name = hashOn.name;
      return function cookieKey(req) {
        const header = req.headers.cookie;
        return header === undefined ? undefined : cookieValue(header, name);
      };
    }
  }
}

/** The value of cookie `name` in a `Cookie` header (`a=1; b=2`), without splitting the whole header. */
export function cookieValue(header: string, name: string): string | undefined {
  let at = 0;
  while (at < header.length) {
    // Skip the separator and any spaces before a pair.
    while (header.charCodeAt(at) === 32 /* ' ' */ || header.charCodeAt(at) === 59 /* ';' */) at++;
    const end = header.indexOf(';', at);
    const stop = end === -1 ? header.length : end;
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 61 /* '=' */) {
      let value = header.slice(at + name.length + 1, stop).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value === '' ? undefined : value;
    }
    at = stop + 1;
  }
  return undefined;
}
